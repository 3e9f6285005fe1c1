//! Access-log downloads: an Excel workbook (a summary sheet for the
//! permission and one row per log entry) and CSV. Shipment numbers are a
//! partner's free text, so nothing is ever written as a formula: cells are
//! strings, and CSV cells that a spreadsheet would evaluate get a leading
//! apostrophe.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::PermissionState;
use crate::api::ms_to_rfc3339;
use crate::store::{Permission, StoredEntry};

/// What the summary sheet shows.
pub struct Summary<'a> {
    pub permission: &'a Permission,
    pub state: PermissionState,
    /// (device id, device name), in the permission's device order.
    pub device_names: &'a [(String, String)],
    pub generated_ms: i64,
}

/// Why a workbook could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write workbook: {0}")]
    Xlsx(#[from] XlsxError),
}

/// The log sheet's and the CSV's columns.
pub const COLUMNS: [&str; 17] = [
    "Entry id",
    "Date and time (UTC)",
    "Event",
    "Provider company",
    "Recipient company",
    "User id",
    "Device id",
    "Device name",
    "Permission id",
    "Permission name",
    "Channel",
    "Query",
    "Positions",
    "Shipment number",
    "Client address",
    "User agent",
    "Detail",
];

/// `YYYY-MM-DD HH:MM:SS.mmm`, UTC.
fn when(ms: i64) -> String {
    ms_to_rfc3339(ms)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

fn row(e: &StoredEntry) -> [String; 17] {
    let x = &e.entry;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        e.id.to_string(),
        when(x.time_ms),
        x.event.clone(),
        opt(&x.provider_company_id),
        opt(&x.recipient_company_id),
        num(x.user_id),
        opt(&x.device_id),
        opt(&x.device_name),
        num(x.permission_id),
        opt(&x.permission_name),
        opt(&x.channel),
        opt(&x.query),
        num(x.positions),
        opt(&x.shipment_number),
        opt(&x.client_addr),
        opt(&x.user_agent),
        opt(&x.detail),
    ]
}

/// The workbook: sheet "Permission" (summary) and sheet "Access log".
pub fn xlsx(summary: &Summary, entries: &[StoredEntry]) -> Result<Vec<u8>, ExportError> {
    let p = summary.permission;
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();

    let sheet = wb.add_worksheet().set_name("Permission")?;
    let mut lines: Vec<(String, String)> = vec![
        ("Permission id".into(), p.id.to_string()),
        ("Permission name".into(), p.name.clone()),
        ("Provider company".into(), p.provider_company_id.clone()),
        ("Recipient company".into(), p.recipient_company_id.clone()),
        (
            "Recipient user id".into(),
            p.recipient_user_id
                .map(|u| u.to_string())
                .unwrap_or_else(|| "(any user)".into()),
        ),
        (
            "Kind".into(),
            if p.temporary { "temporary" } else { "partner" }.into(),
        ),
        ("Valid from (UTC)".into(), when(p.valid_from_ms)),
        (
            "Valid until (UTC)".into(),
            p.valid_until_ms
                .map(when)
                .unwrap_or_else(|| "until revoked".into()),
        ),
        (
            "State".into(),
            format!("{:?}", summary.state).to_lowercase(),
        ),
        (
            "Revoked at (UTC)".into(),
            p.revoked_ms.map(when).unwrap_or_default(),
        ),
        ("Generated at (UTC)".into(), when(summary.generated_ms)),
    ];
    for (id, name) in summary.device_names {
        lines.push(("Device".into(), id.clone()));
        lines.push(("Device name".into(), name.clone()));
    }
    for (r, (label, value)) in lines.iter().enumerate() {
        let r = r as u32;
        sheet.write_string_with_format(r, 0, label, &bold)?;
        sheet.write_string(r, 1, value)?;
    }
    sheet.set_column_width(0, 22)?;
    sheet.set_column_width(1, 40)?;

    let sheet = wb.add_worksheet().set_name("Access log")?;
    for (c, h) in COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, e) in entries.iter().enumerate() {
        for (c, v) in row(e).iter().enumerate() {
            sheet.write_string((r + 1) as u32, c as u16, v)?;
        }
    }
    for (c, w) in [
        9, 24, 16, 12, 12, 8, 18, 20, 10, 24, 8, 14, 9, 22, 16, 24, 30,
    ]
    .iter()
    .enumerate()
    {
        sheet.set_column_width(c as u16, *w)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(wb.save_to_buffer()?)
}

/// RFC 4180 quoting, CRLF line ends, formula-looking text neutralised.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The log as CSV with the same columns as the workbook's log sheet.
pub fn csv(entries: &[StoredEntry]) -> String {
    let mut out = COLUMNS
        .iter()
        .map(|h| csv_cell(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for e in entries {
        out.push_str(
            &row(e)
                .iter()
                .map(|v| csv_cell(v))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{entry_hash, LogEntry, GENESIS};
    use calamine::Reader;

    fn permission() -> Permission {
        Permission {
            id: 7,
            name: "Load 42".into(),
            provider_company_id: "4711".into(),
            recipient_company_id: "0815".into(),
            recipient_user_id: None,
            devices: vec![("356307042441013".into(), Some("=HYPERLINK(\"x\")".into()))],
            valid_from_ms: 1_700_000_000_000,
            valid_until_ms: None,
            temporary: false,
            created_ms: 1_700_000_000_000,
            revoked_ms: None,
        }
    }

    fn entries() -> Vec<StoredEntry> {
        let mk = |id: i64, sn: Option<&str>| {
            let entry = LogEntry {
                scope: "partner",
                time_ms: 1_700_000_000_123 + id * 1000,
                event: "read".into(),
                permission_id: Some(7),
                permission_name: Some("Load 42".into()),
                provider_company_id: Some("4711".into()),
                recipient_company_id: Some("0815".into()),
                user_id: Some(3),
                device_id: Some("356307042441013".into()),
                device_name: Some("Truck, \"one\"".into()),
                channel: Some("api".into()),
                query: Some("latest".into()),
                positions: Some(1),
                shipment_number: sn.map(str::to_string),
                ..Default::default()
            };
            StoredEntry {
                id,
                hash: entry_hash(&GENESIS, id, &entry),
                entry,
                prev_hash: GENESIS,
            }
        };
        vec![
            mk(1, None),
            mk(2, Some("=HYPERLINK(\"x\")")),
            mk(3, Some("SN-1")),
        ]
    }

    #[test]
    fn workbook_reads_back_cell_for_cell() {
        let p = permission();
        let names = vec![("356307042441013".to_string(), "Truck 1".to_string())];
        let bytes = xlsx(
            &Summary {
                permission: &p,
                state: PermissionState::Active,
                device_names: &names,
                generated_ms: 1_700_000_100_000,
            },
            &entries(),
        )
        .unwrap();
        let mut wb: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(wb.sheet_names(), ["Permission", "Access log"]);
        let s = wb.worksheet_range("Permission").unwrap();
        let cell = |r: u32, c: u32| {
            s.get_value((r, c))
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            (cell(1, 0), cell(1, 1)),
            ("Permission name".into(), "Load 42".into())
        );
        assert_eq!(cell(2, 1), "4711");
        assert_eq!(cell(3, 1), "0815");
        assert_eq!(cell(5, 1), "partner");
        assert_eq!(cell(6, 1), "2023-11-14 22:13:20.000");
        assert_eq!(cell(8, 1), "active");
        assert_eq!(cell(12, 1), "Truck 1");
        let log = wb.worksheet_range("Access log").unwrap();
        let cell = |r: u32, c: u32| {
            log.get_value((r, c))
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        assert_eq!(cell(0, 1), "Date and time (UTC)");
        assert_eq!(cell(1, 0), "1");
        assert_eq!(cell(1, 1), "2023-11-14 22:13:21.123");
        assert_eq!(cell(2, 7), "Truck, \"one\"");
        assert_eq!(cell(2, 13), "=HYPERLINK(\"x\")", "kept as text");
        assert_eq!(cell(3, 9), "Load 42");
        assert_eq!(log.height(), 4);
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let text = csv(&entries());
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 5, "header, 3 rows, trailing empty");
        assert!(lines[0].starts_with("Entry id,Date and time (UTC),Event,"));
        assert_eq!(
            lines[2],
            "2,2023-11-14 22:13:22.123,read,4711,0815,3,356307042441013,\"Truck, \"\"one\"\"\",7,Load 42,api,latest,1,\"'=HYPERLINK(\"\"x\"\")\",,,"
        );
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("plain"), "plain");
    }
}
