//! One broker connection in either MQTT version (3.1.1 or 5), behind the
//! few operations the subscriber and the feed need, so their logic exists
//! once. rumqttc provides both clients; this only adapts their types.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5 as p5;

use super::settings::BrokerConfig;
use super::MqttError;

/// Requests queued towards the event loop (subscribes, acks, feed publishes).
const REQUEST_CAPACITY: usize = 256;
/// How long a v5 broker keeps our session after we disconnect (7 days).
const SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;

/// What the connection delivered.
pub enum Incoming {
    Connected {
        session_present: bool,
    },
    Publish(Box<Message>),
    /// The broker answered one SUBSCRIBE; `refused` filters it did not take.
    Subscribed {
        refused: usize,
    },
    Other,
}

/// A received message; acknowledge it with [`Link::ack`].
pub enum Message {
    V4(rumqttc::Publish),
    V5(p5::Publish),
}

impl Message {
    pub fn topic(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::V4(p) => std::borrow::Cow::Borrowed(p.topic.as_str()),
            Self::V5(p) => String::from_utf8_lossy(&p.topic),
        }
    }
    pub fn payload(&self) -> &Bytes {
        match self {
            Self::V4(p) => &p.payload,
            Self::V5(p) => &p.payload,
        }
    }
    /// Whether the broker waits for our acknowledgement (QoS ≥ 1).
    pub fn needs_ack(&self) -> bool {
        match self {
            Self::V4(p) => p.qos != rumqttc::QoS::AtMostOnce,
            Self::V5(p) => p.qos != v5::mqttbytes::QoS::AtMostOnce,
        }
    }
}

/// The client half, cloneable: subscribe, ack, publish.
#[derive(Clone)]
pub enum Client {
    V4(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

/// The event-loop half.
pub enum Events {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

fn qos4(q: u8) -> rumqttc::QoS {
    if q == 0 {
        rumqttc::QoS::AtMostOnce
    } else {
        rumqttc::QoS::AtLeastOnce
    }
}

fn qos5(q: u8) -> v5::mqttbytes::QoS {
    if q == 0 {
        v5::mqttbytes::QoS::AtMostOnce
    } else {
        v5::mqttbytes::QoS::AtLeastOnce
    }
}

fn transport(b: &BrokerConfig) -> Result<Option<rumqttc::Transport>, MqttError> {
    if !b.tls {
        return Ok(None);
    }
    let path = b.ca_file.clone().ok_or(MqttError::NoCa(b.name.clone()))?;
    let ca = std::fs::read(&path).map_err(|source| MqttError::Ca {
        broker: b.name.clone(),
        path,
        source,
    })?;
    Ok(Some(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: None,
        },
    )))
}

/// Largest packet the client reads. Our own (smaller) payload limit is
/// enforced per message, so an oversize message is acknowledged and counted
/// instead of breaking the connection and being redelivered forever.
fn max_packet(b: &BrokerConfig) -> usize {
    b.max_payload_bytes.saturating_mul(4).max(1 << 20)
}

/// Creates the client for `b` (no I/O yet: the event loop connects).
pub fn connect(b: &BrokerConfig) -> Result<(Client, Events), MqttError> {
    let keep_alive = Duration::from_secs(b.keep_alive_secs);
    let creds = b
        .username
        .as_ref()
        .map(|u| (u.clone(), b.password.clone().unwrap_or_default()));
    if b.version == "5" {
        let mut o = v5::MqttOptions::new(&b.client_id, &b.host, b.port);
        let mut props = p5::ConnectProperties::new();
        props.session_expiry_interval = (!b.clean_session).then_some(SESSION_EXPIRY_SECS);
        props.max_packet_size = Some(u32::try_from(max_packet(b)).unwrap_or(u32::MAX));
        // The broker sends no more unacknowledged messages than we take in flight.
        props.receive_maximum = u16::try_from(super::subscriber::MAX_IN_FLIGHT).ok();
        o.set_keep_alive(keep_alive)
            .set_clean_start(b.clean_session)
            .set_manual_acks(true)
            .set_request_channel_capacity(REQUEST_CAPACITY)
            .set_connect_properties(props);
        if let Some((u, p)) = creds {
            o.set_credentials(u, p);
        }
        if let Some(t) = transport(b)? {
            o.set_transport(t);
        }
        let (c, e) = v5::AsyncClient::new(o, REQUEST_CAPACITY);
        return Ok((Client::V5(c), Events::V5(Box::new(e))));
    }
    let mut o = rumqttc::MqttOptions::new(&b.client_id, &b.host, b.port);
    o.set_keep_alive(keep_alive)
        .set_clean_session(b.clean_session)
        .set_manual_acks(true)
        .set_request_channel_capacity(REQUEST_CAPACITY)
        .set_max_packet_size(max_packet(b), 1 << 20);
    if let Some((u, p)) = creds {
        o.set_credentials(u, p);
    }
    if let Some(t) = transport(b)? {
        o.set_transport(t);
    }
    let (c, e) = rumqttc::AsyncClient::new(o, REQUEST_CAPACITY);
    Ok((Client::V4(c), Events::V4(Box::new(e))))
}

impl Events {
    /// The next event; an error means the connection is down (the next
    /// call reconnects).
    pub async fn next(&mut self) -> Result<Incoming, String> {
        match self {
            Self::V4(e) => match e.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a)) => Ok(Incoming::Connected {
                    session_present: a.session_present,
                }),
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                    Ok(Incoming::Publish(Box::new(Message::V4(p))))
                }
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(a)) => Ok(Incoming::Subscribed {
                    refused: a
                        .return_codes
                        .iter()
                        .filter(|c| !matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                        .count(),
                }),
                _ => Ok(Incoming::Other),
            },
            Self::V5(e) => match e.poll().await.map_err(|e| e.to_string())? {
                v5::Event::Incoming(p5::Packet::ConnAck(a)) => Ok(Incoming::Connected {
                    session_present: a.session_present,
                }),
                v5::Event::Incoming(p5::Packet::Publish(p)) => {
                    Ok(Incoming::Publish(Box::new(Message::V5(p))))
                }
                v5::Event::Incoming(p5::Packet::SubAck(a)) => Ok(Incoming::Subscribed {
                    refused: a
                        .return_codes
                        .iter()
                        .filter(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                        .count(),
                }),
                _ => Ok(Incoming::Other),
            },
        }
    }

    /// A new broker session (not resumed): drops acknowledgements that
    /// rumqttc kept from the old connection to send on this one. The broker
    /// reuses packet ids in a new session, so they would settle messages
    /// trackgate has not stored yet.
    pub fn forget_acks(&mut self) {
        match self {
            Self::V4(e) => e
                .pending
                .retain(|r| !matches!(r, rumqttc::Request::PubAck(_))),
            Self::V5(e) => e.pending.retain(|r| !matches!(r, v5::Request::PubAck(_))),
        }
    }

    /// Polls until our DISCONNECT went out (or the connection ended).
    pub async fn flush_disconnect(&mut self) {
        loop {
            let done = match self {
                Self::V4(e) => match e.poll().await {
                    Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => true,
                    Ok(_) => false,
                },
                Self::V5(e) => match e.poll().await {
                    Ok(v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => true,
                    Ok(_) => false,
                },
            };
            if done {
                return;
            }
        }
    }
}

impl Client {
    /// Queues a SUBSCRIBE without waiting; `false` when the request channel
    /// is full. Never awaited: the event loop empties that channel only
    /// while it is polled, and the subscriber polling it is the caller.
    pub fn try_subscribe(&self, filter: &str, qos: u8) -> bool {
        match self {
            Self::V4(c) => c.try_subscribe(filter, qos4(qos)).is_ok(),
            Self::V5(c) => c.try_subscribe(filter, qos5(qos)).is_ok(),
        }
    }

    /// Queues the acknowledgement of `m` without waiting; `false` when the
    /// request channel is full (see [`Client::try_subscribe`]).
    pub fn try_ack(&self, m: &Message) -> bool {
        match (self, m) {
            (Self::V4(c), Message::V4(p)) => c.try_ack(p).is_ok(),
            (Self::V5(c), Message::V5(p)) => c.try_ack(p).is_ok(),
            // Cannot happen (one client per connection); nothing to send.
            _ => true,
        }
    }

    pub async fn publish(&self, topic: String, qos: u8, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Self::V4(c) => c
                .publish(topic, qos4(qos), false, payload)
                .await
                .map_err(|e| e.to_string()),
            Self::V5(c) => c
                .publish(topic, qos5(qos), false, payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Queues a DISCONNECT without waiting; `false` when the request
    /// channel is full (see [`Client::try_subscribe`]).
    pub fn try_disconnect(&self) -> bool {
        match self {
            Self::V4(c) => c.try_disconnect().is_ok(),
            Self::V5(c) => c.try_disconnect().is_ok(),
        }
    }
}
