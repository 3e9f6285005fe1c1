//! A device's history: its positions, and its reports (what it sent
//! without a fix). An owner reads any stored range; a recipient's range is
//! clamped to its permission's window — never before `valid_from`, never
//! after `valid_until` (a revoked permission reads nothing) — and each call
//! writes one access-log entry with the clamped range and the number of
//! records, committed before the answer leaves.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::devices::{deny, logged, read_entry};
use super::extract::{Path, Query};
use super::{now_ms, parse_time, ApiError, ApiState, Caller};
use crate::access::policy::{self, PermitScope};
use crate::history::{Cursor, Page, Range, Records};
use crate::model::{format_time, DeviceId, Position, Report};

/// Positions per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;
/// Without `from`, a range starts this long before `to`.
const DEFAULT_SPAN_MS: i64 = 24 * 3600 * 1000;

/// The range both history routes take (documented once for both; each
/// documents its own `format`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// RFC 3339, inclusive; default: 24 h before `to`
    from: Option<String>,
    /// RFC 3339, exclusive; default: now
    to: Option<String>,
    /// records per page, 1..=10000 (default 1000)
    limit: Option<usize>,
    /// `next_cursor` of the previous page
    cursor: Option<String>,
    #[param(ignore)]
    format: Option<String>,
}

/// The reports' answer formats.
#[derive(Debug, Clone, Copy, PartialEq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum ReportFormat {
    Json,
    Csv,
}

/// The history's answer formats.
#[derive(Debug, Clone, Copy, PartialEq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum Format {
    Json,
    Csv,
    Gpx,
}

#[utoipa::path(get, path = "/api/v1/devices/{device_id}/positions", tag = "positions", security(("api_key" = [])),
    params(("device_id" = String, Path, description = "device id"),
        HistoryQuery,
        ("format" = inline(Option<Format>), Query, description = "json (default), csv or gpx")),
    responses((status = 200, description = "positions oldest first; for a recipient clamped to the permission window and logged (x-access-logged)"),
        (status = 400, description = "bad time, limit, cursor or format"),
        (status = 401, description = "no or wrong key"),
        (status = 404, description = "not the caller's device nor in an active received permission")))]
pub async fn positions(
    caller: Caller,
    State(s): State<ApiState>,
    Path(device_id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("gpx") => Format::Gpx,
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "format must be json, csv or gpx, not {f:?}"
            )))
        }
    };
    let mut read = read(&caller, &s, &device_id, &q, Records::Positions).await?;
    let body = json!({
        "device_id": device_id,
        "from": super::ms_to_rfc3339(read.from),
        "to": super::ms_to_rfc3339(read.to),
        "positions": read.page.positions,
        "next_cursor": read.next,
    });
    let resp = read.answer(&s, body).await?;
    Ok(match format {
        Format::Json => resp,
        Format::Csv => as_text(
            resp,
            "text/csv; charset=utf-8",
            csv(&read.page.positions),
            &read.next,
        ),
        Format::Gpx => as_text(
            resp,
            "application/gpx+xml",
            gpx(&device_id, &read.page.positions),
            &read.next,
        ),
    })
}

#[utoipa::path(get, path = "/api/v1/devices/{device_id}/reports", tag = "positions", security(("api_key" = [])),
    params(("device_id" = String, Path, description = "device id"),
        HistoryQuery,
        ("format" = inline(Option<ReportFormat>), Query, description = "json (default) or csv")),
    responses((status = 200, description = "what the device sent without a fix (alarms without GPS, cell lists, status), oldest first, each with its device time, receipt time, protocol and attributes; for a recipient clamped to the permission window and logged (x-access-logged)"),
        (status = 400, description = "bad time, limit, cursor or format"),
        (status = 401, description = "no or wrong key"),
        (status = 404, description = "not the caller's device nor in an active received permission")))]
pub async fn reports(
    caller: Caller,
    State(s): State<ApiState>,
    Path(device_id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None | Some("json") => ReportFormat::Json,
        Some("csv") => ReportFormat::Csv,
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "format must be json or csv, not {f:?}"
            )))
        }
    };
    let mut read = read(&caller, &s, &device_id, &q, Records::Reports).await?;
    let reports: Vec<_> = read
        .page
        .reports
        .iter()
        .map(|(r, received)| {
            json!({
                "time": format_time(&r.time),
                "received_time": format_time(received),
                "protocol": r.protocol,
                "attributes": r.attributes,
            })
        })
        .collect();
    let body = json!({
        "device_id": device_id,
        "from": super::ms_to_rfc3339(read.from),
        "to": super::ms_to_rfc3339(read.to),
        "reports": reports,
        "next_cursor": read.next,
    });
    let resp = read.answer(&s, body).await?;
    Ok(match format {
        ReportFormat::Json => resp,
        ReportFormat::Csv => as_text(
            resp,
            "text/csv; charset=utf-8",
            reports_csv(&read.page.reports),
            &read.next,
        ),
    })
}

/// One authorized, clamped page of a device's records and its log entry.
struct Read {
    page: Page,
    /// The range read, after clamping (`to` never before `from`).
    from: i64,
    to: i64,
    next: Option<String>,
    entry: Option<crate::store::LogEntry>,
}

impl Read {
    /// `body` as the answer, sent only once the entry (a recipient's read)
    /// is committed.
    async fn answer(
        &mut self,
        s: &ApiState,
        body: serde_json::Value,
    ) -> Result<Response, ApiError> {
        match self.entry.take() {
            Some(e) => logged(s, vec![e], body).await,
            None => Ok(axum::Json(body).into_response()),
        }
    }
}

/// Parses the range, authorizes the caller, clamps a recipient's range to
/// its permission's window and reads the page. The log entry's query kind
/// is `history` (positions) or `reports`; the clamped range goes beside it.
async fn read(
    caller: &Caller,
    s: &ApiState,
    device_id: &str,
    q: &HistoryQuery,
    records: Records,
) -> Result<Read, ApiError> {
    let now = now_ms();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be in 1..={MAX_LIMIT}"
        )));
    }
    let to =
        q.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(now);
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to.saturating_sub(DEFAULT_SPAN_MS));
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    let after = q
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let kind = match records {
        Records::Positions => "history",
        Records::Reports => "reports",
    };
    let Some(permit) = policy::authorize(&s.dir, &caller.who, device_id, now) else {
        return Err(deny(s, caller, device_id, kind));
    };
    // The recipient's window: [valid_from, valid_until), and never the future.
    let (from, to) = match &permit.scope {
        PermitScope::Owner => (from, to),
        PermitScope::Recipient { permission, .. } => (
            from.max(permission.valid_from_ms),
            permission.valid_until_ms.map_or(to, |u| to.min(u)).min(now),
        ),
    };
    let device = DeviceId::new(device_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page = if from < to {
        s.history
            .range(Range {
                device,
                from_ms: from,
                to_ms: to,
                limit,
                after,
                records,
            })
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    } else {
        Page::default()
    };
    let to = to.max(from);
    let n = page.positions.len() + page.reports.len();
    let entry =
        read_entry(caller, &permit, kind, i64::try_from(n).unwrap_or(i64::MAX)).map(|mut e| {
            e.detail = Some(format!(
                "from={} to={}",
                super::ms_to_rfc3339(from),
                super::ms_to_rfc3339(to)
            ));
            e
        });
    Ok(Read {
        next: page.next.map(|c| c.encode()),
        page,
        from,
        to,
        entry,
    })
}

/// The logged JSON answer `resp` turned into `text` of type `ctype`: the
/// same log entry and headers, the next page's cursor in `x-next-cursor`.
fn as_text(resp: Response, ctype: &'static str, text: String, next: &Option<String>) -> Response {
    let mut out = ([(header::CONTENT_TYPE, ctype)], text).into_response();
    for (k, v) in resp.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    if let Some(v) = next
        .as_deref()
        .and_then(|n| axum::http::HeaderValue::from_str(n).ok())
    {
        out.headers_mut().insert("x-next-cursor", v);
    }
    out
}

fn reports_csv(reports: &[(Report, chrono::DateTime<chrono::Utc>)]) -> String {
    let mut out = String::from("device_id,time,received_time,protocol,attributes\n");
    for (r, received) in reports {
        let attributes = serde_json::to_string(&r.attributes).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            csv_field(r.device_id.as_str()),
            format_time(&r.time),
            format_time(received),
            r.protocol,
            csv_field(&attributes)
        ));
    }
    out
}

fn csv(positions: &[Position]) -> String {
    let mut out = String::from(
        "device_id,fix_time,received_time,lat,lon,altitude_m,speed_kmh,course_deg,satellites,valid,protocol\n",
    );
    for p in positions {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(p.device_id.as_str()),
            format_time(&p.fix_time),
            format_time(&p.received_time),
            p.lat,
            p.lon,
            p.altitude_m,
            p.speed_kmh,
            p.course_deg,
            p.satellites.map(|s| s.to_string()).unwrap_or_default(),
            p.valid,
            p.protocol
        ));
    }
    out
}

/// Quotes a field that holds a separator, quote or line break, and defuses
/// a leading formula character for spreadsheet programs.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn gpx(device: &str, positions: &[Position]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"trackgate\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n<trk><name>{}</name><trkseg>\n",
        xml(device)
    );
    for p in positions {
        out.push_str(&format!(
            "<trkpt lat=\"{}\" lon=\"{}\"><ele>{}</ele><time>{}</time></trkpt>\n",
            p.lat,
            p.lon,
            p.altitude_m,
            format_time(&p.fix_time)
        ));
    }
    out.push_str("</trkseg></trk>\n</gpx>\n");
    out
}
