//! The bytes a device gets back. Queclink has no negative reply: an
//! unknown device gets nothing and keeps its data.
//!
//! ```text
//! heartbeat  +ACK:GTHBD,<ver>,<imei>,…,<send time>,<count>$  →  +SACK:GTHBD,<ver>,<count>$
//! SACK mode  any report / +ACK with count <count>           →  +SACK:<count>$
//! ```

use bytes::Bytes;

/// The heartbeat acknowledgement; `None` unless `count` is 4 hex digits.
pub(super) fn heartbeat(version: &str, count: &str) -> Option<Bytes> {
    let ok_version = version.bytes().all(|b| b.is_ascii_hexdigit()) && version.len() <= 10;
    (is_count(count) && ok_version).then(|| Bytes::from(format!("+SACK:GTHBD,{version},{count}$")))
}

/// The per-message server acknowledgement of SACK mode.
pub(super) fn sack(count: &str) -> Option<Bytes> {
    is_count(count).then(|| Bytes::from(format!("+SACK:{count}$")))
}

fn is_count(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_echoes_version_and_count() {
        assert_eq!(
            heartbeat("1A0401", "11F0").as_deref(),
            Some(&b"+SACK:GTHBD,1A0401,11F0$"[..])
        );
        assert_eq!(heartbeat("1A0401", "11F0,x"), None);
        assert_eq!(sack("0C19").as_deref(), Some(&b"+SACK:0C19$"[..]));
        assert_eq!(sack(""), None);
    }
}
