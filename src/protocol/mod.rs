//! The protocol framework. It knows no single protocol: it defines the
//! sans-IO boundary every protocol implements (frame → decode → reply), the
//! registry, the tokio-util adapter the server reads through, and the pure
//! replay driver that `trackgate decode`, tests, fuzzers and benches share.
//!
//! ```text
//! bytes ──Session::frame──▶ frame ──Session::decode──▶ Decoded { positions, reply }
//!                                                        │
//!                    server verdict (stored? known device?) ─▶ Reply::for_verdict ─▶ bytes to device
//! ```

pub mod checksum;
mod codec;
pub mod device;
pub mod fuzzing;
mod registry;
mod replay;
pub mod testkit;

use bytes::{Bytes, BytesMut};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Offset, Utc};

use crate::model::{DeviceId, Position, Report};

pub use codec::FrameCodec;
pub use registry::{find, registry};
pub use replay::{replay, replay_input, replay_with, Replay, Step};

/// How a session's bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A byte stream: frames must be cut out of it.
    Tcp,
    /// Datagrams: each one is a frame.
    Udp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// What a session is told when it is created.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub transport: Transport,
    /// Largest frame the framer accepts before declaring the stream broken.
    pub max_frame_bytes: usize,
    /// Offset of the local time some devices send (H02, TK103, …); protocols
    /// whose devices send UTC ignore it. Per port: `protocols.<name>.time_zone`.
    pub time_zone: FixedOffset,
    /// Device model where one protocol name covers firmware variants that
    /// differ on the wire (GT06's VL103, JT808's JC371, …). Per port:
    /// `protocols.<name>.model`; `None` decodes the common form.
    pub model: Option<Arc<str>>,
}

impl SessionConfig {
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            max_frame_bytes: 64 * 1024,
            time_zone: Utc.fix(),
            model: None,
        }
    }

    /// Whether the configured model is `name` (case-insensitive).
    pub fn model_is(&self, name: &str) -> bool {
        self.model
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(name))
    }
}

/// Per-frame facts the decoder needs but cannot know itself.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext {
    /// When the frame arrived; becomes `Position::received_time`.
    pub received: DateTime<Utc>,
}

impl DecodeContext {
    pub fn now() -> Self {
        Self {
            received: Utc::now(),
        }
    }
}

/// One protocol: a name, a default port and a session factory.
/// Register it with one line in `registry.rs`.
pub trait Protocol: Send + Sync + 'static {
    /// Registry name, as used in config, metrics and `Position::protocol`.
    fn name(&self) -> &'static str;
    /// The port fleets usually configure for this protocol.
    fn default_port(&self) -> u16;
    /// Transports this protocol runs on.
    fn transports(&self) -> &'static [Transport];
    /// A fresh session for one TCP connection or one UDP peer.
    fn session(&self, config: &SessionConfig) -> Box<dyn Session>;
    /// The device side, for `trackgate simulate`; `None` until written.
    fn device_side(&self) -> Option<&'static dyn device::DeviceSide> {
        None
    }
}

impl std::fmt::Debug for dyn Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for dyn Protocol {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

/// The sans-IO state of one connection. Pure: no sockets, no clocks, no store.
pub trait Session: Send {
    /// Cuts the next complete frame off the front of `buf`. `Ok(None)`: more
    /// bytes are needed. An error means the stream cannot be resynchronised
    /// and the connection must close. Only called for TCP.
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError>;

    /// Decodes one frame (TCP) or one datagram (UDP).
    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected>;
}

/// What a frame meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// The device announced its id.
    Login,
    /// Records (positions and/or reports).
    Data,
    /// Keeps the connection alive; no data.
    Keepalive,
    /// The device answered a command.
    CommandResponse,
    /// Recognised, carries nothing we store.
    Other,
}

/// A decoded frame: what it carried and the reply bytes for each verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub kind: MessageKind,
    /// The identity this frame claims (login, or per-message id).
    pub device: Option<DeviceId>,
    pub positions: Vec<Position>,
    pub reports: Vec<Report>,
    pub reply: Reply,
}

impl Decoded {
    /// A frame that only needs `reply` sent back.
    pub fn control(kind: MessageKind, device: Option<DeviceId>, reply: Reply) -> Self {
        Self {
            kind,
            device,
            positions: Vec::new(),
            reports: Vec::new(),
            reply,
        }
    }
}

/// The reply the device gets, prepared by the protocol for both outcomes so
/// the server only decides which one to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Sent when everything in the frame was accepted (stored / device known).
    pub accept: Option<Bytes>,
    /// Sent when the device or its data was refused.
    pub refuse: Option<Bytes>,
    /// Sent when downstream failed (storage down): only for protocols where
    /// silence would leave the device hanging (HTTP: 503). Nothing was
    /// accepted; the device must retry.
    pub fail: Option<Bytes>,
}

impl Reply {
    /// No reply either way.
    pub const NONE: Reply = Reply {
        accept: None,
        refuse: None,
        fail: None,
    };

    pub fn accept_only(b: impl Into<Bytes>) -> Self {
        Self {
            accept: Some(b.into()),
            refuse: None,
            fail: None,
        }
    }

    pub fn both(accept: impl Into<Bytes>, refuse: impl Into<Bytes>) -> Self {
        Self {
            accept: Some(accept.into()),
            refuse: Some(refuse.into()),
            fail: None,
        }
    }

    /// Also answer `fail` when downstream failed.
    pub fn with_fail(mut self, fail: impl Into<Bytes>) -> Self {
        self.fail = Some(fail.into());
        self
    }

    /// The bytes for `verdict`.
    pub fn for_verdict(&self, verdict: Verdict) -> Option<&Bytes> {
        match verdict {
            Verdict::Accepted => self.accept.as_ref(),
            Verdict::Refused => self.refuse.as_ref(),
            Verdict::Failed => self.fail.as_ref(),
        }
    }
}

/// The server's decision on a decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted downstream: send the positive reply.
    Accepted,
    /// The device (or its data) is refused: send the negative reply, if any.
    Refused,
    /// Downstream failed: send nothing, the device keeps its data and retries.
    Failed,
}

/// A frame the decoder would not accept, with what (if anything) to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub error: DecodeError,
    /// Bytes that make the device resend at once, where the protocol has them.
    pub reply: Option<Bytes>,
    /// Whether the connection must close (the session cannot continue).
    pub close: bool,
}

impl Rejected {
    /// Rejected, no reply, connection stays open.
    pub fn skip(error: DecodeError) -> Self {
        Self {
            error,
            reply: None,
            close: false,
        }
    }

    /// Rejected and the connection must close.
    pub fn fatal(error: DecodeError) -> Self {
        Self {
            error,
            reply: None,
            close: true,
        }
    }
}

/// Why a frame was not decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("checksum mismatch: frame carries {carried:#x}, computed {computed:#x}")]
    Checksum { carried: u32, computed: u32 },
    #[error("length mismatch: header says {declared} bytes, found {actual}")]
    Length { declared: usize, actual: usize },
    #[error("malformed {what} at offset {offset}")]
    Malformed { what: &'static str, offset: usize },
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },
    #[error("data before the device identified itself")]
    NotIdentified,
    #[error("invalid device id: {0}")]
    DeviceId(#[from] crate::model::DeviceIdError),
}

impl DecodeError {
    /// Short label for `trackgate_decode_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Checksum { .. } => "checksum",
            Self::Length { .. } => "length",
            Self::Malformed { .. } => "malformed",
            Self::Unsupported { .. } => "unsupported",
            Self::NotIdentified => "not_identified",
            Self::DeviceId(_) => "device_id",
        }
    }
}

/// Why a byte stream cannot be framed; the connection closes.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {declared} bytes exceeds the limit of {max}")]
    TooLarge { declared: usize, max: usize },
    #[error("unrecognised bytes at frame start: {0}")]
    Garbage(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "frame_too_large",
            Self::Garbage(_) => "frame_garbage",
            Self::Io(_) => "io",
        }
    }
}
