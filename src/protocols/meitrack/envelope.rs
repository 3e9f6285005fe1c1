//! The envelope around every Meitrack message, and its two checks.
//!
//! ```text
//! $$ <flag> <len> , <IMEI> , <command> , <payload> * <XX> \r\n
//!             └── len counts from this comma through \r\n ──┘
//! XX = byte sum mod 256 of everything from `$$` through `*`, hex
//! ```
//!
//! A frame whose only fault is a missing final `\r\n` (the length then
//! exceeds the bytes by exactly 2) is accepted: senders over UDP and the
//! Traccar captures drop it, and the sum still covers every byte.

use super::reader::Reader;
use crate::model::DeviceId;
use crate::protocol::checksum::sum8;
use crate::protocol::DecodeError;

const CRLF: &[u8] = b"\r\n";
/// `*XX` at the end of the content.
const CHECKSUM_TAIL: usize = 3;

/// A checked frame's parts.
#[derive(Debug)]
pub(super) struct Envelope<'a> {
    pub flag: u8,
    pub imei: &'a [u8],
    pub command: &'a [u8],
    /// Between the comma after the command and the `*`.
    pub payload: &'a [u8],
    /// Offset of `payload` in the frame.
    pub payload_at: usize,
}

impl Envelope<'_> {
    pub(super) fn device(&self) -> Result<DeviceId, DecodeError> {
        let text = std::str::from_utf8(self.imei).map_err(|_| DecodeError::Malformed {
            what: "IMEI",
            offset: 0,
        })?;
        Ok(DeviceId::new(text)?)
    }

    /// A reader over a binary payload.
    pub(super) fn reader(&self) -> Reader<'_> {
        Reader::new(self.payload, self.payload_at)
    }
}

fn malformed(what: &'static str, offset: usize) -> DecodeError {
    DecodeError::Malformed { what, offset }
}

pub(super) fn parse(frame: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let Some(rest) = frame.strip_prefix(b"$$") else {
        return Err(malformed("start '$$'", 0));
    };
    let (&flag, rest) = rest.split_first().ok_or(malformed("flag", 2))?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let declared: usize = rest
        .get(..digits)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .ok_or(malformed("length", 3))?;
    let counted = rest.get(digits..).unwrap_or_default();
    let counted_at = digits.saturating_add(3);
    let actual = counted.len();
    let with_crlf = counted.ends_with(CRLF);
    let content_len = if actual == declared && with_crlf {
        actual.saturating_sub(CRLF.len())
    } else if !with_crlf && actual.checked_add(CRLF.len()) == Some(declared) {
        actual
    } else {
        return Err(DecodeError::Length { declared, actual });
    };
    let content_end = counted_at.saturating_add(content_len);
    let star = content_end
        .checked_sub(CHECKSUM_TAIL)
        .filter(|&s| frame.get(s) == Some(&b'*'))
        .ok_or(malformed("'*' before the checksum", content_end))?;
    let carried = frame
        .get(star.saturating_add(1)..content_end)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u8::from_str_radix(h, 16).ok())
        .ok_or(malformed("checksum", star.saturating_add(1)))?;
    let computed = sum8(frame.get(..=star).unwrap_or_default());
    if carried != computed {
        return Err(DecodeError::Checksum {
            carried: u32::from(carried),
            computed: u32::from(computed),
        });
    }
    // counted = ",IMEI,CMD,payload*XX": IMEI and command are comma-ended.
    let body = frame.get(counted_at..star).unwrap_or_default();
    let body = body
        .strip_prefix(b",")
        .ok_or(malformed("',' after the length", counted_at))?;
    let imei_len = body
        .iter()
        .position(|&b| b == b',')
        .ok_or(malformed("IMEI", counted_at.saturating_add(1)))?;
    let (imei, rest) = body.split_at(imei_len);
    let command_at = counted_at.saturating_add(imei_len).saturating_add(2);
    let rest = rest.get(1..).unwrap_or_default();
    let (command, payload, payload_at) = match rest.iter().position(|&b| b == b',') {
        Some(n) => (
            rest.get(..n).unwrap_or_default(),
            rest.get(n.saturating_add(1)..).unwrap_or_default(),
            command_at.saturating_add(n).saturating_add(1),
        ),
        None => (rest, &[][..], star),
    };
    if command.len() != 3 {
        return Err(malformed("command", command_at));
    }
    Ok(Envelope {
        flag,
        imei,
        command,
        payload,
        payload_at,
    })
}
