//! One framed HTTP request, parsed again (the framer keeps no state).

use std::borrow::Cow;

use bytes::Bytes;

use super::frame::MAX_HEADERS;
use super::reply;
use crate::protocol::{DecodeError, Rejected};

pub(super) struct Request<'a> {
    /// The query string (after `?`), percent-encoded.
    pub query: &'a str,
    pub content_type: Option<String>,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// A JSON body: by content type, or a body that starts with `{`/`[`.
    pub(super) fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
            || matches!(
                self.body.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            )
    }

    /// Query parameters, then form-body parameters (form POSTs).
    pub(super) fn params(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        let mut out: Vec<_> = form_urlencoded::parse(self.query.as_bytes()).collect();
        if !self.body.is_empty() && !self.is_json() {
            out.extend(form_urlencoded::parse(self.body));
        }
        out
    }
}

/// Sets a client-named attribute within the bounds HTTP ingest keeps
/// (at most `MAX_ATTRIBUTES`, names and texts of at most
/// `MAX_ATTRIBUTE_BYTES`): an app may add a few, not fill the history.
pub(super) fn set_extra(
    a: &mut crate::model::Attributes,
    key: &str,
    value: crate::model::AttrValue,
) -> Result<(), Rejected> {
    use crate::model::{AttrKey, AttrValue, MAX_ATTRIBUTES, MAX_ATTRIBUTE_BYTES};
    let long = matches!(&value, AttrValue::Text(t) if t.len() > MAX_ATTRIBUTE_BYTES);
    if a.len() >= MAX_ATTRIBUTES || key.is_empty() || key.len() > MAX_ATTRIBUTE_BYTES || long {
        return Err(bad_request("attributes", 0));
    }
    a.set(
        AttrKey::Named(std::borrow::Cow::Owned(key.to_string())),
        value,
    );
    Ok(())
}

pub(super) fn bad_request(what: &'static str, offset: usize) -> Rejected {
    Rejected {
        error: DecodeError::Malformed { what, offset },
        reply: Some(Bytes::from_static(reply::BAD_REQUEST)),
        close: false,
    }
}

/// A request whose end is unknown: answer and close.
fn fatal(error: DecodeError, answer: &'static [u8]) -> Rejected {
    Rejected {
        error,
        reply: Some(Bytes::from_static(answer)),
        close: true,
    }
}

pub(super) fn parse(frame: &[u8]) -> Result<Request<'_>, Rejected> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(frame) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(fatal(
                DecodeError::Malformed {
                    what: "http request head",
                    offset: 0,
                },
                reply::BAD_REQUEST_CLOSE,
            ))
        }
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|v| !v.eq_ignore_ascii_case("identity")) {
        return Err(fatal(
            DecodeError::Unsupported {
                what: "transfer encoding",
                value: header("transfer-encoding").unwrap_or_default(),
            },
            reply::LENGTH_REQUIRED,
        ));
    }
    if header("content-length").is_some_and(|v| v.parse::<usize>().is_err()) {
        return Err(fatal(
            DecodeError::Malformed {
                what: "content-length",
                offset: 0,
            },
            reply::BAD_REQUEST_CLOSE,
        ));
    }
    let content_type = header("content-type");
    let method = req.method.unwrap_or_default();
    if !matches!(method, "GET" | "POST" | "PUT") {
        return Err(Rejected {
            error: DecodeError::Unsupported {
                what: "http method",
                value: method.to_string(),
            },
            reply: Some(Bytes::from_static(reply::METHOD_NOT_ALLOWED)),
            close: false,
        });
    }
    let target = req.path.unwrap_or_default();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    Ok(Request {
        query,
        content_type,
        body: frame.get(head..).unwrap_or_default(),
    })
}
