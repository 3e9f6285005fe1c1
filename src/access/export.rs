//! Access-log downloads for one permission: an Excel workbook (a summary
//! sheet for the permission and one row per log entry) and CSV with the
//! same columns.
//!
//! Shipment numbers (and other text) come from partners, so nothing is
//! ever written as a formula: workbook text cells are strings, and CSV text
//! cells that a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR)
//! get a leading apostrophe. Times are UTC text, `YYYY-MM-DD HH:MM:SS.mmm`.

use std::borrow::Cow;

use chrono::DateTime;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::PermissionState;
use crate::store::{Permission, StoredEntry};

/// What the summary sheet shows besides the permission itself.
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
    #[error(
        "{entries} log entries do not fit one worksheet (at most {max}); download CSV or a shorter from/to range instead"
    )]
    TooManyRows { entries: usize, max: usize },
    #[error("cannot write workbook: {0}")]
    Xlsx(#[from] XlsxError),
}

/// The log sheet's and the CSV's columns. `Detail` carries what the event
/// changed (the devices of a grant, the previous shipment number).
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

/// Log sheet column widths, in characters, matching `COLUMNS`.
const WIDTHS: [u8; 17] = [
    9, 23, 16, 16, 17, 8, 18, 20, 13, 24, 9, 12, 10, 22, 16, 30, 40,
];

/// Excel's rows per sheet, less the header row.
pub const MAX_XLSX_ENTRIES: usize = 1_048_575;

/// Excel's limit on the characters in one cell.
const MAX_CELL_CHARS: usize = 32_767;

/// One cell of the log: numbers stay numbers in the workbook.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Empty,
    Number(i64),
    Text(String),
}

impl Cell {
    fn text(v: &Option<String>) -> Self {
        v.as_ref().map_or(Cell::Empty, |s| Cell::Text(s.clone()))
    }

    fn number(v: Option<i64>) -> Self {
        v.map_or(Cell::Empty, Cell::Number)
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm`, UTC; the bare number outside chrono's range.
fn utc_text(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

fn state_name(s: PermissionState) -> &'static str {
    match s {
        PermissionState::Active => "active",
        PermissionState::Scheduled => "scheduled",
        PermissionState::Expired => "expired",
        PermissionState::Revoked => "revoked",
    }
}

fn log_row(e: &StoredEntry) -> [Cell; 17] {
    let x = &e.entry;
    [
        Cell::Number(e.id),
        Cell::Text(utc_text(x.time_ms)),
        Cell::Text(x.event.clone()),
        Cell::text(&x.provider_company_id),
        Cell::text(&x.recipient_company_id),
        Cell::number(x.user_id),
        Cell::text(&x.device_id),
        Cell::text(&x.device_name),
        Cell::number(x.permission_id),
        Cell::text(&x.permission_name),
        Cell::text(&x.channel),
        Cell::text(&x.query),
        Cell::number(x.positions),
        Cell::text(&x.shipment_number),
        Cell::text(&x.client_addr),
        Cell::text(&x.user_agent),
        Cell::text(&x.detail),
    ]
}

/// The summary sheet's rows: a label, then one or two values.
fn summary_rows(s: &Summary) -> Vec<(&'static str, Vec<Cell>)> {
    let p = s.permission;
    let mut rows = vec![
        ("Permission id", vec![Cell::Number(p.id)]),
        ("Permission name", vec![Cell::Text(p.name.clone())]),
        (
            "Provider company",
            vec![Cell::Text(p.provider_company_id.clone())],
        ),
        (
            "Recipient company",
            vec![Cell::Text(p.recipient_company_id.clone())],
        ),
        (
            "Recipient user id",
            vec![p
                .recipient_user_id
                .map_or_else(|| Cell::Text("(any user)".into()), Cell::Number)],
        ),
        (
            "Kind",
            vec![Cell::Text(
                if p.temporary { "temporary" } else { "partner" }.into(),
            )],
        ),
        (
            "Valid from (UTC)",
            vec![Cell::Text(utc_text(p.valid_from_ms))],
        ),
        (
            "Valid until (UTC)",
            vec![Cell::Text(
                p.valid_until_ms
                    .map_or_else(|| "until revoked".into(), utc_text),
            )],
        ),
        ("State", vec![Cell::Text(state_name(s.state).into())]),
        (
            "Revoked at (UTC)",
            vec![p
                .revoked_ms
                .map_or(Cell::Empty, |ms| Cell::Text(utc_text(ms)))],
        ),
    ];
    for (id, name) in s.device_names {
        rows.push((
            "Device",
            vec![Cell::Text(id.clone()), Cell::Text(name.clone())],
        ));
    }
    rows.push((
        "Generated at (UTC)",
        vec![Cell::Text(utc_text(s.generated_ms))],
    ));
    rows
}

/// `v` cut to Excel's cell limit, marked with an ellipsis when cut (the
/// CSV keeps the whole text).
fn fit(v: &str) -> Cow<'_, str> {
    if v.chars().count() <= MAX_CELL_CHARS {
        return v.into();
    }
    let mut cut: String = v.chars().take(MAX_CELL_CHARS - 1).collect();
    cut.push('…');
    cut.into()
}

fn put(sheet: &mut Worksheet, row: u32, col: u16, cell: &Cell) -> Result<(), XlsxError> {
    match cell {
        Cell::Empty => {}
        // Log ids and counts stay far below 2^53, exact in an f64.
        Cell::Number(n) => {
            sheet.write_number(row, col, *n as f64)?;
        }
        Cell::Text(s) => {
            sheet.write_string(row, col, fit(s))?;
        }
    }
    Ok(())
}

/// The workbook: sheet "Permission" (summary), sheet "Access log" (one row
/// per retrieval of the partner's data) and sheet "Changes" (grants,
/// revocations, shipment numbers, log downloads); both log sheets have a
/// bold, frozen, filterable header row.
pub fn xlsx(summary: &Summary, entries: &[StoredEntry]) -> Result<Vec<u8>, ExportError> {
    if entries.len() > MAX_XLSX_ENTRIES {
        return Err(ExportError::TooManyRows {
            entries: entries.len(),
            max: MAX_XLSX_ENTRIES,
        });
    }
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();

    let sheet = wb.add_worksheet().set_name("Permission")?;
    for (r, (label, values)) in (0u32..).zip(summary_rows(summary)) {
        sheet.write_string_with_format(r, 0, label, &bold)?;
        for (c, v) in (1u16..).zip(&values) {
            put(sheet, r, c, v)?;
        }
    }
    sheet.set_column_width(0, 20)?;
    sheet.set_column_width(1, 28)?;
    sheet.set_column_width(2, 28)?;

    let (reads, changes): (Vec<&StoredEntry>, Vec<&StoredEntry>) =
        entries.iter().partition(|e| e.entry.event == "read");
    log_sheet(&mut wb, RETRIEVALS_SHEET, &reads, &bold)?;
    log_sheet(&mut wb, CHANGES_SHEET, &changes, &bold)?;
    Ok(wb.save_to_buffer()?)
}

/// The sheet with one row per retrieval of the partner's data.
pub const RETRIEVALS_SHEET: &str = "Access log";
/// The sheet with grants, revocations, shipment numbers and downloads.
pub const CHANGES_SHEET: &str = "Changes";

/// A sheet of log rows under the log's header, filterable.
fn log_sheet(
    wb: &mut Workbook,
    name: &str,
    entries: &[&StoredEntry],
    bold: &Format,
) -> Result<(), XlsxError> {
    let sheet = wb.add_worksheet().set_name(name)?;
    for (c, (h, w)) in (0u16..).zip(COLUMNS.iter().zip(WIDTHS)) {
        sheet.write_string_with_format(0, c, *h, bold)?;
        sheet.set_column_width(c, w)?;
    }
    for (r, e) in (1u32..).zip(entries) {
        for (c, v) in (0u16..).zip(&log_row(e)) {
            put(sheet, r, c, v)?;
        }
    }
    // At most MAX_XLSX_ENTRIES, checked by `xlsx`: the count fits a u32.
    sheet.autofilter(0, 0, entries.len() as u32, COLUMNS.len() as u16 - 1)?;
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

/// One CSV text field: formula-looking text neutralised with a leading
/// apostrophe, then RFC 4180 quoting.
fn csv_text(v: &str) -> String {
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

fn csv_line(out: &mut String, cells: impl Iterator<Item = String>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&c);
    }
    out.push_str("\r\n");
}

/// The log as CSV (RFC 4180, CRLF line ends) with the same columns as the
/// workbook's log sheet.
pub fn csv(entries: &[StoredEntry]) -> String {
    let mut out = String::new();
    csv_line(&mut out, COLUMNS.iter().map(|h| csv_text(h)));
    for e in entries {
        csv_line(
            &mut out,
            log_row(e).into_iter().map(|c| match c {
                Cell::Empty => String::new(),
                Cell::Number(n) => n.to_string(),
                Cell::Text(s) => csv_text(&s),
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{entry_hash, LogEntry, GENESIS};
    use calamine::{Data, Reader};

    const TRUCK: &str = "356307042441013";
    const TRAILER: &str = "356307042441014";

    fn permission() -> Permission {
        Permission {
            id: 7,
            name: "Load 42".into(),
            provider_company_id: "4711".into(),
            recipient_company_id: "0815".into(),
            recipient_user_id: Some(3),
            devices: vec![
                (TRUCK.into(), Some("=HYPERLINK(\"x\")".into())),
                (TRAILER.into(), None),
            ],
            valid_from_ms: 1_700_000_000_000,
            valid_until_ms: Some(1_700_086_400_000),
            temporary: true,
            created_ms: 1_699_999_000_000,
            revoked_ms: None,
        }
    }

    fn entries() -> Vec<StoredEntry> {
        let base = LogEntry {
            scope: "partner",
            event: "read".into(),
            permission_id: Some(7),
            permission_name: Some("Load 42".into()),
            provider_company_id: Some("4711".into()),
            recipient_company_id: Some("0815".into()),
            user_id: Some(3),
            channel: Some("api".into()),
            client_addr: Some("192.0.2.1".into()),
            user_agent: Some("curl/8.5.0".into()),
            ..Default::default()
        };
        let e1 = LogEntry {
            time_ms: 1_700_000_001_123,
            device_id: Some(TRUCK.into()),
            device_name: Some("Truck 1".into()),
            query: Some("latest".into()),
            positions: Some(1),
            ..base.clone()
        };
        let e2 = LogEntry {
            time_ms: 1_700_000_002_005,
            event: "shipment_number".into(),
            device_id: Some(TRUCK.into()),
            device_name: Some("Truck 1".into()),
            shipment_number: Some("=HYPERLINK(\"x\")".into()),
            detail: Some("previous: (none)".into()),
            ..base.clone()
        };
        let e3 = LogEntry {
            time_ms: 1_700_000_003_999,
            device_id: Some(TRAILER.into()),
            device_name: Some("Trailer, \"blue\"".into()),
            query: Some("history".into()),
            positions: Some(120),
            shipment_number: Some("SN 7, \"rush\"".into()),
            ..base
        };
        let mut prev = GENESIS;
        (1..)
            .zip([e1, e2, e3])
            .map(|(id, entry)| {
                let hash = entry_hash(&prev, id, &entry);
                let e = StoredEntry {
                    id,
                    entry,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn workbook(entries: &[StoredEntry]) -> calamine::Xlsx<std::io::Cursor<Vec<u8>>> {
        let p = permission();
        let names = vec![
            (TRUCK.to_string(), "Truck 1".to_string()),
            (TRAILER.to_string(), "Trailer, \"blue\"".to_string()),
        ];
        let bytes = xlsx(
            &Summary {
                permission: &p,
                state: PermissionState::Active,
                device_names: &names,
                generated_ms: 1_700_000_100_000,
            },
            entries,
        )
        .unwrap();
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap()
    }

    fn s(v: &str) -> Data {
        Data::String(v.into())
    }

    fn n(v: f64) -> Data {
        Data::Float(v)
    }

    fn rows(r: &calamine::Range<Data>) -> Vec<Vec<Data>> {
        r.rows().map(<[Data]>::to_vec).collect()
    }

    #[test]
    fn summary_sheet_reads_back_cell_for_cell() {
        let mut wb = workbook(&entries());
        assert_eq!(wb.sheet_names(), ["Permission", "Access log", "Changes"]);
        let e = Data::Empty;
        assert_eq!(
            rows(&wb.worksheet_range("Permission").unwrap()),
            [
                vec![s("Permission id"), n(7.0), e.clone()],
                vec![s("Permission name"), s("Load 42"), e.clone()],
                vec![s("Provider company"), s("4711"), e.clone()],
                vec![s("Recipient company"), s("0815"), e.clone()],
                vec![s("Recipient user id"), n(3.0), e.clone()],
                vec![s("Kind"), s("temporary"), e.clone()],
                vec![
                    s("Valid from (UTC)"),
                    s("2023-11-14 22:13:20.000"),
                    e.clone()
                ],
                vec![
                    s("Valid until (UTC)"),
                    s("2023-11-15 22:13:20.000"),
                    e.clone()
                ],
                vec![s("State"), s("active"), e.clone()],
                vec![s("Revoked at (UTC)"), e.clone(), e.clone()],
                vec![s("Device"), s(TRUCK), s("Truck 1")],
                vec![s("Device"), s(TRAILER), s("Trailer, \"blue\"")],
                vec![
                    s("Generated at (UTC)"),
                    s("2023-11-14 22:15:00.000"),
                    e.clone()
                ],
            ]
        );
    }

    #[test]
    fn log_sheet_reads_back_cell_for_cell_without_formulas() {
        let mut wb = workbook(&entries());
        let e = Data::Empty;
        let header: Vec<Data> = COLUMNS.iter().map(|h| s(h)).collect();
        #[rustfmt::skip]
        let expected = [
            header,
            vec![
                n(1.0), s("2023-11-14 22:13:21.123"), s("read"), s("4711"), s("0815"), n(3.0),
                s(TRUCK), s("Truck 1"), n(7.0), s("Load 42"), s("api"), s("latest"), n(1.0),
                e.clone(), s("192.0.2.1"), s("curl/8.5.0"), e.clone(),
            ],
            vec![
                n(3.0), s("2023-11-14 22:13:23.999"), s("read"), s("4711"), s("0815"), n(3.0),
                s(TRAILER), s("Trailer, \"blue\""), n(7.0), s("Load 42"), s("api"), s("history"),
                n(120.0), s("SN 7, \"rush\""), s("192.0.2.1"), s("curl/8.5.0"), e.clone(),
            ],
        ];
        assert_eq!(rows(&wb.worksheet_range("Access log").unwrap()), expected);
        // Everything that is not a retrieval is on its own sheet.
        #[rustfmt::skip]
        let changes = [
            expected[0].clone(),
            vec![
                n(2.0), s("2023-11-14 22:13:22.005"), s("shipment_number"), s("4711"), s("0815"),
                n(3.0), s(TRUCK), s("Truck 1"), n(7.0), s("Load 42"), s("api"), e.clone(),
                e.clone(), s("=HYPERLINK(\"x\")"), s("192.0.2.1"), s("curl/8.5.0"),
                s("previous: (none)"),
            ],
        ];
        assert_eq!(rows(&wb.worksheet_range("Changes").unwrap()), changes);
        // The partner's "=HYPERLINK(...)" is a string cell, not a formula.
        let formulas = wb.worksheet_formula("Changes").unwrap();
        assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()));
    }

    #[test]
    fn empty_log_is_a_header_row() {
        let mut wb = workbook(&[]);
        let log = wb.worksheet_range("Access log").unwrap();
        assert_eq!(log.height(), 1);
        assert_eq!(log.get_value((0, 16)), Some(&s("Detail")));
        assert_eq!(
            csv(&[]),
            "Entry id,Date and time (UTC),Event,Provider company,Recipient company,User id,\
             Device id,Device name,Permission id,Permission name,Channel,Query,Positions,\
             Shipment number,Client address,User agent,Detail\r\n"
        );
    }

    #[test]
    fn csv_lines_are_exact() {
        let text = csv(&entries());
        let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
        assert_eq!(
            lines,
            [
                "Entry id,Date and time (UTC),Event,Provider company,Recipient company,User id,\
                 Device id,Device name,Permission id,Permission name,Channel,Query,Positions,\
                 Shipment number,Client address,User agent,Detail\r\n",
                "1,2023-11-14 22:13:21.123,read,4711,0815,3,356307042441013,Truck 1,7,Load 42,\
                 api,latest,1,,192.0.2.1,curl/8.5.0,\r\n",
                "2,2023-11-14 22:13:22.005,shipment_number,4711,0815,3,356307042441013,Truck 1,\
                 7,Load 42,api,,,\"'=HYPERLINK(\"\"x\"\")\",192.0.2.1,curl/8.5.0,previous: (none)\r\n",
                "3,2023-11-14 22:13:23.999,read,4711,0815,3,356307042441014,\
                 \"Trailer, \"\"blue\"\"\",7,Load 42,api,history,120,\"SN 7, \"\"rush\"\"\",\
                 192.0.2.1,curl/8.5.0,\r\n",
            ]
        );
    }

    #[test]
    fn csv_text_neutralises_then_quotes() {
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("-1+2"), "'-1+2");
        assert_eq!(csv_text("+49 30"), "'+49 30");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("\tx"), "'\tx");
        assert_eq!(csv_text("=1,2"), "\"'=1,2\"");
        assert_eq!(csv_text("a\r\nb"), "\"a\r\nb\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("SN=5"), "SN=5", "only a leading sign matters");
    }

    #[test]
    fn cells_are_cut_to_excels_limit() {
        let long = "é".repeat(MAX_CELL_CHARS + 5);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), MAX_CELL_CHARS);
        assert!(cut.ends_with("é…"));
        let exact = "x".repeat(MAX_CELL_CHARS);
        assert_eq!(fit(&exact), exact.as_str());
    }

    #[test]
    fn times_are_utc_text_with_milliseconds() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc_text(-1), "1969-12-31 23:59:59.999");
        assert_eq!(utc_text(i64::MAX), i64::MAX.to_string());
    }
}
