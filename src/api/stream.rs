//! Live positions as server-sent events (`GET /api/v1/stream`). Each tick
//! the stream asks the policy again for the caller's permits, so a
//! revocation or a window's end takes effect within one tick, and sends
//! each visible device whose fix is newer than the last one sent. For a
//! recipient every such event is a retrieval: its log entry (channel
//! `stream`) is committed before the event leaves, and the event's id is
//! the entry's id. A failing log ends the stream rather than send unlogged,
//! and so does the caller's key being revoked or its session ending.
//! Reports (an alarm sent without GPS, a status) stored while the stream is
//! open go out the same way, as `report` events, for visible devices and
//! within a recipient's window, one log entry per permit and tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use futures::stream::{self, StreamExt};
use prometheus::IntGauge;
use serde::Deserialize;
use serde_json::json;

use super::devices::{device_json, read_entry, scope, Scope};
use super::extract::Query;
use super::{now_ms, ApiError, ApiState, Caller};
use crate::access::policy::{self, Permit};
use crate::model::{format_time, Report};

/// Most open streams per user, per company and in all: each holds a
/// connection and a timer, so all are bounded, and one company (whose
/// admin can create users) cannot take every stream from the others.
pub const MAX_STREAMS_PER_USER: usize = 4;
pub const MAX_STREAMS_PER_COMPANY: usize = 64;
pub const MAX_STREAMS: usize = 1024;
const TICK_MS: (u64, u64, u64) = (250, 1000, 60_000); // min, default, max
/// A comment this often keeps proxies from closing a quiet stream, and
/// finds clients that went away (their slot is freed on the failed write).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Open streams, counted so the bounds hold.
pub struct Streams {
    total: AtomicUsize,
    per_user: DashMap<i64, usize>,
    per_company: DashMap<String, usize>,
    /// `trackgate_live_streams`.
    gauge: IntGauge,
}

/// One open stream's place in the count, given back when the stream ends
/// (the client went away or the gateway stops).
struct Slot {
    streams: Arc<Streams>,
    user: i64,
    company: String,
}

/// Counts one more under `key` unless it holds `max` already.
fn claim<K: std::hash::Hash + Eq>(map: &DashMap<K, usize>, key: K, max: usize) -> bool {
    let mut n = map.entry(key).or_insert(0);
    if *n >= max {
        return false;
    }
    *n += 1;
    true
}

/// Counts one less under `key`, forgetting it at zero.
fn release<K: std::hash::Hash + Eq>(map: &DashMap<K, usize>, key: &K) {
    map.remove_if_mut(key, |_, n| {
        *n = n.saturating_sub(1);
        *n == 0
    });
}

impl Streams {
    pub fn new(gauge: IntGauge) -> Self {
        Self {
            total: AtomicUsize::new(0),
            per_user: DashMap::new(),
            per_company: DashMap::new(),
            gauge,
        }
    }

    fn take(self: &Arc<Self>, user: i64, company: &str) -> Result<Slot, ApiError> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Busy(
                "too many live streams open; try again later",
            ));
        }
        if !claim(&self.per_user, user, MAX_STREAMS_PER_USER) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Busy(
                "this user has the most live streams open already",
            ));
        }
        if !claim(
            &self.per_company,
            company.to_owned(),
            MAX_STREAMS_PER_COMPANY,
        ) {
            release(&self.per_user, &user);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Busy(
                "this company has the most live streams open already",
            ));
        }
        self.gauge.inc();
        Ok(Slot {
            streams: Arc::clone(self),
            user,
            company: company.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.streams.total.fetch_sub(1, Ordering::AcqRel);
        self.streams.gauge.dec();
        release(&self.streams.per_user, &self.user);
        release(&self.streams.per_company, &self.company);
    }
}

#[derive(Deserialize)]
pub struct StreamQuery {
    scope: Option<String>,
    interval_ms: Option<u64>,
    /// Skip the first snapshot: only fixes newer than those visible at the
    /// start are sent (for a client that has just listed the devices).
    changes_only: Option<bool>,
}

/// What one stream remembers between ticks.
struct Tick {
    s: ApiState,
    caller: Caller,
    received: bool,
    interval: Duration,
    /// Last fix time sent per (permission id or 0 for own, device id).
    sent: HashMap<(i64, String), i64>,
    /// Reports stored since the stream opened, drained each tick.
    reports: tokio::sync::broadcast::Receiver<Arc<Report>>,
    /// Events ready to go out before the next tick.
    ready: Vec<Event>,
    /// The first tick runs at once; later ones after `interval`.
    first: bool,
    ended: bool,
    _slot: Slot,
}

fn key(permit: &Permit) -> (i64, String) {
    let pid = permit.permission().map_or(0, |p| p.id);
    (pid, permit.device.device_id.clone())
}

#[utoipa::path(get, path = "/api/v1/stream", tag = "positions", security(("api_key" = [])), params(("scope" = inline(Option<Scope>), Query, description = "own (default) or received"), ("interval_ms" = Option<u64>, Query, description = "how often visibility and positions are checked, 250-60000, default 1000"), ("changes_only" = Option<bool>, Query, description = "skip the first snapshot")), responses((status = 200, description = "text/event-stream: `position` events (a device's newer fix; for a recipient the id is its access-log entry, committed before the event), `report` events (a record a visible device sent without a fix while the stream is open, logged the same way), `reports_missed` when the stream fell behind the reports (read the gap from /devices/{id}/reports), `gone` when a device leaves the caller's view, `error` before the stream ends (a log failure, or the key revoked or the session ended)"), (status = 400, description = "bad scope or interval"), (status = 401, description = "no or wrong key"), (status = 503, description = "too many streams open")))]
pub async fn stream(
    caller: Caller,
    State(s): State<ApiState>,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let received = scope(q.scope.as_deref())? == Scope::Received;
    let (min, default, max) = TICK_MS;
    let interval = q.interval_ms.unwrap_or(default);
    if !(min..=max).contains(&interval) {
        return Err(ApiError::BadRequest(format!(
            "interval_ms must be {min}-{max}, not {interval}"
        )));
    }
    let slot = s.streams.take(caller.who.user_id, &caller.who.company_id)?;
    let stop = s.stop.clone();
    let reports = s.engine.subscribe_reports();
    let mut tick = Tick {
        reports,
        s,
        caller,
        received,
        interval: Duration::from_millis(interval),
        sent: HashMap::new(),
        ready: Vec::new(),
        first: true,
        ended: false,
        _slot: slot,
    };
    if q.changes_only.unwrap_or(false) {
        // Note what is visible now, before the answer starts: any fix
        // arriving after the client has its headers is a change.
        check(&mut tick, true).await;
        tick.first = false;
    }
    let events = stream::unfold(tick, next).take_until(async move { stop.cancelled().await });
    Ok(Sse::new(events.map(Ok::<_, std::convert::Infallible>))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// The next event: from the ready queue, or after the next tick.
async fn next(mut t: Tick) -> Option<(Event, Tick)> {
    loop {
        if let Some(e) = t.ready.pop() {
            return Some((e, t));
        }
        if t.ended {
            return None;
        }
        if !t.first {
            tokio::time::sleep(t.interval).await;
        }
        t.first = false;
        let mut events = check(&mut t, false).await;
        events.reverse(); // popped from the end
        t.ready = events;
    }
}

/// One tick: devices that left the view, then newer fixes (logged first).
/// `quiet` only notes the fixes visible now, sending and logging nothing.
async fn check(t: &mut Tick, quiet: bool) -> Vec<Event> {
    if !t.caller.still_valid(&t.s) {
        // The key was revoked, or the session ended: so does the stream.
        t.ended = true;
        let e =
            json!({"error": "unauthorized", "message": "the key or session is no longer valid"});
        return vec![Event::default().event("error").data(e.to_string())];
    }
    let now = now_ms();
    let permits = if t.received {
        policy::received(&t.s.dir, &t.caller.who, now)
    } else {
        policy::own(&t.s.dir, &t.caller.who)
    };
    let mut events = Vec::new();
    let visible: std::collections::HashSet<(i64, String)> = permits.iter().map(key).collect();
    let mut gone: Vec<(i64, String)> = t
        .sent
        .keys()
        .filter(|k| !visible.contains(*k))
        .cloned()
        .collect();
    gone.sort();
    for k in gone {
        t.sent.remove(&k);
        let mut data = json!({"device_id": k.1});
        if k.0 != 0 {
            data["permission_id"] = json!(k.0);
        }
        events.push(Event::default().event("gone").data(data.to_string()));
    }
    let mut fresh = Vec::new();
    for permit in &permits {
        let Some(p) = permit.latest(&t.s.engine) else {
            continue;
        };
        let fix = p.fix_time.timestamp_millis();
        let k = key(permit);
        if t.sent.get(&k).is_some_and(|last| *last >= fix) {
            continue;
        }
        t.sent.insert(k, fix);
        if !quiet {
            fresh.push((permit, p));
        }
    }
    let (reports, missed) = new_reports(&mut t.reports, &permits, now);
    if missed > 0 && !quiet {
        events.push(
            Event::default()
                .event("reports_missed")
                .data(json!({"missed": missed}).to_string()),
        );
    }
    let reports = if quiet { Vec::new() } else { reports };
    let stream_entry = |permit: &Permit, query: &str, n: usize| {
        read_entry(&t.caller, permit, query, n as i64).map(|mut e| {
            e.channel = Some("stream".into());
            e
        })
    };
    let entries: Vec<_> = fresh
        .iter()
        .filter_map(|(permit, _)| stream_entry(permit, "stream", 1))
        .chain(
            reports
                .iter()
                .filter_map(|(permit, list)| stream_entry(permit, "reports", list.len())),
        )
        .collect();
    let ids = if entries.is_empty() {
        Vec::new()
    } else {
        match t.s.log.append(entries).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "live stream ended: the access log failed");
                t.ended = true;
                events.push(
                    Event::default()
                        .event("error")
                        .data(json!({"error": "unavailable", "message": "the access log is unavailable; reconnect later"}).to_string()),
                );
                return events;
            }
        }
    };
    let mut ids = ids.into_iter();
    for (permit, p) in &fresh {
        let mut e = Event::default()
            .event("position")
            .data(device_json(permit, Some(p)).to_string());
        if permit.permission().is_some() {
            if let Some(id) = ids.next() {
                e = e.id(id.to_string());
            }
        }
        events.push(e);
    }
    for (permit, list) in &reports {
        let id = permit.permission().and_then(|_| ids.next());
        for r in list {
            let mut data = json!({
                "device_id": permit.device.device_id,
                "name": permit.device.name,
                "time": format_time(&r.time),
                "protocol": r.protocol,
                "attributes": r.attributes,
            });
            if let Some(p) = permit.permission() {
                data["permission_id"] = json!(p.id);
            }
            let mut e = Event::default().event("report").data(data.to_string());
            if let Some(id) = id {
                e = e.id(id.to_string());
            }
            events.push(e);
        }
    }
    events
}

/// One permit's reports of a tick.
type PermitReports<'a> = (&'a Permit, Vec<Arc<Report>>);

/// The reports stored since the last tick that `permits` show, grouped by
/// permit (a device shared twice is sent under each permission, as its
/// positions are), and how many the stream missed by falling behind.
fn new_reports<'a>(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Report>>,
    permits: &'a [Permit],
    now: i64,
) -> (Vec<PermitReports<'a>>, u64) {
    use tokio::sync::broadcast::error::TryRecvError;
    let mut arrived = Vec::new();
    let mut missed = 0;
    loop {
        match rx.try_recv() {
            Ok(r) => arrived.push(r),
            Err(TryRecvError::Lagged(n)) => missed += n,
            Err(_) => break,
        }
    }
    if arrived.is_empty() {
        // The common tick: no per-permit work.
        return (Vec::new(), missed);
    }
    let mut by_device: HashMap<&str, Vec<&Arc<Report>>> = HashMap::new();
    for r in &arrived {
        by_device.entry(r.device_id.as_str()).or_default().push(r);
    }
    let mut grouped = Vec::new();
    for p in permits {
        let Some(list) = by_device.get(p.device.device_id.as_str()) else {
            continue;
        };
        // A recipient sees nothing stamped outside its window, nor ahead
        // of now (as its history ends now).
        let shown: Vec<Arc<Report>> = list
            .iter()
            .filter(|r| {
                let at = r.time.timestamp_millis();
                p.shows(at) && (p.permission().is_none() || at <= now)
            })
            .map(|r| Arc::clone(r))
            .collect();
        if !shown.is_empty() {
            grouped.push((p, shown));
        }
    }
    (grouped, missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_holds_at_most_its_share_of_the_streams() {
        let gauge = IntGauge::new("streams", "test").unwrap();
        let streams = Arc::new(Streams::new(gauge.clone()));
        let users = (MAX_STREAMS_PER_COMPANY / MAX_STREAMS_PER_USER) as i64;
        let mut held = Vec::new();
        for user in 0..users {
            for _ in 0..MAX_STREAMS_PER_USER {
                held.push(streams.take(user, "4711").unwrap());
            }
        }
        assert!(
            streams.take(users, "4711").is_err(),
            "one more user of 4711"
        );
        assert!(
            streams.per_user.get(&users).is_none(),
            "the refused stream gave its user's count back"
        );
        let other = streams.take(users, "4712").unwrap();
        held.pop();
        let again = streams.take(users, "4711").unwrap();
        assert_eq!(gauge.get(), MAX_STREAMS_PER_COMPANY as i64 + 1);
        drop((held, other, again));
        assert_eq!(gauge.get(), 0);
        assert_eq!(streams.total.load(Ordering::Relaxed), 0);
        assert!(streams.per_user.is_empty() && streams.per_company.is_empty());
    }
}
