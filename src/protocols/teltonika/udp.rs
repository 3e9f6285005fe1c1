//! UDP datagrams: every one names its device and carries AVL data without
//! a CRC.
//!
//! ```text
//! u16 length (bytes after this field) | u16 packet id | u8 packet type
//! u8 AVL packet id | u16 IMEI length | IMEI | data (codec .. second count)
//! ```
//!
//! A datagram that fails its checks gets no reply: the device sends it again
//! after its own timeout. UDP has no "zero accepted" shortcut worth taking,
//! since the ids tie an answer to one datagram only.

use nom::bytes::complete::take;
use nom::error::context;
use nom::number::complete::{be_u16, be_u8};

use super::avl::{self, Fail, PResult, RecordCtx};
use super::reply;
use crate::model::DeviceId;
use crate::protocol::{DecodeContext, DecodeError, Decoded, Rejected, Reply};

/// Bytes of the datagram's own length field.
const LENGTH_BYTES: usize = 2;

struct Header<'a> {
    packet_id: u16,
    avl_packet_id: u8,
    imei: &'a [u8],
}

fn header(i: &[u8]) -> PResult<'_, Header<'_>> {
    let (i, packet_id) = context("packet id", be_u16)(i)?;
    let (i, _packet_type) = context("packet type", be_u8)(i)?;
    let (i, avl_packet_id) = context("AVL packet id", be_u8)(i)?;
    let (i, imei_len) = context("IMEI length", be_u16)(i)?;
    let (i, imei) = context("IMEI", take(imei_len))(i)?;
    Ok((
        i,
        Header {
            packet_id,
            avl_packet_id,
            imei,
        },
    ))
}

/// Decodes one datagram.
pub(super) fn decode(datagram: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
    let skip = |e: DecodeError| Rejected::skip(e);
    let Some((len, body)) = datagram.split_first_chunk::<LENGTH_BYTES>() else {
        return Err(skip(DecodeError::Malformed {
            what: "datagram length",
            offset: 0,
        }));
    };
    let declared = usize::from(u16::from_be_bytes(*len));
    if declared != body.len() {
        return Err(skip(DecodeError::Length {
            declared,
            actual: body.len(),
        }));
    }
    let offset = |rest: &[u8]| datagram.len().saturating_sub(rest.len());
    let (data, h) = header(body).map_err(|e| {
        let f = match e {
            nom::Err::Error(f) | nom::Err::Failure(f) => f,
            nom::Err::Incomplete(_) => Fail {
                rest: &[],
                what: "datagram header",
            },
        };
        skip(DecodeError::Malformed {
            what: f.what,
            offset: offset(f.rest),
        })
    })?;
    let text = std::str::from_utf8(h.imei).map_err(|_| {
        skip(DecodeError::Malformed {
            what: "IMEI (not ASCII)",
            offset: offset(h.imei),
        })
    })?;
    let device = DeviceId::new(text).map_err(|e| skip(e.into()))?;
    let rctx = RecordCtx {
        device: &device,
        received: ctx.received,
    };
    let decoded = avl::decode(data, offset(data), &rctx).map_err(|e| skip(e.into()))?;
    let kind = decoded.kind();
    let reply = if decoded.codec.is_command() {
        Reply::NONE
    } else {
        reply::udp_ack(h.packet_id, h.avl_packet_id, decoded.count)
    };
    Ok(Decoded {
        kind,
        device: Some(device),
        positions: decoded.positions,
        reports: decoded.reports,
        reply,
    })
}
