//! Configuration: TOML with every key documented in `config/trackgate.toml`
//! (also the embedded default), overridden by command-line flags. Unknown
//! keys are rejected; every value is validated before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{FixedOffset, Offset, Utc};
use serde::Deserialize;

use crate::protocol;

/// The documented default configuration, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../config/trackgate.toml");

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("unknown protocol {0:?} (known: {1})")]
    UnknownProtocol(String, String),
    #[error("invalid --listen {0:?}: expected PROTOCOL=ADDR, e.g. teltonika=0.0.0.0:5027")]
    ListenFlag(String),
    #[error("invalid value for {key}: {why}")]
    Value { key: &'static str, why: String },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: Http,
    pub limits: Limits,
    pub engine: EngineConfig,
    pub shutdown: Shutdown,
    pub ingest: Ingest,
    #[serde(default)]
    pub protocols: BTreeMap<String, ProtocolConfig>,
    pub history: HistoryConfig,
    /// MQTT brokers to ingest from and the optional feed; absent: none.
    #[serde(default)]
    pub mqtt: crate::mqtt::MqttConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub listen: SocketAddr,
    /// Seconds a client may take to send a request's headers, and an idle
    /// keep-alive connection may wait for its next request, before it is
    /// closed (a client that never finishes its headers would otherwise
    /// hold its connection for ever).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
}

fn default_header_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_connections: usize,
    pub idle_timeout_secs: u64,
    pub max_frame_bytes: usize,
    /// Users one company may have (each holds an API key).
    #[serde(default = "default_tenant_limit")]
    pub max_users_per_company: usize,
    /// Active and scheduled permissions one provider may hold open at once
    /// (revoked and expired ones stay for their logs and do not count).
    #[serde(default = "default_tenant_limit")]
    pub max_open_permissions: usize,
    /// Permissions one provider may have granted in all, revoked and
    /// expired ones included (they stay, with their access logs).
    #[serde(default = "default_permissions_per_company")]
    pub max_permissions_per_company: usize,
    /// Devices one provider may share at once: the devices of its open
    /// permissions, each counted once per permission that holds it.
    #[serde(default = "default_open_shared_devices")]
    pub max_open_shared_devices: usize,
}

fn default_open_shared_devices() -> usize {
    100_000
}

fn default_permissions_per_company() -> usize {
    1_000_000
}

fn default_max_journal_records() -> u64 {
    crate::history::MAX_JOURNAL_RECORDS
}

/// Config files written before the tenant limits existed keep working.
fn default_tenant_limit() -> usize {
    10_000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub index_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    pub accept_unregistered_devices: bool,
    /// When a device is acked: after its records are committed (`durable`)
    /// or on receipt (`received`, loses acked records on a crash).
    #[serde(default)]
    pub ack: AckMode,
}

/// When devices are acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    #[default]
    Durable,
    Received,
}

/// `[history]`: how long positions are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// false: keep no history (acks then never wait for storage, and a
    /// restart starts with an empty engine) — for benchmarks and volatile
    /// test setups, never for production.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Positions received longer ago than this are purged.
    pub retention_days: u32,
    /// How often the purge runs, in seconds.
    pub purge_interval_secs: u64,
    /// Acked records the embedded journal may hold before compaction;
    /// past it acks wait for the compactor.
    #[serde(default = "default_max_journal_records")]
    pub max_journal_records: u64,
    /// Where the history lives: absent, the embedded SQLite files in the
    /// data dir; set, the PostgreSQL database at this URL (shared by
    /// several gateway nodes).
    #[serde(default)]
    pub postgres_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    pub grace_secs: u64,
}

/// One protocol's listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address for TCP and UDP; absent: all interfaces on the default port.
    pub listen: Option<SocketAddr>,
    /// UTC offset of the local time the devices on this port send, as
    /// `+HH:MM` / `-HH:MM`; absent: UTC. Only protocols that send local time use it.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Device model on this port, for protocols with model-specific forms.
    #[serde(default)]
    pub model: Option<String>,
}

/// Parses `+HH:MM`, `-HH:MM`, `+HH` or `UTC` into an offset.
pub fn parse_time_zone(s: &str) -> Option<FixedOffset> {
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Some(Utc.fix());
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn yes() -> bool {
    true
}

impl Default for Config {
    /// The embedded default (`config/trackgate.toml`), with every registered
    /// protocol on its default port.
    fn default() -> Self {
        let mut protocols = BTreeMap::new();
        for p in protocol::registry() {
            protocols.insert(
                p.name().to_string(),
                ProtocolConfig {
                    enabled: true,
                    listen: Some(SocketAddr::from(([0, 0, 0, 0], p.default_port()))),
                    time_zone: None,
                    model: None,
                },
            );
        }
        Self {
            data_dir: PathBuf::from("data"),
            http: Http {
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                header_timeout_secs: default_header_timeout(),
            },
            limits: Limits {
                max_connections: 50_000,
                idle_timeout_secs: 1800,
                max_frame_bytes: 65_536,
                max_users_per_company: default_tenant_limit(),
                max_open_permissions: default_tenant_limit(),
                max_permissions_per_company: default_permissions_per_company(),
                max_open_shared_devices: default_open_shared_devices(),
            },
            engine: EngineConfig {
                index_interval_ms: 250,
            },
            shutdown: Shutdown { grace_secs: 10 },
            ingest: Ingest {
                accept_unregistered_devices: false,
                ack: AckMode::Durable,
            },
            history: HistoryConfig {
                enabled: true,
                retention_days: 90,
                purge_interval_secs: 3600,
                max_journal_records: default_max_journal_records(),
                postgres_url: None,
            },
            protocols,
            mqtt: crate::mqtt::MqttConfig::default(),
        }
    }
}

/// A protocol listener after defaults are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub protocol: &'static dyn protocol::Protocol,
    pub addr: SocketAddr,
    /// Local-time offset of this port's devices (validated config).
    pub time_zone: FixedOffset,
    pub model: Option<Arc<str>>,
}

impl Config {
    /// Parses TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            source: Box::new(e),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Reads and parses a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Applies a `--listen PROTOCOL=ADDR` flag.
    pub fn set_listen(&mut self, flag: &str) -> Result<(), ConfigError> {
        let (name, addr) = flag
            .split_once('=')
            .ok_or_else(|| ConfigError::ListenFlag(flag.to_string()))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| ConfigError::ListenFlag(flag.to_string()))?;
        let p = find_protocol(name)?;
        let entry = self
            .protocols
            .entry(p.name().to_string())
            .or_insert(ProtocolConfig {
                enabled: true,
                listen: None,
                time_zone: None,
                model: None,
            });
        entry.enabled = true;
        entry.listen = Some(addr);
        Ok(())
    }

    /// Checks values a type cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mqtt
            .validate()
            .map_err(|why| ConfigError::Value { key: "mqtt", why })?;
        for (name, p) in &self.protocols {
            find_protocol(name)?;
            if let Some(tz) = &p.time_zone {
                if parse_time_zone(tz).is_none() {
                    return Err(ConfigError::Value {
                        key: "protocols.<name>.time_zone",
                        why: format!("{name}: {tz:?} is not +HH:MM, -HH:MM or UTC"),
                    });
                }
            }
        }
        let positive = |key: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError::Value {
                    key,
                    why: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("limits.max_connections", self.limits.max_connections as u64)?;
        positive("limits.idle_timeout_secs", self.limits.idle_timeout_secs)?;
        positive("http.header_timeout_secs", self.http.header_timeout_secs)?;
        positive(
            "limits.max_users_per_company",
            self.limits.max_users_per_company as u64,
        )?;
        positive(
            "limits.max_open_permissions",
            self.limits.max_open_permissions as u64,
        )?;
        positive(
            "limits.max_permissions_per_company",
            self.limits.max_permissions_per_company as u64,
        )?;
        positive(
            "limits.max_open_shared_devices",
            self.limits.max_open_shared_devices as u64,
        )?;
        positive("engine.index_interval_ms", self.engine.index_interval_ms)?;
        positive(
            "history.retention_days",
            u64::from(self.history.retention_days),
        )?;
        positive(
            "history.purge_interval_secs",
            self.history.purge_interval_secs,
        )?;
        positive(
            "history.max_journal_records",
            self.history.max_journal_records,
        )?;
        if let Some(url) = &self.history.postgres_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Value {
                    key: "history.postgres_url",
                    why: "must start with postgres:// or postgresql://".into(),
                });
            }
        }
        if !(16..=16 * 1024 * 1024).contains(&self.limits.max_frame_bytes) {
            return Err(ConfigError::Value {
                key: "limits.max_frame_bytes",
                why: format!("{} is outside 16..=16777216", self.limits.max_frame_bytes),
            });
        }
        Ok(())
    }

    /// Enabled protocol listeners; a protocol absent from the file listens
    /// on its default port.
    pub fn listeners(&self) -> Vec<Listener> {
        protocol::registry()
            .iter()
            .filter_map(|p| {
                let c = self.protocols.get(p.name());
                if c.is_some_and(|c| !c.enabled) {
                    return None;
                }
                let addr = c
                    .and_then(|c| c.listen)
                    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], p.default_port())));
                let time_zone = c
                    .and_then(|c| c.time_zone.as_deref())
                    .and_then(parse_time_zone)
                    .unwrap_or(Utc.fix());
                let model = c.and_then(|c| c.model.as_deref()).map(Arc::from);
                Some(Listener {
                    protocol: *p,
                    addr,
                    time_zone,
                    model,
                })
            })
            .collect()
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.idle_timeout_secs)
    }

    pub fn index_interval(&self) -> Duration {
        Duration::from_millis(self.engine.index_interval_ms)
    }
}

fn find_protocol(name: &str) -> Result<&'static dyn protocol::Protocol, ConfigError> {
    protocol::find(name).ok_or_else(|| {
        let known: Vec<&str> = protocol::registry().iter().map(|p| p.name()).collect();
        ConfigError::UnknownProtocol(name.to_string(), known.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_history_url_is_checked() {
        let with = |url: &str| {
            Config::from_toml(
                &DEFAULT_TOML.replace(
                    "# postgres_url = \"postgres://trackgate:secret@db.example.com:5432/trackgate\"",
                    &format!("postgres_url = \"{url}\""),
                ),
                "t",
            )
            .and_then(|c| c.validate().map(|_| c))
        };
        let c = with("postgres://tg@db:5432/tg").unwrap();
        assert_eq!(
            c.history.postgres_url.as_deref(),
            Some("postgres://tg@db:5432/tg")
        );
        let e = with("mysql://db/tg").unwrap_err().to_string();
        assert!(
            e.contains("history.postgres_url") && e.contains("postgres://"),
            "{e}"
        );
        assert_eq!(
            Config::default().history.postgres_url,
            None,
            "embedded by default"
        );
    }

    #[test]
    fn time_zones_parse_and_bad_ones_are_refused() {
        let h = |s| parse_time_zone(s).map(|o| o.local_minus_utc());
        assert_eq!(h("+03:00"), Some(3 * 3600));
        assert_eq!(h("-05:30"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(h("+8"), Some(8 * 3600));
        assert_eq!(h("UTC"), Some(0));
        assert_eq!(h("03:00"), None);
        assert_eq!(h("+15:00"), None);
        assert_eq!(h("+03:75"), None);
        let e = Config::from_toml(
            &DEFAULT_TOML.replace(
                "[protocols.h02]\n",
                "[protocols.h02]\ntime_zone = \"Europe/Berlin\"\n",
            ),
            "t",
        )
        .and_then(|c| c.validate().map(|_| c))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Europe/Berlin"), "{e}");
        let c = Config::from_toml(
            &DEFAULT_TOML.replace(
                "[protocols.h02]\n",
                "[protocols.h02]\ntime_zone = \"+02:00\"\nmodel = \"X\"\n",
            ),
            "t",
        )
        .unwrap();
        c.validate().unwrap();
        let l = c
            .listeners()
            .into_iter()
            .find(|l| l.protocol.name() == "h02");
        let l = l.unwrap();
        assert_eq!(l.time_zone.local_minus_utc(), 7200);
        assert_eq!(l.model.as_deref(), Some("X"));
    }

    #[test]
    fn the_documented_mqtt_example_parses_and_validates() {
        let start = DEFAULT_TOML.find("# [[mqtt.brokers]]").unwrap();
        let end = DEFAULT_TOML.find("# One table per protocol").unwrap();
        let example: String = DEFAULT_TOML[start..end]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml(&format!("{DEFAULT_TOML}\n{example}"), "t").unwrap();
        c.validate().unwrap();
        let b = &c.mqtt.brokers[0];
        assert_eq!(
            (b.name.as_str(), b.port, b.version.as_str()),
            ("fleet", 1883, "3.1.1")
        );
        assert!(!b.clean_session);
        let s = &b.subscriptions[0];
        assert_eq!(s.rule(), crate::mqtt::payload::DeviceRule::LastTopicLevel);
        let p = c.mqtt.publish.as_ref().unwrap();
        assert_eq!(p.buffer, 10_000);
        assert_eq!(p.reports_topic, "trackgate/reports/{device_id}");
        let bad = format!(
            "{DEFAULT_TOML}\n{}",
            example.replace("version = \"3.1.1\"", "version = \"4\"")
        );
        let e = Config::from_toml(&bad, "t")
            .and_then(|c| c.validate().map(|_| c))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"4\""), "{e}");
        let bad = format!(
            "{DEFAULT_TOML}\n{}",
            example.replace("trackgate/reports/{device_id}", "trackgate/reports")
        );
        let e = Config::from_toml(&bad, "t")
            .and_then(|c| c.validate().map(|_| c))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reports_topic with {device_id}"), "{e}");
    }

    #[test]
    fn embedded_file_is_the_default() {
        assert_eq!(
            Config::from_toml(DEFAULT_TOML, "embedded").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_clear_errors() {
        let e = Config::from_toml(
            &DEFAULT_TOML.replace("[limits]", "[limits]\nmax_conections = 1"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `max_conections`"), "{e}");
        let e = Config::from_toml(
            &DEFAULT_TOML.replace("max_frame_bytes = 65536", "max_frame_bytes = 1"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("limits.max_frame_bytes"), "{e}");
        let e = Config::from_toml(
            &DEFAULT_TOML.replace(
                "max_open_shared_devices = 100000",
                "max_open_shared_devices = 0",
            ),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("limits.max_open_shared_devices"), "{e}");
        let e = Config::from_toml(&format!("{DEFAULT_TOML}\n[protocols.nosuch]\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown protocol \"nosuch\""), "{e}");
    }

    #[test]
    fn listen_flag_replaces_address() {
        let mut c = Config::default();
        c.set_listen("teltonika=127.0.0.1:0").unwrap();
        let l = c.listeners();
        let t = l.iter().find(|l| l.protocol.name() == "teltonika").unwrap();
        assert_eq!(t.addr, "127.0.0.1:0".parse().unwrap());
        assert!(c.set_listen("teltonika").is_err());
        assert!(c.set_listen("nosuch=127.0.0.1:1").is_err());
        assert!(c.set_listen("teltonika=localhost").is_err());
    }
}
