//! One broker connection: subscribe, turn each publish into positions
//! through the pipeline, and only then acknowledge it (manual acks), so a
//! QoS 1 message trackgate did not accept stays with the broker.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{FuturesOrdered, StreamExt};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::link::{Client, Events, Incoming, Message};
use super::payload::{self, DeviceRule, Format};
use super::settings::BrokerConfig;
use crate::metrics::{Metrics, MqttMetrics, ProtocolMetrics};
use crate::model::Position;
use crate::server::Pipeline;

/// Messages accepted concurrently before the subscriber stops reading.
pub(super) const MAX_IN_FLIGHT: usize = 512;

/// A subscription ready to match publishes.
struct Subscription {
    filter: String,
    qos: u8,
    format: Format,
    rule: DeviceRule,
    metrics: ProtocolMetrics,
}

/// Capped exponential backoff with ±25 % jitter, so a fleet of gateways
/// does not reconnect in lock-step after a broker restart.
struct Backoff {
    min: u64,
    max: u64,
    next: u64,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next.saturating_mul(2)).min(self.max);
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        Duration::from_millis((base as f64 * jitter) as u64)
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Drives the connection until `stop`: reconnects, subscribes, ingests.
pub async fn run(
    b: BrokerConfig,
    client: Client,
    mut events: Events,
    pipeline: Arc<Pipeline>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let m: MqttMetrics = metrics.mqtt(&b.name);
    let subs: Arc<Vec<Subscription>> = Arc::new(
        b.subscriptions
            .iter()
            .map(|s| Subscription {
                filter: s.topic.clone(),
                qos: s.qos,
                format: s.format,
                rule: s.rule(),
                metrics: metrics.protocol(s.format.label()),
            })
            .collect(),
    );
    let b = Arc::new(b);
    // Messages being accepted, in arrival order, each with the connection
    // it arrived on. With durable acks each waits for a history commit;
    // keeping many in flight lets them share commits, and acknowledging
    // them in order keeps MQTT's PUBACK order.
    let mut pending = FuturesOrdered::new();
    let mut outbox = Outbox::default();
    let mut backoff = Backoff {
        min: b.reconnect_min_ms,
        max: b.reconnect_max_ms,
        next: b.reconnect_min_ms,
    };
    // Connections so far, and the first of the broker session in force: a
    // message is acknowledged only on the session it was delivered in (a
    // new session reuses packet ids, so an old ack could settle the wrong
    // message; a resumed one redelivers under the original ids).
    let (mut connection, mut session_from) = (0u64, 0u64);
    // SUBACKs still expected on this connection; `subscribed` is set when
    // the last arrives and every filter was taken.
    let mut awaiting = 0usize;
    let mut refused = 0usize;
    loop {
        outbox.flush(&client);
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            Some((p, on, accepted)) = pending.next(), if !pending.is_empty() => {
                if accepted && on >= session_from {
                    outbox.ack(p);
                }
                continue;
            }
            // Polled while requests wait, even with the in-flight window
            // full: only polling moves them to the broker.
            e = events.next(), if pending.len() < MAX_IN_FLIGHT || !outbox.is_empty() => e,
        };
        match event {
            Ok(Incoming::Connected { session_present }) => {
                m.connected.set(1);
                m.subscribed.set(0);
                (awaiting, refused) = (subs.len(), 0);
                connection += 1;
                if !session_present {
                    session_from = connection;
                    events.forget_acks();
                }
                outbox.reconnected(session_present);
                backoff.reset();
                tracing::info!(broker = %b.name, session_present, "mqtt connected");
                for s in subs.iter() {
                    outbox.subscribe(&s.filter, s.qos);
                }
            }
            Ok(Incoming::Publish(p)) => {
                m.messages.inc();
                m.bytes.inc_by(p.payload().len() as u64);
                let (b, subs, pipeline) =
                    (Arc::clone(&b), Arc::clone(&subs), Arc::clone(&pipeline));
                pending.push_back(async move {
                    let accepted = ingest(&b, &subs, &p, &pipeline).await && p.needs_ack();
                    (*p, connection, accepted)
                });
            }
            Ok(Incoming::Subscribed { refused: r }) => {
                awaiting = awaiting.saturating_sub(1);
                refused += r;
                if r > 0 {
                    tracing::error!(broker = %b.name, refused = r, "the broker refused a subscription; its topics are not received");
                }
                // Re-evaluated on every SUBACK: a refusal arriving after the
                // count was reached (requests queued before a reconnect are
                // sent again) still clears it.
                let all = awaiting == 0 && refused == 0;
                if all && m.subscribed.get() == 0 {
                    tracing::info!(broker = %b.name, subscriptions = subs.len(), "mqtt subscribed");
                }
                m.subscribed.set(i64::from(all));
            }
            Ok(Incoming::Other) => {}
            Err(e) => {
                m.connected.set(0);
                m.subscribed.set(0);
                m.reconnects.inc();
                let wait = backoff.next();
                tracing::warn!(broker = %b.name, error = %e, retry_in_ms = wait.as_millis() as u64, "mqtt connection lost");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    // Finish and acknowledge what is in hand, then leave cleanly: the broker
    // keeps the persistent session and queues what arrives while we are away.
    let drain = async {
        loop {
            outbox.flush(&client);
            if pending.is_empty() && outbox.is_empty() {
                break;
            }
            tokio::select! {
                Some((p, on, accepted)) = pending.next(), if !pending.is_empty() => {
                    if accepted && on >= session_from {
                        outbox.ack(p);
                    }
                }
                // Moves queued requests out; what arrives now is not taken
                // (unacknowledged, the broker delivers it again).
                r = events.next(), if !outbox.is_empty() => {
                    if r.is_err() {
                        break; // the connection is gone: nothing more to send
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    m.connected.set(0);
    m.subscribed.set(0);
    // The DISCONNECT waits its turn behind queued requests (the feed's
    // publishes among them), which only polling moves out.
    let leave = async {
        loop {
            if client.try_disconnect() {
                events.flush_disconnect().await;
                return;
            }
            if events.next().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), leave).await;
}

/// Requests waiting for room in the event loop's channel, in order.
///
/// They are handed over without waiting, between polls of the event loop:
/// it empties that channel only while it is polled, and this task is the
/// one polling it, so awaiting room would stop both — with more
/// acknowledgements due than the channel holds, ingestion stalled for good.
#[derive(Default)]
struct Outbox(VecDeque<Request>);

enum Request {
    Ack(Message),
    Subscribe { filter: String, qos: u8 },
}

impl Outbox {
    fn ack(&mut self, p: Message) {
        self.0.push_back(Request::Ack(p));
    }

    fn subscribe(&mut self, filter: &str, qos: u8) {
        self.0.push_back(Request::Subscribe {
            filter: filter.to_owned(),
            qos,
        });
    }

    /// A new connection: subscriptions are requested again by the caller;
    /// acknowledgements stay only if the broker resumed the session.
    fn reconnected(&mut self, session_present: bool) {
        self.0
            .retain(|r| session_present && matches!(r, Request::Ack(_)));
    }

    /// Hands over as many requests as the channel takes now.
    fn flush(&mut self, client: &Client) {
        while let Some(r) = self.0.front() {
            let sent = match r {
                Request::Ack(p) => client.try_ack(p),
                Request::Subscribe { filter, qos } => client.try_subscribe(filter, *qos),
            };
            if !sent {
                return;
            }
            self.0.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes and submits one publish. Returns whether to acknowledge it: yes
/// when it was accepted, malformed (retrying cannot help) or from unknown
/// devices; no only when the pipeline could not take it (shutting down).
async fn ingest(b: &BrokerConfig, subs: &[Subscription], p: &Message, pipeline: &Pipeline) -> bool {
    let topic = p.topic();
    let Some(sub) = subs.iter().find(|s| rumqttc::matches(&topic, &s.filter)) else {
        tracing::warn!(broker = %b.name, %topic, "message matches no subscription; acknowledged and dropped");
        return true;
    };
    let label = sub.format.label();
    let positions = match payload::decode(
        sub.format,
        sub.rule,
        &topic,
        p.payload(),
        b.max_payload_bytes,
        Utc::now(),
    ) {
        Ok(ps) => ps,
        Err(e) => {
            sub.metrics.decode_error(e.kind());
            tracing::warn!(broker = %b.name, %topic, error = %e, "mqtt payload refused");
            return true;
        }
    };
    let admitted: Vec<Position> = positions
        .into_iter()
        .filter(|pos| {
            let ok = pipeline.admits(&pos.device_id, label);
            if !ok {
                sub.metrics.unknown_devices.inc();
            }
            ok
        })
        .collect();
    if admitted.is_empty() {
        return true;
    }
    let n = admitted.len() as u64;
    match pipeline.submit(admitted).await {
        Ok(()) => {
            sub.metrics.positions.inc_by(n);
            true
        }
        Err(e) => {
            tracing::warn!(broker = %b.name, %topic, error = %e, "positions not accepted; message left with the broker");
            false
        }
    }
}
