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
        stdin.read_to_end(&mut buf)?;
        vec![buf]
    } else {
        let mut text = String::new();
        stdin.read_to_string(&mut text)?;
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
