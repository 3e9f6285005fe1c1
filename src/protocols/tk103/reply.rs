//! The exact bytes a TK103 device gets back. TK103 has no negative reply.
//!
//! ```text
//! (<id>BP00…)   handshake  →  (<id>AP01HSO)
//! (<id>BP05…)   login      →  (<id>AP05)
//! everything else             nothing
//! ```
//! Only the fixed-width form (`(` + 12-character id + command) is answered,
//! as the device waits for these; the comma form gets nothing.

use bytes::Bytes;

/// `(<id>AP01HSO)`
pub(super) fn handshake(id: &str) -> Bytes {
    Bytes::from(format!("({id}AP01HSO)"))
}

/// `(<id>AP05)`
pub(super) fn login(id: &str) -> Bytes {
    Bytes::from(format!("({id}AP05)"))
}
