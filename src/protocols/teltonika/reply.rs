//! The exact bytes a Teltonika device gets back.
//!
//! ```text
//! IMEI login       01 accept | 00 refuse (the device disconnects and retries)
//! TCP AVL packet   u32 BE number of records accepted
//! TCP resend       00 00 00 00 (zero accepted: the device sends the packet again)
//! UDP AVL packet   00 05 | u16 packet id | 01 | u8 AVL packet id | u8 records accepted
//! codec 12/13      nothing
//! ```

use bytes::Bytes;

use crate::protocol::Reply;

/// IMEI accepted.
pub(super) const LOGIN_ACCEPT: &[u8] = &[0x01];
/// IMEI refused.
pub(super) const LOGIN_REFUSE: &[u8] = &[0x00];
/// "Zero records accepted": the device resends the packet at once.
pub(super) const RESEND: &[u8] = &[0x00, 0x00, 0x00, 0x00];
/// Length of a UDP acknowledgement after its own length field.
const UDP_ACK_LEN: u16 = 5;
/// The byte Teltonika puts between the packet id and the AVL packet id.
const UDP_ACK_TYPE: u8 = 0x01;

/// Reply to an IMEI packet.
pub(super) fn login() -> Reply {
    Reply::both(
        Bytes::from_static(LOGIN_ACCEPT),
        Bytes::from_static(LOGIN_REFUSE),
    )
}

/// Reply to a TCP AVL packet of `count` records: all of them when accepted,
/// nothing when refused (the device keeps its records and retries).
pub(super) fn tcp_ack(count: u8) -> Reply {
    match TCP_ACKS.get(usize::from(count)) {
        Some(ack) => Reply::accept_only(Bytes::from_static(ack)),
        None => Reply::accept_only(Bytes::copy_from_slice(&u32::from(count).to_be_bytes())),
    }
}

/// Every TCP acknowledgement, so that replying allocates nothing.
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
static TCP_ACKS: [[u8; 4]; 256] = {
    let mut acks = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        acks[n] = (n as u32).to_be_bytes();
        n += 1;
    }
    acks
};

/// The TCP "send it again" reply for a packet that failed its own checks.
pub(super) fn resend() -> Bytes {
    Bytes::from_static(RESEND)
}

/// Reply to a UDP datagram: echoes both ids and acknowledges `count` records.
pub(super) fn udp_ack(packet_id: u16, avl_packet_id: u8, count: u8) -> Reply {
    let [len_hi, len_lo] = UDP_ACK_LEN.to_be_bytes();
    let [id_hi, id_lo] = packet_id.to_be_bytes();
    Reply::accept_only(Bytes::copy_from_slice(&[
        len_hi,
        len_lo,
        id_hi,
        id_lo,
        UDP_ACK_TYPE,
        avl_packet_id,
        count,
    ]))
}
