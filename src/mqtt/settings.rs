//! `[mqtt]` configuration: brokers to subscribe to, and the optional feed of
//! accepted positions. Checked at start-up so a typo fails before anything
//! connects.

use std::path::PathBuf;

use serde::Deserialize;

use super::payload::{DeviceRule, Format};

/// The `[mqtt]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    #[serde(default)]
    pub brokers: Vec<BrokerConfig>,
    /// Publish every accepted position; absent: no feed.
    #[serde(default)]
    pub publish: Option<PublishConfig>,
}

/// One broker connection (`[[mqtt.brokers]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Label in metrics and logs, and the name `publish.broker` refers to.
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Fixed, so the broker keeps this session's QoS 1 messages while we are away.
    pub client_id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// TLS with rustls; `ca_file` (PEM) names the CA that signed the broker.
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// MQTT protocol version: "3.1.1" or "5".
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u64,
    /// false (default): persistent session, the broker queues QoS 1 messages
    /// while trackgate is down.
    #[serde(default)]
    pub clean_session: bool,
    /// Reconnect backoff: starts at `reconnect_min_ms`, doubles per failure up
    /// to `reconnect_max_ms`, each wait jittered by up to ±25 %.
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Larger publishes are refused by the MQTT client (counted, never stored).
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
}

/// One subscription (`[[mqtt.brokers.subscriptions]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Topic filter; `+` and `#` wildcards.
    pub topic: String,
    #[serde(default = "default_qos")]
    pub qos: u8,
    pub format: Format,
    /// Where the device id is: `"topic:N"` (N-th topic level, 0-based) or
    /// `"payload"` (the payload's own field). Default: `payload` for json,
    /// the last topic level for owntracks and teltonika.
    #[serde(default)]
    pub device_id: Option<DeviceRule>,
}

/// `[mqtt.publish]`: the feed of accepted positions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// `name` of the broker to publish to.
    pub broker: String,
    /// `{device_id}` is replaced by the device id.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Where reports (records without a fix) go; `{device_id}` as above.
    #[serde(default = "default_reports_topic")]
    pub reports_topic: String,
    #[serde(default)]
    pub qos: u8,
    /// Positions held while the broker is away; beyond it they are dropped
    /// and counted (`trackgate_mqtt_publish_dropped_total`).
    #[serde(default = "default_buffer")]
    pub buffer: usize,
}

fn default_port() -> u16 {
    1883
}
fn default_version() -> String {
    "3.1.1".into()
}
fn default_keep_alive() -> u64 {
    30
}
fn default_reconnect_min() -> u64 {
    100
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_max_payload() -> usize {
    64 * 1024
}
fn default_qos() -> u8 {
    1
}
fn default_topic() -> String {
    "trackgate/positions/{device_id}".into()
}
fn default_reports_topic() -> String {
    "trackgate/reports/{device_id}".into()
}
fn default_buffer() -> usize {
    10_000
}

impl SubscriptionConfig {
    /// The configured device-id rule or the format's default.
    pub fn rule(&self) -> DeviceRule {
        self.device_id.unwrap_or(match self.format {
            Format::Json => DeviceRule::Payload,
            Format::Owntracks | Format::Teltonika => DeviceRule::LastTopicLevel,
        })
    }
}

impl MqttConfig {
    /// Checks what serde cannot: versions, QoS, names, limits.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for b in &self.brokers {
            let at = |why: String| format!("mqtt.brokers[{}]: {why}", b.name);
            if !names.insert(b.name.as_str()) {
                return Err(at("duplicate name".into()));
            }
            if b.version != "3.1.1" && b.version != "5" {
                return Err(at(format!(
                    "version {:?}: use \"3.1.1\" or \"5\"",
                    b.version
                )));
            }
            if b.client_id.is_empty() || b.client_id.len() > 23 && !b.clean_session {
                return Err(at(
                    "client_id must be 1..=23 characters for a persistent session".into(),
                ));
            }
            if b.tls && b.ca_file.is_none() {
                return Err(at("tls = true needs ca_file (PEM)".into()));
            }
            if b.keep_alive_secs < 5 {
                return Err(at("keep_alive_secs must be at least 5".into()));
            }
            if b.reconnect_min_ms == 0 || b.reconnect_max_ms < b.reconnect_min_ms {
                return Err(at("need 0 < reconnect_min_ms <= reconnect_max_ms".into()));
            }
            if !(128..=16 * 1024 * 1024).contains(&b.max_payload_bytes) {
                return Err(at("max_payload_bytes must be in 128..=16777216".into()));
            }
            for s in &b.subscriptions {
                if s.qos > 1 {
                    return Err(at(format!("{}: qos must be 0 or 1", s.topic)));
                }
                if s.topic.is_empty() || !rumqttc::valid_filter(&s.topic) {
                    return Err(at(format!("{:?} is not a topic filter", s.topic)));
                }
            }
        }
        if let Some(p) = &self.publish {
            if !names.contains(p.broker.as_str()) {
                return Err(format!(
                    "mqtt.publish.broker {:?} names no [[mqtt.brokers]]",
                    p.broker
                ));
            }
            if p.qos > 1
                || p.buffer == 0
                || !p.topic.contains("{device_id}")
                || !p.reports_topic.contains("{device_id}")
            {
                return Err(
                    "mqtt.publish: qos 0 or 1, buffer > 0, topic and reports_topic with {device_id}"
                        .into(),
                );
            }
        }
        Ok(())
    }
}
