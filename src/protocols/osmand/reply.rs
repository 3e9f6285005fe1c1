//! The HTTP responses. Every one has `Content-Length: 0` and leaves the
//! connection open (HTTP/1.1 keep-alive), except where the request could
//! not be framed to its end (the server closes after the reply).
//!
//! ```text
//! accepted                         HTTP/1.1 200 OK
//! unknown device, query/form       HTTP/1.1 400 Bad Request
//! unknown device, JSON             HTTP/1.1 404 Not Found
//! malformed request                HTTP/1.1 400 Bad Request
//! chunked body                     HTTP/1.1 411 Length Required
//! method other than GET/POST/PUT   HTTP/1.1 405 Method Not Allowed
//! storage failing (nothing stored) HTTP/1.1 503 Service Unavailable, Retry-After: 5
//! ```

use bytes::Bytes;

use crate::protocol::Reply;

pub(super) const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
pub(super) const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
pub(super) const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
pub(super) const LENGTH_REQUIRED: &[u8] =
    b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
pub(super) const BAD_REQUEST_CLOSE: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
pub(super) const UNAVAILABLE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n";
pub(super) const METHOD_NOT_ALLOWED: &[u8] =
    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n";

/// 200 when accepted; 400 when the device is refused.
pub(super) fn query() -> Reply {
    Reply::both(Bytes::from_static(OK), Bytes::from_static(BAD_REQUEST))
        .with_fail(Bytes::from_static(UNAVAILABLE))
}

/// 200 when accepted; 404 when the device is refused.
pub(super) fn json() -> Reply {
    Reply::both(Bytes::from_static(OK), Bytes::from_static(NOT_FOUND))
        .with_fail(Bytes::from_static(UNAVAILABLE))
}
