//! HTTP/1.1 request framing: the head ends at the first `\r\n\r\n` and is
//! bounded by `max_frame_bytes`; a `Content-Length` body follows it.
//!
//! - A head `httparse` cannot read is still cut (up to its `\r\n\r\n`) so
//!   the decoder can answer 400 and close.
//! - A chunked body is not decoded: the head alone is cut and the decoder
//!   answers 411 and closes (Traccar Client and OsmAnd send Content-Length).
//! - A `Content-Length` that does not parse is left to the decoder (400,
//!   close); one that exceeds the limit closes the stream here.

use crate::protocol::FrameError;

/// Headers read per request; more is a bad request.
pub(super) const MAX_HEADERS: usize = 64;
const HEAD_END: &[u8] = b"\r\n\r\n";

/// The size of the request at the front of `buf`, once complete.
pub(super) fn next_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return partial(buf, max),
        // Unreadable: hand the head to the decoder, which answers 400.
        Err(_) => return partial(buf, max).map(|_| find_head_end(buf)),
    };
    if head > max {
        return Err(FrameError::TooLarge {
            declared: head,
            max,
        });
    }
    let chunked = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && !String::from_utf8_lossy(h.value)
                .trim()
                .eq_ignore_ascii_case("identity")
    });
    let length = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
    let body = match (chunked, length) {
        (true, _) | (false, Some(None)) => 0,
        (false, Some(Some(n))) => n,
        (false, None) => 0,
    };
    let total = head.saturating_add(body);
    if total > max {
        return Err(FrameError::TooLarge {
            declared: total,
            max,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Still waiting: fine while under the limit.
fn partial(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() > max {
        return Err(FrameError::TooLarge {
            declared: buf.len(),
            max,
        });
    }
    Ok(None)
}

/// Up to and including the first `\r\n\r\n`, if it has arrived.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(HEAD_END.len())
        .position(|w| w == HEAD_END)
        .map(|p| p.saturating_add(HEAD_END.len()))
}
