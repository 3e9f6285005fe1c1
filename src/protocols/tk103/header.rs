//! The two header forms and dispatch on the command.
//!
//! ```text
//! fixed   (<id: 12 characters><command: 4>…)     e.g. (088047365460BR00151024A2555.3531S…)
//!         ids of 11 or 15 characters occur too: the command is found after them
//! comma   (<id>,<command>,<fields…>)             e.g. (352606090042050,BP05,240414,A,…)
//! ```
//! A command is two capital letters and two digits or capital letters.

use super::fields::malformed;
use super::{position, reply, reports, Ctx};
use crate::model::DeviceId;
use crate::protocol::{Decoded, MessageKind, Rejected, Reply};

/// Where the command starts in the fixed form, most likely first.
const COMMAND_AT: [usize; 7] = [12, 11, 15, 13, 14, 16, 10];
/// The id length of the canonical fixed form (the one the replies use).
const FIXED_ID: usize = 12;

/// A frame's id, command and what follows the command.
pub(super) struct Header<'a> {
    pub device: DeviceId,
    pub command: &'a str,
    /// Everything after the command (and, in the comma form, its comma).
    pub rest: &'a str,
    /// Comma form: dates are ddmmyy; fixed form: yymmdd.
    pub comma: bool,
}

fn is_command(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4
        && b.iter().take(2).all(u8::is_ascii_uppercase)
        && b.iter()
            .skip(2)
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn split(body: &str) -> Option<(Header<'_>, usize)> {
    if let Some((id, after)) = body.split_once(',') {
        let command = after.get(..4).filter(|c| is_command(c));
        let ends = matches!(after.as_bytes().get(4), None | Some(b','));
        if let (Some(command), true, false) = (command, ends, id.is_empty()) {
            let device = DeviceId::new(id).ok()?;
            let rest = after.get(4..).unwrap_or("");
            let rest = rest.strip_prefix(',').unwrap_or(rest);
            let h = Header {
                device,
                command,
                rest,
                comma: true,
            };
            return Some((h, id.len()));
        }
    }
    COMMAND_AT.into_iter().find_map(|at| {
        let id = body.get(..at)?;
        let command = body.get(at..at.checked_add(4)?).filter(|c| is_command(c))?;
        if id.contains(',') {
            return None;
        }
        let device = DeviceId::new(id).ok()?;
        let rest = body.get(at.checked_add(4)?..)?;
        let h = Header {
            device,
            command,
            rest,
            comma: false,
        };
        Some((h, at))
    })
}

pub(super) fn decode(frame: &[u8], c: &Ctx) -> Result<Decoded, Rejected> {
    let text = String::from_utf8_lossy(frame);
    let body = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or(malformed("frame (expected '(' … ')')", 0))?;
    let (h, id_len) = split(body).ok_or(malformed("id and command", 1))?;
    // Handshake and login are answered in the fixed form only (see reply.rs).
    let fixed_id = (!h.comma && id_len == FIXED_ID).then(|| h.device.as_str());
    if h.command == "BP00" {
        let reply = fixed_id.map_or(Reply::NONE, |id| Reply::accept_only(reply::handshake(id)));
        return Ok(Decoded::control(MessageKind::Login, Some(h.device), reply));
    }
    let parsed = if body.contains('{') && body.contains('}') {
        reports::cells(&h, c)
    } else {
        match h.command {
            "ZC20" => reports::battery(&h, c),
            "BZ00" => reports::network(&h, c),
            "ZC03" => reports::command_result(&h, c),
            "BV00" => reports::vin(&h, c),
            "BS50" | "BS51" => super::bms::decode(&h, c),
            cmd if cmd.starts_with("DW5") => reports::lbs_wifi(&h, c),
            _ => position::decode(&h, c).map(|p| match p {
                Some(p) => Decoded {
                    kind: MessageKind::Data,
                    device: Some(h.device.clone()),
                    positions: vec![p],
                    reports: Vec::new(),
                    reply: Reply::NONE,
                },
                None => Decoded::control(MessageKind::Other, Some(h.device.clone()), Reply::NONE),
            }),
        }
    };
    let mut d = match parsed {
        Ok(d) => d,
        // The login is answered whatever its position says (as Traccar
        // does): a device that is never answered never logs in. A position
        // that cannot be read is not stored.
        Err(_) if h.command == "BP05" && fixed_id.is_some() => {
            Decoded::control(MessageKind::Login, Some(h.device.clone()), Reply::NONE)
        }
        Err(e) => return Err(e),
    };
    if h.command == "BP05" {
        if let Some(id) = fixed_id {
            d.reply = Reply::accept_only(reply::login(id));
        }
        if d.positions.is_empty() && d.reports.is_empty() {
            d.kind = MessageKind::Login;
        }
    }
    Ok(d)
}
