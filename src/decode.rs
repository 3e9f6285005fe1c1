//! `trackgate decode`: the replay driver over hex or raw input, one JSON
//! line per frame. Same session code as the server.

use std::io::Read;

use crate::model::{Position, Report};
use crate::protocol::{self, DecodeContext, Step, Transport};

/// Why `decode` could not run.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCmdError {
    #[error("unknown protocol {0:?} (known: {1})")]
    UnknownProtocol(String, String),
    #[error("{0} does not run over {1}")]
    Transport(String, Transport),
    #[error("input line {line}: invalid hex: {source}")]
    Hex {
        line: usize,
        source: hex::FromHexError,
    },
    #[error("cannot read stdin: {0}")]
    Stdin(#[from] std::io::Error),
    #[error("input is larger than {MAX_INPUT} bytes")]
    TooLarge,
}

/// One frame's result, as printed.
#[derive(Debug, serde::Serialize)]
pub struct Line<'a> {
    pub frame: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub positions: &'a [Position],
    pub reports: &'a [Report],
    /// Hex of the reply sent when everything is accepted; null: no reply.
    pub reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

/// Decodes hex chunks (`hex`, else stdin lines or raw stdin) and returns the
/// output lines (JSON) and, last, a framing error if the stream broke.
pub fn run(
    protocol: &str,
    transport: Transport,
    hex_args: &[String],
    raw: bool,
    stdin: &mut dyn Read,
) -> Result<Vec<String>, DecodeCmdError> {
    let p = protocol::find(protocol).ok_or_else(|| {
        let known: Vec<&str> = protocol::registry().iter().map(|p| p.name()).collect();
        DecodeCmdError::UnknownProtocol(protocol.to_string(), known.join(", "))
    })?;
    if !p.transports().contains(&transport) {
        return Err(DecodeCmdError::Transport(protocol.to_string(), transport));
    }
    let chunks: Vec<Vec<u8>> = if !hex_args.is_empty() {
        parse_hex_lines(hex_args.iter().map(String::as_str))?
    } else if raw {
        let mut buf = Vec::new();
        read_bounded(stdin, &mut buf)?;
        vec![buf]
    } else {
        let mut raw = Vec::new();
        read_bounded(stdin, &mut raw)?;
        let text = String::from_utf8(raw)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        parse_hex_lines(text.lines())?
    };
    let (steps, err) = protocol::replay(
        p,
        transport,
        chunks.iter().map(Vec::as_slice),
        &DecodeContext::now(),
    );
    let mut out: Vec<String> = steps.iter().map(render).collect();
    if let Some(e) = err {
        out.push(
            serde_json::json!({"error": e.to_string(), "error_kind": e.kind(), "closed": true})
                .to_string(),
        );
    }
    Ok(out)
}

/// Most bytes `decode` reads from stdin.
pub const MAX_INPUT: u64 = 64 * 1024 * 1024;

fn read_bounded(r: &mut dyn Read, buf: &mut Vec<u8>) -> Result<(), DecodeCmdError> {
    r.take(MAX_INPUT + 1).read_to_end(buf)?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(DecodeCmdError::TooLarge);
    }
    Ok(())
}

fn parse_hex_lines<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<Vec<u8>>, DecodeCmdError> {
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        let compact: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() {
            continue;
        }
        out.push(hex::decode(&compact).map_err(|source| DecodeCmdError::Hex {
            line: i + 1,
            source,
        })?);
    }
    Ok(out)
}

fn render(step: &Step) -> String {
    let line = match &step.outcome {
        Ok(d) => Line {
            frame: hex::encode(&step.frame),
            kind: Some(format!("{:?}", d.kind).to_lowercase()),
            device: d.device.as_ref().map(|d| d.to_string()),
            positions: &d.positions,
            reports: &d.reports,
            reply: step.reply.as_ref().map(hex::encode),
            error: None,
            error_kind: None,
        },
        Err(r) => Line {
            frame: hex::encode(&step.frame),
            kind: None,
            device: None,
            positions: &[],
            reports: &[],
            reply: step.reply.as_ref().map(hex::encode),
            error: Some(r.error.to_string()),
            error_kind: Some(r.error.kind()),
        },
    };
    serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"error\":\"cannot render: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_gets_clear_errors() {
        let mut empty = std::io::empty();
        let e = run("nosuch", Transport::Tcp, &[], false, &mut empty).unwrap_err();
        assert!(
            e.to_string().starts_with("unknown protocol \"nosuch\""),
            "{e}"
        );
        let e = run(
            "teltonika",
            Transport::Tcp,
            &["00zz".into()],
            false,
            &mut empty,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("input line 1: invalid hex"),
            "{e}"
        );
        let mut huge = std::io::repeat(b'0').take(MAX_INPUT + 10);
        let e = run("teltonika", Transport::Tcp, &[], true, &mut huge).unwrap_err();
        assert!(matches!(e, DecodeCmdError::TooLarge), "{e}");
    }

    #[test]
    fn hex_lines_from_stdin_decode_a_login() {
        let mut input =
            std::io::Cursor::new(b"000f 3335 3633 3037 3034 3234 3431 3031 33\n".to_vec());
        let out = run("teltonika", Transport::Tcp, &[], false, &mut input).unwrap();
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(v["kind"], "login");
        assert_eq!(v["device"], "356307042441013");
        assert_eq!(v["reply"], "01");
    }
}
