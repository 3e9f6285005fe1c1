//! The exact bytes a Wialon IPS device gets back (every answer ends `\r\n`).
//!
//! ```text
//! #L#   #AL#1 accepted | #AL#0 refused (unknown or unreadable id)
//! #SD#  #ASD#1 accepted | #ASD#-1 bad structure | #ASD#14 CRC wrong
//! #D#   #AD#1 accepted  | #AD#-1 bad structure  | #AD#16 CRC wrong
//! #B#   #AB#<records>   | #AB#0 CRC wrong or bad structure
//! #P#   #AP#
//! #M#   #AM#1
//! ```

use bytes::Bytes;

use crate::protocol::Reply;

pub(super) const LOGIN_ACCEPT: &[u8] = b"#AL#1\r\n";
pub(super) const LOGIN_REFUSE: &[u8] = b"#AL#0\r\n";
pub(super) const SHORT_ACCEPT: &[u8] = b"#ASD#1\r\n";
pub(super) const SHORT_STRUCTURE: &[u8] = b"#ASD#-1\r\n";
pub(super) const SHORT_CRC: &[u8] = b"#ASD#14\r\n";
pub(super) const DATA_ACCEPT: &[u8] = b"#AD#1\r\n";
pub(super) const DATA_STRUCTURE: &[u8] = b"#AD#-1\r\n";
pub(super) const DATA_CRC: &[u8] = b"#AD#16\r\n";
pub(super) const BLACK_BOX_NONE: &[u8] = b"#AB#0\r\n";
pub(super) const PING: &[u8] = b"#AP#\r\n";
pub(super) const MESSAGE_ACCEPT: &[u8] = b"#AM#1\r\n";

pub(super) fn login() -> Reply {
    Reply::both(
        Bytes::from_static(LOGIN_ACCEPT),
        Bytes::from_static(LOGIN_REFUSE),
    )
}

/// `#AB#<count>`: the number of records of a black-box batch taken.
pub(super) fn black_box(count: usize) -> Reply {
    Reply::accept_only(Bytes::from(format!("#AB#{count}\r\n")))
}

pub(super) fn accept(bytes: &'static [u8]) -> Reply {
    Reply::accept_only(Bytes::from_static(bytes))
}
