//! The live position engine: the latest fix per device (the truth, in a
//! `DashMap`) and a spatial index of those fixes (an `rstar` snapshot,
//! rebuilt in bulk at most `index_interval` behind and swapped atomically).
//!
//! Why a snapshot instead of moving points in one shared tree: remove +
//! insert in a 1M-point `RTree` runs at ~220k moves/s and needs a global
//! lock, while a million devices reporting every few seconds need several
//! times that. Updates only touch one map shard; `bulk_load` of 1M points
//! takes a fraction of a second on one core (see `benches/README.md`).

mod geo;
mod index;
mod latest;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::model::{DeviceId, Position, Report};
use latest::Latest;

/// Reports held for live streams between their ticks.
const REPORTS_BUFFER: usize = 4096;

/// Fast, DoS-resistant hashing for device-id keys.
type Hasher = ahash::RandomState;

pub use geo::{haversine_m, BBox, GeoError};
pub use index::Snapshot;

/// Latest positions and their spatial index.
pub struct Engine {
    latest: DashMap<DeviceId, Latest, Hasher>,
    /// Reports (records without a fix) as they are stored, for live
    /// streams: bounded, a stream that falls behind misses the oldest and
    /// is told how many.
    reports: tokio::sync::broadcast::Sender<Arc<Report>>,
    index: ArcSwap<Snapshot>,
    dirty: AtomicBool,
}

/// What `Engine::update` did with a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// First fix of this device.
    Inserted,
    /// Newer than the stored fix: replaced it.
    Replaced,
    /// Not newer than the stored fix, no valid coordinates, or a fix time
    /// too far ahead of its receipt to be real: ignored.
    Stale,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self {
            latest: DashMap::with_hasher(Hasher::new()),
            reports: tokio::sync::broadcast::channel(REPORTS_BUFFER).0,
            index: ArcSwap::from_pointee(Snapshot::empty()),
            dirty: AtomicBool::new(false),
        }
    }

    /// Records `p` as the device's latest fix unless the stored one is at
    /// least as new (by fix time): an older fix never overwrites a newer one.
    pub fn update(&self, p: Position) -> Update {
        if !p.has_valid_coordinates() || p.is_from_the_future() {
            return Update::Stale;
        }
        let fix_ms = p.fix_time.timestamp_millis();
        // A known device (the common case): one lookup, no key clone, the
        // slot rewritten in place.
        let outcome = if let Some(mut cur) = self.latest.get_mut(&p.device_id) {
            if fix_ms <= cur.fix_ms {
                return Update::Stale;
            }
            *cur = Latest::new(p);
            Update::Replaced
        } else {
            match self.latest.entry(p.device_id.clone()) {
                // Inserted by another connection since the lookup.
                Entry::Occupied(mut e) => {
                    if fix_ms <= e.get().fix_ms {
                        return Update::Stale;
                    }
                    e.insert(Latest::new(p));
                    Update::Replaced
                }
                Entry::Vacant(e) => {
                    e.insert(Latest::new(p));
                    Update::Inserted
                }
            }
        };
        // A read first: the flag's cache line stays shared while it is set.
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
        outcome
    }

    /// [`update`](Self::update) with each of `positions` in turn, to the
    /// same end. A frame of one device's buffered fixes (the rule for
    /// tracker protocols) costs one write, its newest acceptable fix,
    /// instead of one per fix each replacing the last; a batch of several
    /// devices (MQTT, HTTP) goes one by one.
    pub fn update_all(&self, positions: Vec<Position>) {
        let one_device = positions
            .split_first()
            .is_some_and(|(first, rest)| rest.iter().all(|p| p.device_id == first.device_id));
        if !one_device {
            positions.into_iter().for_each(|p| {
                self.update(p);
            });
            return;
        }
        // The first fix of the latest time (a later one of the same time
        // would be stale, as it is for `update`).
        let mut newest: Option<(usize, i64)> = None;
        for (i, p) in positions.iter().enumerate() {
            if !p.has_valid_coordinates() || p.is_from_the_future() {
                continue;
            }
            let t = p.fix_time.timestamp_millis();
            if newest.is_none_or(|(_, best)| t > best) {
                newest = Some((i, t));
            }
        }
        if let Some(p) = newest.and_then(|(i, _)| positions.into_iter().nth(i)) {
            self.update(p);
        }
    }

    /// Offers a stored report to the live streams (none open: nothing).
    pub fn publish_report(&self, r: &Report) {
        if self.reports.receiver_count() > 0 {
            let _ = self.reports.send(Arc::new(r.clone()));
        }
    }

    /// The reports stored from now on.
    pub fn subscribe_reports(&self) -> tokio::sync::broadcast::Receiver<Arc<Report>> {
        self.reports.subscribe()
    }

    /// The latest fix of `device`.
    pub fn get(&self, device: &DeviceId) -> Option<Position> {
        self.latest.get(device).map(|l| l.to_position(device))
    }

    /// Number of devices with a fix.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// The current index snapshot (may trail the map by one interval).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.load_full()
    }

    /// Rebuilds the spatial index from the map if anything changed since the
    /// last rebuild. Returns whether it rebuilt. CPU-bound: call it from a
    /// blocking thread.
    pub fn refresh_index(&self) -> bool {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return false;
        }
        let points = self
            .latest
            .iter()
            .map(|e| index::point(e.value().lon, e.value().lat, e.key().clone()))
            .collect();
        self.index.store(Arc::new(Snapshot::build(points)));
        true
    }

    /// Devices whose indexed point lies in `bbox` (as of the last index
    /// rebuild, at most one interval behind) and whose latest fix still does.
    pub fn in_bbox(&self, bbox: &BBox) -> Vec<Position> {
        let snap = self.snapshot();
        self.in_bbox_of(snap.in_bbox(bbox), bbox)
    }

    /// The latest fixes of `ids` inside `bbox`, read from the map (not the
    /// index): for a caller who may see only these devices, the answer
    /// costs their number, not that of every device in the box.
    pub fn in_bbox_of<'a>(
        &self,
        ids: impl Iterator<Item = &'a DeviceId>,
        bbox: &BBox,
    ) -> Vec<Position> {
        self.read_many(ids, |id, l| {
            let inside = (bbox.min_lon..=bbox.max_lon).contains(&l.lon)
                && (bbox.min_lat..=bbox.max_lat).contains(&l.lat);
            inside.then(|| l.to_position(id))
        })
    }

    /// Applies `f` to the latest fix of each of `ids` (skipping ids no
    /// longer in the map) and collects what it returns, grouped by map shard.
    ///
    /// Why not `DashMap::get` per id: every `get` takes and releases its
    /// shard's lock with a locked instruction, and the CPU starts no later
    /// load before one completes, so a query's cache misses (about two per
    /// hit in a 1M-device table) ran strictly one after another. Hashing the
    /// ids first and taking each touched shard's read lock once lets
    /// consecutive lookups overlap their misses (measured in
    /// `benches/README.md`). Locks are taken in shard order and writers hold
    /// one shard at a time, so no cycle of waiters can form.
    fn read_many<'a, T>(
        &self,
        ids: impl Iterator<Item = &'a DeviceId>,
        mut f: impl FnMut(&DeviceId, &Latest) -> Option<T>,
    ) -> Vec<T> {
        let mut keyed: Vec<(usize, u64, &DeviceId)> = ids
            .map(|id| {
                let hash = self.latest.hash_usize(id);
                (self.latest.determine_shard(hash), hash as u64, id)
            })
            .collect();
        keyed.sort_unstable_by_key(|k| k.0);
        let shards = self.latest.shards();
        let mut guards = Vec::new();
        for &(shard, _, _) in &keyed {
            if guards.last().map(|(s, _)| *s) != Some(shard) {
                guards.push((shard, shards[shard].read()));
            }
        }
        // Probe everything before building any answer: a short loop body
        // keeps several lookups inside the CPU's reorder window at once.
        let mut g = 0;
        let found: Vec<(&DeviceId, &Latest)> = keyed
            .iter()
            .filter_map(|&(shard, hash, id)| {
                while guards[g].0 != shard {
                    g += 1;
                }
                let (_, v) = guards[g].1.get(hash, |(k, _)| k == id)?;
                Some((id, v.get()))
            })
            .collect();
        let mut out = Vec::with_capacity(found.len());
        out.extend(found.into_iter().filter_map(|(id, l)| f(id, l)));
        out
    }

    /// Current fixes of `ids` with their distance from (`lat`, `lon`), kept
    /// within `radius_m`, nearest first, read from the map: the index's
    /// candidates, or a caller's own devices (see
    /// [`in_bbox_of`](Self::in_bbox_of)).
    pub fn within_radius_of<'a>(
        &self,
        ids: impl Iterator<Item = &'a DeviceId>,
        lat: f64,
        lon: f64,
        radius_m: f64,
    ) -> Vec<(Position, f64)> {
        let mut hits = self.read_many(ids, |id, l| {
            let d = haversine_m(lat, lon, l.lat, l.lon);
            (d <= radius_m).then(|| (l.to_position(id), d))
        });
        hits.sort_by(|a, b| a.1.total_cmp(&b.1));
        hits
    }

    /// Devices within `radius_m` of (`lat`, `lon`), nearest first.
    pub fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<(Position, f64)> {
        let snap = self.snapshot();
        let ids = snap.within_radius(lat, lon, radius_m);
        self.within_radius_of(ids.into_iter().map(|(id, _)| id), lat, lon, radius_m)
    }

    /// The `k` devices nearest to (`lat`, `lon`) in the index, nearest
    /// first by their latest fix, with the great-circle distance in metres.
    pub fn nearest(&self, lat: f64, lon: f64, k: usize) -> Vec<(Position, f64)> {
        let snap = self.snapshot();
        let ids = snap.nearest(lat, lon, k);
        self.within_radius_of(ids.into_iter().map(|(id, _)| id), lat, lon, f64::INFINITY)
    }

    /// Runs `refresh_index` every `interval` on a blocking thread until
    /// `stop` is cancelled.
    pub async fn run_indexer(
        self: Arc<Self>,
        interval: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    let e = Arc::clone(&self);
                    if tokio::task::spawn_blocking(move || e.refresh_index()).await.is_err() {
                        tracing::error!("index rebuild panicked");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Attributes;
    use chrono::{TimeZone, Utc};

    /// A frame's fixes at once end where one by one would: random frames
    /// of one device or of three, out of order, with equal times (the first
    /// wins), bad coordinates and a stored fix newer than some of them.
    #[test]
    fn updating_a_frame_at_once_ends_as_one_by_one() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..500 {
            let (one_by_one, at_once) = (Engine::new(), Engine::new());
            for e in [&one_by_one, &at_once] {
                e.update(pos("b", 50, 5.0, 5.0));
            }
            let devices = if rng.gen_bool(0.5) { 1 } else { 3 };
            let frame: Vec<Position> = (0..rng.gen_range(0..12))
                .map(|i| {
                    let id = ["a", "b", "c"][rng.gen_range(0..devices)];
                    let lat = if rng.gen_bool(0.1) {
                        91.0
                    } else {
                        f64::from(i)
                    };
                    pos(id, rng.gen_range(40..60), lat, 1.0)
                })
                .collect();
            for p in frame.clone() {
                one_by_one.update(p);
            }
            at_once.update_all(frame.clone());
            for id in ["a", "b", "c"] {
                let d = DeviceId::new(id).unwrap();
                assert_eq!(one_by_one.get(&d), at_once.get(&d), "{id} {frame:?}");
            }
        }
    }

    pub(crate) fn pos(id: &str, t: i64, lat: f64, lon: f64) -> Position {
        Position {
            device_id: DeviceId::new(id).unwrap(),
            fix_time: Utc.timestamp_opt(t, 0).unwrap(),
            received_time: Utc.timestamp_opt(t, 0).unwrap(),
            lat,
            lon,
            altitude_m: 0.0,
            speed_kmh: 0.0,
            course_deg: 0.0,
            satellites: Some(7),
            valid: true,
            protocol: "test",
            attributes: Attributes::new(),
        }
    }

    #[test]
    fn older_fix_never_overwrites_newer() {
        let e = Engine::new();
        assert_eq!(e.update(pos("a", 100, 1.0, 1.0)), Update::Inserted);
        assert_eq!(e.update(pos("a", 50, 2.0, 2.0)), Update::Stale);
        assert_eq!(e.update(pos("a", 100, 3.0, 3.0)), Update::Stale);
        let id = DeviceId::new("a").unwrap();
        assert_eq!(e.get(&id).unwrap().lat, 1.0);
        assert_eq!(e.update(pos("a", 101, 4.0, 4.0)), Update::Replaced);
        assert_eq!(e.get(&id).unwrap().lat, 4.0);
    }

    #[test]
    fn a_fix_stamped_far_ahead_of_its_receipt_never_becomes_the_latest() {
        let e = Engine::new();
        let mut ahead = pos("a", 1_000_000, 1.0, 1.0);
        ahead.fix_time = ahead.received_time + chrono::Duration::hours(26);
        assert_eq!(e.update(ahead), Update::Stale);
        assert!(e.is_empty());
        let mut near = pos("a", 1_000_000, 2.0, 2.0);
        near.fix_time = near.received_time + chrono::Duration::hours(24);
        assert_eq!(
            e.update(near),
            Update::Inserted,
            "within a day: a clock that runs fast"
        );
        // A real fix after a wrong one is never held back by it.
        assert_eq!(e.update(pos("b", 1_000_000, 1.0, 1.0)), Update::Inserted);
        let mut wrong = pos("b", 2_000_000, 3.0, 3.0);
        wrong.fix_time = Utc.timestamp_opt(4_102_444_800, 0).unwrap(); // 2100
        assert_eq!(e.update(wrong), Update::Stale);
        assert_eq!(e.update(pos("b", 1_000_060, 4.0, 4.0)), Update::Replaced);
        assert_eq!(e.get(&DeviceId::new("b").unwrap()).unwrap().lat, 4.0);
    }

    #[test]
    fn invalid_coordinates_are_not_indexed() {
        let e = Engine::new();
        assert_eq!(e.update(pos("a", 1, f64::NAN, 1.0)), Update::Stale);
        assert_eq!(e.update(pos("a", 1, 91.0, 1.0)), Update::Stale);
        assert!(e.is_empty());
    }

    #[test]
    fn spatial_queries_follow_the_rebuilt_index() {
        let e = Engine::new();
        e.update(pos("berlin", 1, 52.52, 13.405));
        e.update(pos("potsdam", 1, 52.39, 13.065));
        e.update(pos("munich", 1, 48.137, 11.575));
        // Not yet indexed.
        assert!(e
            .in_bbox(&BBox::new(13.0, 52.0, 14.0, 53.0).unwrap())
            .is_empty());
        assert!(e.refresh_index());
        assert!(!e.refresh_index(), "nothing changed since the last rebuild");
        let mut ids: Vec<String> = e
            .in_bbox(&BBox::new(13.0, 52.0, 14.0, 53.0).unwrap())
            .into_iter()
            .map(|p| p.device_id.to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["berlin", "potsdam"]);

        let near = e.within_radius(52.52, 13.405, 30_000.0);
        assert_eq!(near.len(), 2);
        assert_eq!(near[0].0.device_id.as_str(), "berlin");
        assert!(
            (near[1].1 - 27_000.0).abs() < 2_000.0,
            "Berlin–Potsdam ≈ 27 km, got {}",
            near[1].1
        );

        let k = e.nearest(48.0, 11.0, 2);
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].0.device_id.as_str(), "munich");
        assert_eq!(k[1].0.device_id.as_str(), "potsdam");
        assert_eq!(e.nearest(48.0, 11.0, 10).len(), 3);
    }

    #[test]
    fn queries_answer_with_the_latest_fix_of_devices_the_index_found() {
        let e = Engine::new();
        e.update(pos("stays", 1, 52.52, 13.405));
        e.update(pos("leaves", 1, 52.50, 13.40));
        e.refresh_index();
        // After the rebuild: one moves within the box, one leaves it.
        e.update(pos("stays", 2, 52.53, 13.41));
        e.update(pos("leaves", 2, 48.0, 11.0));
        let hits = e.in_bbox(&BBox::new(13.0, 52.0, 14.0, 53.0).unwrap());
        assert_eq!(hits.len(), 1);
        assert_eq!(
            (
                hits[0].device_id.as_str(),
                hits[0].lat,
                hits[0].fix_time.timestamp()
            ),
            ("stays", 52.53, 2)
        );
        let near = e.within_radius(52.52, 13.405, 30_000.0);
        assert_eq!(near.len(), 1);
        assert_eq!(near[0].0.lat, 52.53);
        let k = e.nearest(52.52, 13.405, 2);
        assert_eq!(k[0].0.device_id.as_str(), "stays");
        assert!(
            k[1].1 > 500_000.0,
            "measured from the latest fix: {}",
            k[1].1
        );
    }

    #[test]
    fn f32_index_finds_points_on_the_edge_of_an_exact_box() {
        // f64 coordinates that f32 cannot hold, used as the box's own edges.
        let (lat, lon) = (52.123_456_789_012_3, 179.999_999_912_345);
        let e = Engine::new();
        e.update(pos("edge", 1, lat, lon));
        e.update(pos("outside", 1, lat, lon - 1e-9));
        e.refresh_index();
        let hits = e.in_bbox(&BBox::new(lon, lat, 180.0, 53.0).unwrap());
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!((hits[0].device_id.as_str(), hits[0].lat), ("edge", lat));
        // A radius that ends exactly at the point (within f64 rounding).
        let d = haversine_m(lat, lon - 0.01, lat, lon);
        let near = e.within_radius(lat, lon - 0.01, d + 1e-6);
        assert!(near.iter().any(|(p, _)| p.device_id.as_str() == "edge"));
    }

    /// Brute force over `fixes` (device → (lat, lon)): the devices in `b`.
    fn brute_box(fixes: &[(String, f64, f64)], b: &BBox) -> Vec<String> {
        let mut ids: Vec<String> = fixes
            .iter()
            .filter(|(_, lat, lon)| {
                (b.min_lon..=b.max_lon).contains(lon) && (b.min_lat..=b.max_lat).contains(lat)
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn queries_over_every_map_shard_match_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let e = Engine::new();
        let mut fixes: Vec<(String, f64, f64)> = (0..5_000)
            .map(|i| {
                let (lat, lon) = (rng.gen_range(50.0..51.0), rng.gen_range(10.0..11.0));
                (format!("35{i:013}"), lat, lon)
            })
            .collect();
        for (id, lat, lon) in &fixes {
            e.update(pos(id, 1, *lat, *lon));
        }
        e.refresh_index();
        // A fifth moves inside the area after the rebuild: answers follow
        // the latest fix, among the devices the index still finds.
        let indexed = fixes.clone();
        for f in fixes.iter_mut().step_by(5) {
            f.1 = rng.gen_range(50.0..51.0);
            f.2 = rng.gen_range(10.0..11.0);
            e.update(pos(&f.0, 2, f.1, f.2));
        }
        for _ in 0..50 {
            let (lat, lon) = (rng.gen_range(50.0..50.9), rng.gen_range(10.0..10.9));
            let b = BBox::new(lon, lat, lon + 0.1, lat + 0.1).unwrap();
            let mut got: Vec<String> = e
                .in_bbox(&b)
                .into_iter()
                .map(|p| {
                    let f = fixes.iter().find(|f| f.0 == p.device_id.as_str()).unwrap();
                    assert_eq!((p.lat, p.lon), (f.1, f.2), "the latest fix");
                    p.device_id.to_string()
                })
                .collect();
            got.sort();
            let was_indexed = brute_box(&indexed, &b);
            let want: Vec<String> = brute_box(&fixes, &b)
                .into_iter()
                .filter(|id| was_indexed.contains(id))
                .collect();
            assert_eq!(got, want);
        }
        let near = e.within_radius(50.5, 10.5, 5_000.0);
        let want = fixes
            .iter()
            .filter(|(id, lat, lon)| {
                haversine_m(50.5, 10.5, *lat, *lon) <= 5_000.0
                    && indexed
                        .iter()
                        .any(|(i, a, o)| i == id && haversine_m(50.5, 10.5, *a, *o) <= 5_000.0)
            })
            .count();
        assert_eq!(near.len(), want);
        assert!(near.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
    }

    #[test]
    fn queries_over_given_devices_check_only_those_against_their_latest_fix() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let e = Engine::new();
        let fixes: Vec<(DeviceId, f64, f64)> = (0..2_000)
            .map(|i| {
                let (lat, lon) = (rng.gen_range(50.0..51.0), rng.gen_range(10.0..11.0));
                let id = DeviceId::new(&format!("35{i:013}")).unwrap();
                e.update(pos(id.as_str(), 1, lat, lon));
                (id, lat, lon)
            })
            .collect();
        // Never indexed: these answers come from the map alone.
        let mine: Vec<DeviceId> = fixes.iter().step_by(7).map(|f| f.0.clone()).collect();
        let mut mine_and_unknown = mine.clone();
        mine_and_unknown.push(DeviceId::new("no-such-device").unwrap());
        let b = BBox::new(10.2, 50.2, 10.7, 50.7).unwrap();
        let mut got: Vec<String> = e
            .in_bbox_of(mine_and_unknown.iter(), &b)
            .into_iter()
            .map(|p| p.device_id.to_string())
            .collect();
        got.sort();
        let mut want: Vec<String> = fixes
            .iter()
            .step_by(7)
            .filter(|(_, lat, lon)| (50.2..=50.7).contains(lat) && (10.2..=10.7).contains(lon))
            .map(|f| f.0.to_string())
            .collect();
        want.sort();
        assert!(!want.is_empty());
        assert_eq!(got, want);
        let near = e.within_radius_of(mine.iter(), 50.5, 10.5, 20_000.0);
        let want = fixes
            .iter()
            .step_by(7)
            .filter(|(_, lat, lon)| haversine_m(50.5, 10.5, *lat, *lon) <= 20_000.0)
            .count();
        assert!(want > 0);
        assert_eq!(near.len(), want);
        assert!(near.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
        assert!(e.in_bbox(&b).is_empty(), "the index was never built");
    }

    #[test]
    fn queries_and_updates_run_side_by_side_without_deadlock() {
        let e = Arc::new(Engine::new());
        for i in 0..2_000 {
            e.update(pos(
                &format!("d{i}"),
                1,
                50.0 + f64::from(i % 100) * 0.001,
                10.0,
            ));
        }
        e.refresh_index();
        let b = BBox::new(9.0, 49.0, 11.0, 51.0).unwrap();
        std::thread::scope(|s| {
            for w in 0..2 {
                let e = &e;
                s.spawn(move || {
                    for t in 2..200 {
                        for i in (w..2_000).step_by(2) {
                            e.update(pos(&format!("d{i}"), t, 50.0, 10.0));
                        }
                    }
                });
            }
            for _ in 0..2 {
                let e = &e;
                let b = &b;
                s.spawn(move || {
                    for _ in 0..200 {
                        assert_eq!(e.in_bbox(b).len(), 2_000);
                    }
                });
            }
        });
    }

    #[test]
    fn radius_and_nearest_work_across_the_antimeridian_and_near_poles() {
        let e = Engine::new();
        e.update(pos("east", 1, 0.0, 179.99));
        e.update(pos("west", 1, 0.0, -179.99));
        e.update(pos("pole", 1, 89.999, 0.0));
        e.update(pos("pole2", 1, 89.999, 180.0));
        e.refresh_index();
        let hits = e.within_radius(0.0, 180.0, 5_000.0);
        assert_eq!(hits.len(), 2, "{hits:?}");
        let hits = e.within_radius(90.0, 0.0, 1_000.0);
        assert_eq!(hits.len(), 2, "{hits:?}");
        let k = e.nearest(0.0, -179.0, 1);
        assert_eq!(k[0].0.device_id.as_str(), "west");
    }
}
