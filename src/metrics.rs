//! Every metric trackgate exports, named and described once. Each server
//! gets its own `Registry` (tests run several servers in one process), and
//! hot paths hold pre-bound label handles (`ProtocolMetrics`) instead of
//! looking labels up per record.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The registry and every metric family.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    connections: IntGaugeVec,
    connections_refused: IntCounterVec,
    frames: IntCounterVec,
    positions: IntCounterVec,
    reports: IntCounterVec,
    decode_errors: IntCounterVec,
    unknown_devices: IntCounterVec,
    ack_latency: HistogramVec,
    pub engine_devices: IntGauge,
    pub index_age_seconds: prometheus::Gauge,
    /// Signed-in web app sessions.
    pub web_sessions: IntGauge,
    /// Open live position streams.
    pub live_streams: IntGauge,
    mqtt_connected: IntGaugeVec,
    mqtt_subscribed: IntGaugeVec,
    mqtt_messages: IntCounterVec,
    mqtt_bytes: IntCounterVec,
    mqtt_reconnects: IntCounterVec,
    /// Positions published to the MQTT feed.
    pub mqtt_published: IntCounter,
    /// Positions dropped because the feed's buffer was full (broker away).
    pub mqtt_publish_dropped: IntCounter,
    pub history: HistoryMetrics,
    pub access_log: AccessLogMetrics,
}

/// The history writer's metrics.
#[derive(Clone)]
pub struct HistoryMetrics {
    /// Records committed (duplicates included: they were acked).
    pub records: IntCounter,
    /// Failed commits (their records were not acked).
    pub errors: IntCounter,
    pub commit_seconds: Histogram,
    /// 1 while the last commit succeeded.
    pub healthy: IntGauge,
    /// Records in journal segments not yet compacted into `history.db`.
    pub journal_records: IntGauge,
    /// Failed compactions (retried; their records stay in the journal).
    pub compaction_errors: IntCounter,
    /// Time to move one journal segment into `history.db`, commit included.
    pub compaction_seconds: Histogram,
    /// Time commits waited for the compactor (journal at its limit).
    pub throttled_seconds: prometheus::Counter,
}

/// The access-log writer's metrics.
#[derive(Clone)]
pub struct AccessLogMetrics {
    /// Entries committed (each read of a shared device's data is one).
    pub entries: IntCounter,
    /// Failed commits (their reads were refused, nothing served).
    pub errors: IntCounter,
    pub commit_seconds: Histogram,
    /// How long each logged read waited for its entries' commit (queue,
    /// write, fsync, release): what the log adds to the answer's latency.
    pub wait_seconds: Histogram,
    /// Security-log entries (denied attempts) dropped because the writer's
    /// queue was full.
    pub dropped: IntCounter,
}

impl AccessLogMetrics {
    /// Unregistered counters, for a writer outside a gateway (tests, tools).
    pub fn detached() -> Self {
        Self {
            entries: must(IntCounter::new("entries", "-")),
            errors: must(IntCounter::new("errors", "-")),
            commit_seconds: must(Histogram::with_opts(HistogramOpts::new("commit", "-"))),
            wait_seconds: must(Histogram::with_opts(HistogramOpts::new("wait", "-"))),
            dropped: must(IntCounter::new("dropped", "-")),
        }
    }
}

/// Label handles for one MQTT broker connection.
#[derive(Clone)]
pub struct MqttMetrics {
    pub connected: IntGauge,
    /// 1 once every SUBSCRIBE of the current connection is confirmed.
    pub subscribed: IntGauge,
    pub messages: IntCounter,
    pub bytes: IntCounter,
    pub reconnects: IntCounter,
}

/// Label handles for one protocol, bound once per listener.
#[derive(Clone)]
pub struct ProtocolMetrics {
    pub connections: IntGauge,
    pub connections_refused: IntCounter,
    pub frames: IntCounter,
    pub positions: IntCounter,
    /// Records without a fix accepted (alarms, cell lists, status).
    pub reports: IntCounter,
    pub unknown_devices: IntCounter,
    pub ack_latency: Histogram,
    decode_errors: IntCounterVec,
    protocol: &'static str,
}

impl ProtocolMetrics {
    /// Counts a decode or framing error of `kind` (errors are rare: a label
    /// lookup here is fine).
    pub fn decode_error(&self, kind: &str) {
        self.decode_errors
            .with_label_values(&[self.protocol, kind])
            .inc();
    }
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric names and labels are constants of this file; a failure here is a
    // programming error caught by the tests, not an input error.
    #[allow(clippy::expect_used)]
    r.expect("metric definition is valid")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let connections = must(IntGaugeVec::new(
            Opts::new("trackgate_connections", "Open device connections"),
            &["protocol"],
        ));
        let connections_refused = must(IntCounterVec::new(
            Opts::new(
                "trackgate_connections_refused_total",
                "Connections closed at once because max_connections was reached",
            ),
            &["protocol"],
        ));
        let frames = must(IntCounterVec::new(
            Opts::new(
                "trackgate_frames_total",
                "Frames (TCP) or datagrams (UDP) received",
            ),
            &["protocol"],
        ));
        let positions = must(IntCounterVec::new(
            Opts::new(
                "trackgate_positions_total",
                "Positions accepted into the pipeline",
            ),
            &["protocol"],
        ));
        let reports = must(IntCounterVec::new(
            Opts::new(
                "trackgate_reports_total",
                "Records without a fix (alarms, cell lists, status) accepted into the history",
            ),
            &["protocol"],
        ));
        let decode_errors = must(IntCounterVec::new(
            Opts::new(
                "trackgate_decode_errors_total",
                "Frames rejected by a decoder or framer, by error kind",
            ),
            &["protocol", "kind"],
        ));
        let unknown_devices = must(IntCounterVec::new(
            Opts::new(
                "trackgate_unknown_device_messages_total",
                "Messages from devices nobody registered (refused, not acked)",
            ),
            &["protocol"],
        ));
        let ack_latency = must(HistogramVec::new(
            HistogramOpts::new(
                "trackgate_ack_latency_seconds",
                "Time from a frame's arrival to its reply being written",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 1.0,
            ]),
            &["protocol"],
        ));
        let engine_devices = must(IntGauge::new(
            "trackgate_engine_devices",
            "Devices with a latest position in the engine",
        ));
        let index_age_seconds = must(prometheus::Gauge::new(
            "trackgate_index_age_seconds",
            "Age of the spatial index snapshot",
        ));
        let web_sessions = must(IntGauge::new(
            "trackgate_web_sessions",
            "Web app sessions held (signed in, not yet expired or signed out)",
        ));
        let live_streams = must(IntGauge::new(
            "trackgate_live_streams",
            "Open live position streams (server-sent events)",
        ));
        let by_broker =
            |name: &str, help: &str| must(IntCounterVec::new(Opts::new(name, help), &["broker"]));
        let mqtt_connected = must(IntGaugeVec::new(
            Opts::new(
                "trackgate_mqtt_connected",
                "1 while the broker connection is up",
            ),
            &["broker"],
        ));
        let mqtt_subscribed = must(IntGaugeVec::new(
            Opts::new(
                "trackgate_mqtt_subscribed",
                "1 once the broker has confirmed every subscription of the current connection",
            ),
            &["broker"],
        ));
        let mqtt_messages = by_broker(
            "trackgate_mqtt_messages_total",
            "MQTT messages received from the broker",
        );
        let mqtt_bytes = by_broker(
            "trackgate_mqtt_bytes_total",
            "MQTT payload bytes received from the broker",
        );
        let mqtt_reconnects = by_broker(
            "trackgate_mqtt_reconnects_total",
            "Lost or failed broker connections (each is followed by a reconnect)",
        );
        let mqtt_published = must(IntCounter::new(
            "trackgate_mqtt_published_total",
            "Accepted positions published to the MQTT feed",
        ));
        let mqtt_publish_dropped = must(IntCounter::new(
            "trackgate_mqtt_publish_dropped_total",
            "Positions not published because the feed buffer was full",
        ));
        let history = HistoryMetrics {
            records: must(IntCounter::new(
                "trackgate_history_records_total",
                "Position records committed to the history",
            )),
            errors: must(IntCounter::new(
                "trackgate_history_commit_errors_total",
                "History commits that failed (their records were not acked)",
            )),
            commit_seconds: commit_histogram(
                "trackgate_history_commit_seconds",
                "Time to write and fsync one history batch",
            ),
            healthy: must(IntGauge::new(
                "trackgate_storage_healthy",
                "1 while history commits and journal compactions succeed; 0 while either fails (failing commits: no acks)",
            )),
            journal_records: must(IntGauge::new(
                "trackgate_history_journal_records",
                "Acked records in the journal, not yet compacted into the indexed history",
            )),
            compaction_errors: must(IntCounter::new(
                "trackgate_history_compaction_errors_total",
                "Journal compactions that failed (retried; nothing acked is lost)",
            )),
            compaction_seconds: commit_histogram(
                "trackgate_history_compaction_seconds",
                "Time to move one journal segment into the indexed history (a full segment holds 65,536 records)",
            ),
            throttled_seconds: must(prometheus::Counter::new(
                "trackgate_history_throttled_seconds_total",
                "Time history commits (and so acks) waited because the journal held history.max_journal_records not yet compacted",
            )),
        };
        history.healthy.set(1);
        let access_log = AccessLogMetrics {
            entries: must(IntCounter::new(
                "trackgate_access_log_entries_total",
                "Access-log entries committed (written and fsynced before their data was served)",
            )),
            errors: must(IntCounter::new(
                "trackgate_access_log_commit_errors_total",
                "Access-log commits that failed (their reads were refused)",
            )),
            commit_seconds: commit_histogram(
                "trackgate_access_log_commit_seconds",
                "Time to write and fsync one access-log batch",
            ),
            wait_seconds: must(Histogram::with_opts(
                HistogramOpts::new(
                    "trackgate_access_log_wait_seconds",
                    "Time a logged read waited for its access-log entries to be committed (queue, write, fsync, release) before its answer left",
                )
                // Fine around the 2 ms the log may add at p99.
                .buckets(vec![
                    0.000_25, 0.000_5, 0.000_75, 0.001, 0.001_5, 0.002, 0.003, 0.004, 0.006,
                    0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0,
                ]),
            )),
            dropped: must(IntCounter::new(
                "trackgate_access_log_dropped_total",
                "Security-log entries (denied attempts) dropped because the log writer's queue was full",
            )),
        };
        for c in [
            Box::new(history.records.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(history.errors.clone()),
            Box::new(history.commit_seconds.clone()),
            Box::new(history.healthy.clone()),
            Box::new(history.journal_records.clone()),
            Box::new(history.compaction_errors.clone()),
            Box::new(history.compaction_seconds.clone()),
            Box::new(history.throttled_seconds.clone()),
            Box::new(access_log.entries.clone()),
            Box::new(access_log.errors.clone()),
            Box::new(access_log.commit_seconds.clone()),
            Box::new(access_log.wait_seconds.clone()),
            Box::new(access_log.dropped.clone()),
            Box::new(connections.clone()),
            Box::new(mqtt_connected.clone()),
            Box::new(mqtt_subscribed.clone()),
            Box::new(mqtt_messages.clone()),
            Box::new(mqtt_bytes.clone()),
            Box::new(mqtt_reconnects.clone()),
            Box::new(mqtt_published.clone()),
            Box::new(mqtt_publish_dropped.clone()),
            Box::new(connections_refused.clone()),
            Box::new(frames.clone()),
            Box::new(positions.clone()),
            Box::new(reports.clone()),
            Box::new(decode_errors.clone()),
            Box::new(unknown_devices.clone()),
            Box::new(ack_latency.clone()),
            Box::new(engine_devices.clone()),
            Box::new(index_age_seconds.clone()),
            Box::new(web_sessions.clone()),
            Box::new(live_streams.clone()),
        ] {
            must(registry.register(c));
        }
        Self {
            registry,
            connections,
            connections_refused,
            frames,
            positions,
            reports,
            decode_errors,
            unknown_devices,
            ack_latency,
            engine_devices,
            index_age_seconds,
            web_sessions,
            live_streams,
            mqtt_connected,
            mqtt_subscribed,
            mqtt_messages,
            mqtt_bytes,
            mqtt_reconnects,
            mqtt_published,
            mqtt_publish_dropped,
            history,
            access_log,
        }
    }

    /// Label handles for the broker connection `broker`.
    pub fn mqtt(&self, broker: &str) -> MqttMetrics {
        let l = &[broker];
        MqttMetrics {
            connected: self.mqtt_connected.with_label_values(l),
            subscribed: self.mqtt_subscribed.with_label_values(l),
            messages: self.mqtt_messages.with_label_values(l),
            bytes: self.mqtt_bytes.with_label_values(l),
            reconnects: self.mqtt_reconnects.with_label_values(l),
        }
    }

    /// Label handles for `protocol`; also makes its series visible at zero.
    pub fn protocol(&self, protocol: &'static str) -> ProtocolMetrics {
        let l = &[protocol];
        ProtocolMetrics {
            connections: self.connections.with_label_values(l),
            connections_refused: self.connections_refused.with_label_values(l),
            frames: self.frames.with_label_values(l),
            positions: self.positions.with_label_values(l),
            reports: self.reports.with_label_values(l),
            unknown_devices: self.unknown_devices.with_label_values(l),
            ack_latency: self.ack_latency.with_label_values(l),
            decode_errors: self.decode_errors.clone(),
            protocol,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        // Text encoding into a Vec cannot fail for well-formed families.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// A histogram of group-commit times (write + fsync): sub-millisecond on a
/// fast disk, tens of milliseconds when a flush stalls.
fn commit_histogram(name: &str, help: &str) -> Histogram {
    must(Histogram::with_opts(
        HistogramOpts::new(name, help).buckets(vec![
            0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0,
        ]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bound_series() {
        let m = Metrics::new();
        let t = m.protocol("teltonika");
        t.frames.inc();
        t.decode_error("checksum");
        let text = m.render();
        assert!(
            text.contains("trackgate_frames_total{protocol=\"teltonika\"} 1"),
            "{text}"
        );
        assert!(text
            .contains("trackgate_decode_errors_total{kind=\"checksum\",protocol=\"teltonika\"} 1"));
        assert!(text.contains("trackgate_connections{protocol=\"teltonika\"} 0"));
        assert!(text.contains("trackgate_ack_latency_seconds_bucket"));
    }
}
