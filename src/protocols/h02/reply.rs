//! The exact bytes an H02 device gets back. H02 has no negative reply:
//! a refused device simply gets nothing.
//!
//! ```text
//! V1 position report   *HQ,<id>,V4,V1,<yyyyMMddHHmmss>#   (server time, UTC)
//! NBR cell report      *HQ,<id>,V4,NBR,<yyyyMMddHHmmss>#
//! HTBT / V0 heartbeat  the message itself up to the command, then '#':
//!                      *HQ,<id>,HTBT,100#  →  *HQ,<id>,HTBT#
//! everything else      nothing (binary records included)
//! ```

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// `*HQ,<id>,V4,<command>,<yyyyMMddHHmmss>#`: the server's confirmation of
/// `command`, carrying its clock (UTC).
pub(super) fn confirm(id: &str, command: &str, now: DateTime<Utc>) -> Bytes {
    Bytes::from(format!(
        "*HQ,{id},V4,{command},{}#",
        now.format("%Y%m%d%H%M%S")
    ))
}

/// `*<maker>,<id>,<command>#`: a heartbeat echoed back.
pub(super) fn echo(maker: &str, id: &str, command: &str) -> Bytes {
    Bytes::from(format!("*{maker},{id},{command}#"))
}
