//! TCP frames after framing: the IMEI login, AVL packets and the keepalive.
//!
//! Checks on an AVL packet, in order: the device logged in; the declared
//! data length matches the frame; the CRC-16/IBM over the data field
//! matches; the data field holds at least codec and two counts, and both
//! counts agree. A failure of any of these means the bytes contradict themselves,
//! so the device gets `00000000` and resends at once; the connection stays.
//! A packet that passes them but uses an unknown codec or does not parse is
//! rejected without a reply (resending it would not help; the device's own
//! timeout paces its retries).

use bytes::Bytes;

use super::avl::{self, RecordCtx};
use super::frame::{AVL_HEADER, AVL_OVERHEAD, KEEPALIVE};
use super::reply;
use crate::model::DeviceId;
use crate::protocol::checksum::crc16_ibm;
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

/// Bytes of the IMEI packet's length prefix.
const IMEI_LEN_BYTES: usize = 2;

/// Decodes one TCP frame; `device` is the session's login state.
pub(super) fn decode(
    device: &mut Option<DeviceId>,
    frame: &[u8],
    ctx: &DecodeContext,
) -> Result<Decoded, Rejected> {
    match frame {
        [KEEPALIVE] => Ok(Decoded::control(
            MessageKind::Keepalive,
            device.clone(),
            Reply::NONE,
        )),
        [0, 0, ..] => {
            let Some(id) = device.as_ref() else {
                return Err(Rejected::fatal(DecodeError::NotIdentified));
            };
            avl_packet(id, frame, ctx)
        }
        _ => {
            let id = login(frame)?;
            *device = Some(id.clone());
            Ok(Decoded::control(
                MessageKind::Login,
                Some(id),
                reply::login(),
            ))
        }
    }
}

/// An IMEI packet: u16 length + ASCII IMEI.
fn login(frame: &[u8]) -> Result<DeviceId, Rejected> {
    let refuse = |error| Rejected {
        error,
        reply: Some(Bytes::from_static(reply::LOGIN_REFUSE)),
        close: true,
    };
    let Some((len, imei)) = frame.split_first_chunk::<IMEI_LEN_BYTES>() else {
        return Err(refuse(DecodeError::Malformed {
            what: "IMEI length",
            offset: 0,
        }));
    };
    let declared = usize::from(u16::from_be_bytes(*len));
    if declared != imei.len() {
        return Err(refuse(DecodeError::Length {
            declared,
            actual: imei.len(),
        }));
    }
    let text = std::str::from_utf8(imei).map_err(|e| {
        refuse(DecodeError::Malformed {
            what: "IMEI (not ASCII)",
            offset: IMEI_LEN_BYTES.saturating_add(e.valid_up_to()),
        })
    })?;
    DeviceId::new(text).map_err(|e| refuse(e.into()))
}

/// Rejected so that the device sends the packet again at once.
fn resend(error: DecodeError) -> Rejected {
    Rejected {
        error,
        reply: Some(reply::resend()),
        close: false,
    }
}

/// An AVL packet: 4 zero bytes, u32 data length, data, u32 CRC.
pub(super) fn avl_packet(
    device: &DeviceId,
    frame: &[u8],
    ctx: &DecodeContext,
) -> Result<Decoded, Rejected> {
    let Some((header, rest)) = frame.split_first_chunk::<AVL_HEADER>() else {
        return Err(resend(DecodeError::Malformed {
            what: "AVL packet header (truncated)",
            offset: frame.len(),
        }));
    };
    let [_, _, _, _, l0, l1, l2, l3] = *header;
    let declared = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
    let actual = frame.len().saturating_sub(AVL_OVERHEAD);
    let Some((data, crc)) = rest.split_last_chunk::<4>().filter(|_| declared == actual) else {
        return Err(resend(DecodeError::Length { declared, actual }));
    };
    let carried = u32::from_be_bytes(*crc);
    let computed = u32::from(crc16_ibm(data));
    if carried != computed {
        return Err(resend(DecodeError::Checksum { carried, computed }));
    }
    let rctx = RecordCtx {
        device,
        received: ctx.received,
    };
    let decoded = avl::decode(data, AVL_HEADER, &rctx).map_err(|e| {
        if e.is_integrity() {
            resend(e.into())
        } else {
            Rejected::skip(e.into())
        }
    })?;
    let kind = decoded.kind();
    let reply = if decoded.codec.is_command() {
        Reply::NONE
    } else {
        reply::tcp_ack(decoded.count)
    };
    Ok(Decoded {
        kind,
        device: Some(device.clone()),
        positions: decoded.positions,
        reports: decoded.reports,
        reply,
    })
}
