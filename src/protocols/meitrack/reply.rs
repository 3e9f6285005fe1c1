//! The exact bytes a Meitrack device gets back. Every answer is
//! `@@<flag><len>,<IMEI>,<command>,<value>*<XX>\r\n`, `len` counting from
//! the comma after it through `\r\n` and `XX` the byte sum (mod 256, upper
//! case hex) of everything before it, `*` included.
//!
//! ```text
//! CCC batch of n records   @@<flag of the batch><len>,<IMEI>,CCC,<n>*XX\r\n
//! AAC                      @@z<len>,<IMEI>,AAC,1*XX\r\n   (len 27 for a 15-digit IMEI)
//! AAA, AFF, CCE, answers   nothing
//! ```

use bytes::Bytes;

use crate::model::DeviceId;
use crate::protocol::checksum::sum8;
use crate::protocol::Reply;

/// `@@<flag><len>,<imei>,<command>,<value>*XX\r\n`.
pub(super) fn build(flag: u8, imei: &str, command: &str, value: &str) -> Vec<u8> {
    let tail = format!(",{imei},{command},{value}*XX\r\n");
    let mut out = vec![b'@', b'@', flag];
    out.extend_from_slice(tail.len().to_string().as_bytes());
    out.extend_from_slice(tail.as_bytes());
    // The sum covers everything up to and including '*' (5 bytes from the end).
    let star = out.len().saturating_sub(4);
    let sum = sum8(out.get(..star).unwrap_or_default());
    let hex = format!("{sum:02X}");
    if let Some(slot) = out.get_mut(star..star.saturating_add(2)) {
        slot.copy_from_slice(hex.as_bytes());
    }
    out
}

/// Acknowledges a CCC batch of `count` records: the device deletes them
/// from its cache.
pub(super) fn ccc_ack(flag: u8, device: &DeviceId, count: usize) -> Reply {
    Reply::accept_only(Bytes::from(build(
        flag,
        device.as_str(),
        "CCC",
        &count.to_string(),
    )))
}

/// The answer to `AAC`.
pub(super) fn aac_ack(device: &DeviceId) -> Reply {
    Reply::accept_only(Bytes::from(build(b'z', device.as_str(), "AAC", "1")))
}
