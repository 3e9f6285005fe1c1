//! The exact bytes a Ruptela device gets back: `u16 length | command | data | CRC-16/KERMIT`
//! (the CRC covers command and data). Replies to command N carry command
//! 100 + N, except records (1 and 68), whose ack is command 100.
//!
//! ```text
//! records (1, 68)        00 02 64 01 13 BC      (command 100, 01 = accepted)
//! records, resend        00 02 64 00 02 35      (a bad CRC: the device sends them again at once)
//! DTCs (9)               00 02 6D 01 C4 A4
//! identification (15)    00 02 73 01 <CRC>      (00 when refused)
//! heartbeat (16)         00 02 74 01 <CRC>
//! ```

use bytes::Bytes;

use crate::protocol::checksum::crc16_kermit;
use crate::protocol::Reply;

/// Replies carry the command plus this.
const REPLY_OFFSET: u8 = 100;

pub(super) const ACCEPT: u8 = 1;
pub(super) const REFUSE: u8 = 0;

/// `length | command + 100 | status | CRC`.
pub(super) fn encode(command: u8, status: u8) -> Bytes {
    let content = [command.wrapping_add(REPLY_OFFSET), status];
    let [c0, c1] = crc16_kermit(&content).to_be_bytes();
    let [content0, content1] = content;
    Bytes::copy_from_slice(&[0x00, 0x02, content0, content1, c0, c1])
}

/// The command a records packet (1, 68) or DTC packet (9) is acknowledged
/// with, minus 100.
pub(super) fn acked_as(command: u8) -> u8 {
    match command {
        super::records::RECORDS | super::records::EXTENDED => 0,
        other => other,
    }
}

/// Records and DTCs: the positive ack when stored, nothing when refused.
/// An unknown device gets no ack, as on every protocol: the negative ack
/// would make it send the same records again at once, in a loop at the
/// network's round-trip time (it is kept for a corrupted packet, see
/// `packet.rs`).
pub(super) fn records(command: u8) -> Reply {
    Reply::accept_only(encode(acked_as(command), ACCEPT))
}

/// Identification: accepted or refused.
pub(super) fn identification(command: u8) -> Reply {
    Reply::both(encode(command, ACCEPT), encode(command, REFUSE))
}

/// Heartbeat: answered when accepted.
pub(super) fn heartbeat(command: u8) -> Reply {
    Reply::accept_only(encode(command, ACCEPT))
}
