//! `trackgate decode`: the replay driver over hex or raw input, one JSON
//! line per frame. Same session code as the server.

use std::io::Read;

use crate::model::{Position, Report};
use crate::protocol::{self, DecodeContext, MessageKind, Replay, SessionConfig, Step, Transport};

/// Why `decode` could not run.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCmdError {
    #[error("unknown protocol {0:?} (known: {1})")]
    UnknownProtocol(String, String),
    #[error("{0} does not run over {1}")]
    Transport(String, Transport),
    /// `line`: the HEX argument's number, or stdin's line.
    #[error("hex input {line} (argument or stdin line): invalid hex: {source}")]
    Hex {
        line: usize,
        source: hex::FromHexError,
    },
    #[error("cannot read stdin: {0}")]
    Stdin(#[from] std::io::Error),
    #[error("input is larger than {MAX_INPUT} bytes")]
    TooLarge,
}

/// One decoded message, as printed (one JSON object per line).
#[derive(Debug, serde::Serialize)]
pub struct Line<'a> {
    /// `login`, `data`, `keepalive`, `command_response`, `other`, or
    /// `rejected` for a frame the session refused (see `error`).
    pub message: &'static str,
    /// The device the message is from: its own id, else the session's.
    pub device_id: Option<String>,
    pub positions: &'a [Position],
    #[serde(skip_serializing_if = "<[Report]>::is_empty")]
    pub reports: &'a [Report],
    /// Hex of the exact bytes the server sends back; empty when it sends
    /// nothing.
    pub reply_hex: String,
    /// Where the message starts in the input, in bytes.
    pub offset: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `decode` printed, and the first thing wrong with the input.
#[derive(Debug)]
pub struct Output {
    /// JSON lines, one per message (rejected frames included).
    pub lines: Vec<String>,
    /// The first error in the input, naming its byte offset; the command
    /// exits non-zero when there is one.
    pub error: Option<String>,
}

/// Decodes hex chunks (`hex`, else stdin lines or raw stdin) as one device
/// session.
pub fn run(
    protocol: &str,
    transport: Transport,
    hex_args: &[String],
    raw: bool,
    stdin: &mut dyn Read,
) -> Result<Output, DecodeCmdError> {
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
    let r = protocol::replay_input(
        p,
        &SessionConfig::new(transport),
        chunks.iter().map(Vec::as_slice),
        &DecodeContext::now(),
    );
    let mut device: Option<String> = None;
    let lines = r.steps.iter().map(|s| render(s, &mut device)).collect();
    Ok(Output {
        lines,
        error: first_error(&r),
    })
}

/// The first problem in the input, with the byte offset it starts at.
fn first_error(r: &Replay) -> Option<String> {
    if let Some((s, e)) = r
        .steps
        .iter()
        .find_map(|s| s.outcome.as_ref().err().map(|e| (s, e)))
    {
        let answer = match &s.reply {
            Some(b) => format!("the server answers {}", hex::encode(b)),
            None => "the server sends nothing".to_string(),
        };
        let then = if e.close {
            "and closes the connection"
        } else {
            "and the session goes on"
        };
        return Some(format!(
            "byte offset {}: {}-byte frame rejected: {} ({}); {answer} {then}",
            s.offset,
            s.frame.len(),
            e.error,
            e.error.kind()
        ));
    }
    if let Some(e) = &r.error {
        return Some(format!(
            "byte offset {}: cannot frame: {e} ({}); the server closes the connection",
            r.stopped_at,
            e.kind()
        ));
    }
    (r.unframed > 0).then(|| {
        format!(
            "byte offset {}: input ends inside a frame ({} bytes left over)",
            r.stopped_at, r.unframed
        )
    })
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

fn render(step: &Step, session_device: &mut Option<String>) -> String {
    let reply_hex = step.reply.as_ref().map(hex::encode).unwrap_or_default();
    let line = match &step.outcome {
        Ok(d) => {
            let own = d
                .device
                .as_ref()
                .or_else(|| d.positions.first().map(|p| &p.device_id));
            if let Some(id) = own {
                *session_device = Some(id.to_string());
            }
            Line {
                message: message_name(d.kind),
                device_id: session_device.clone(),
                positions: &d.positions,
                reports: &d.reports,
                reply_hex,
                offset: step.offset,
                error: None,
            }
        }
        Err(r) => Line {
            message: "rejected",
            device_id: session_device.clone(),
            positions: &[],
            reports: &[],
            reply_hex,
            offset: step.offset,
            error: Some(format!("{} ({})", r.error, r.error.kind())),
        },
    };
    serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"error\":\"cannot render: {e}\"}}"))
}

fn message_name(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Login => "login",
        MessageKind::Data => "data",
        MessageKind::Keepalive => "keepalive",
        MessageKind::CommandResponse => "command_response",
        MessageKind::Other => "other",
    }
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
            e.to_string()
                .starts_with("hex input 1 (argument or stdin line): invalid hex"),
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
        assert_eq!(out.lines.len(), 1);
        assert_eq!(out.error, None);
        let v: serde_json::Value = serde_json::from_str(&out.lines[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": "login", "device_id": "356307042441013",
                "positions": [], "reply_hex": "01", "offset": 0})
        );
    }

    const LOGIN: &str = "000f333536333037303432343431303133";
    const DATA: &str = "000000000000003608010000016b40d8ea30010000000000000000000000000000000105021503010101425e0f01f10000601a014e0000000000000000010000c7cf";

    fn decode(hex: &[&str]) -> Output {
        let args: Vec<String> = hex.iter().map(|h| h.to_string()).collect();
        run(
            "teltonika",
            Transport::Tcp,
            &args,
            false,
            &mut std::io::empty(),
        )
        .unwrap()
    }

    #[test]
    fn data_lines_carry_the_session_device_and_the_exact_reply() {
        let out = decode(&[LOGIN, DATA]);
        assert_eq!(out.error, None);
        let v: serde_json::Value = serde_json::from_str(&out.lines[1]).unwrap();
        assert_eq!(v["message"], "data");
        assert_eq!(v["device_id"], "356307042441013");
        assert_eq!(v["reply_hex"], "00000001");
        assert_eq!(v["offset"], 17);
        assert_eq!(v["positions"].as_array().unwrap().len(), 1);
        // A keepalive: decoded, nothing sent back.
        let out = decode(&[LOGIN, "ff"]);
        let v: serde_json::Value = serde_json::from_str(&out.lines[1]).unwrap();
        assert_eq!(
            (v["message"].as_str(), v["reply_hex"].as_str()),
            (Some("keepalive"), Some(""))
        );
    }

    #[test]
    fn malformed_input_names_the_byte_offset() {
        // A broken CRC in the second frame (it starts after the 17-byte login).
        let bad = format!("{}00", &DATA[..DATA.len() - 2]);
        let out = decode(&[LOGIN, &bad]);
        let e = out.error.unwrap();
        assert!(
            e.starts_with("byte offset 17: 66-byte frame rejected: "),
            "{e}"
        );
        assert!(
            e.contains("00000000"),
            "the zero count the server sends: {e}"
        );
        let v: serde_json::Value = serde_json::from_str(&out.lines[1]).unwrap();
        assert_eq!(
            (v["message"].as_str(), v["reply_hex"].as_str()),
            (Some("rejected"), Some("00000000"))
        );
        // The input stops inside a frame.
        let e = decode(&[LOGIN, &DATA[..40]]).error.unwrap();
        assert_eq!(
            e,
            "byte offset 17: input ends inside a frame (20 bytes left over)"
        );
        // Bytes that cannot start a frame.
        let e = decode(&[LOGIN, DATA, "474554202f"]).error.unwrap();
        assert!(e.starts_with("byte offset 83: cannot frame: "), "{e}");
    }
}
