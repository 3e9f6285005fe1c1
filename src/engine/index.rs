//! An immutable spatial index snapshot over [lon, lat] points.
//!
//! Points are stored as `f32` (about 1 m at the equator): the index only
//! finds candidates, every answer is re-checked against the map's exact
//! `f64` fix, so the index need not be exact, and the smaller nodes make a
//! leaf entry 40 instead of 56 bytes and the tree walk faster (measured in
//! `benches/README.md`). Rounding to nearest is monotonic, so a box whose
//! corners are rounded the same way still holds every point it should.

use rstar::primitives::GeomWithData;
use rstar::{RStarInsertionStrategy, RTree, RTreeParams, AABB};

use super::geo::{circle_envelopes, haversine_m, BBox, EARTH_RADIUS_M};
use crate::model::DeviceId;

/// A device's indexed point: `[lon, lat]` at rebuild time and its id (the
/// fix itself is read from the map, so answers are never older than it).
pub(crate) type Point = GeomWithData<[f32; 2], DeviceId>;

/// How far an `f32` point may lie from its exact fix, in metres, with room
/// to spare: half an `f32` step at 180° is 7.6e-6° (≈0.85 m).
const ROUNDING_SLACK_M: f64 = 2.0;

/// Node sizes for the bulk-loaded tree: wider than rstar's default (6), so
/// a query visits fewer, fuller nodes (see `benches/README.md`).
pub(crate) struct Params;

impl RTreeParams for Params {
    const MIN_SIZE: usize = 5;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 2;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// `[lon, lat]` in index precision.
pub(crate) fn point(lon: f64, lat: f64, id: DeviceId) -> Point {
    GeomWithData::new([lon as f32, lat as f32], id)
}

fn envelope(b: &BBox) -> AABB<[f32; 2]> {
    AABB::from_corners(
        [b.min_lon as f32, b.min_lat as f32],
        [b.max_lon as f32, b.max_lat as f32],
    )
}

/// An immutable, bulk-loaded R*-tree of the latest positions.
pub struct Snapshot {
    tree: RTree<Point, Params>,
    built_at: std::time::Instant,
}

impl Snapshot {
    pub(crate) fn empty() -> Self {
        Self {
            tree: RTree::new_with_params(),
            built_at: std::time::Instant::now(),
        }
    }

    pub(crate) fn build(points: Vec<Point>) -> Self {
        Self {
            tree: RTree::bulk_load_with_params(points),
            built_at: std::time::Instant::now(),
        }
    }

    /// Number of indexed devices.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// How long ago this snapshot was built.
    pub fn age(&self) -> std::time::Duration {
        self.built_at.elapsed()
    }

    /// Devices whose indexed point is inside `b` (candidates: the engine's
    /// `in_bbox` re-checks them against the latest fix).
    pub fn in_bbox<'a>(&'a self, b: &BBox) -> impl Iterator<Item = &'a DeviceId> + 'a {
        self.tree.locate_in_envelope(&envelope(b)).map(|p| &p.data)
    }

    /// Devices within `radius_m` (plus the rounding slack: callers re-check
    /// with the exact fix) and their distances (m), unordered.
    pub(crate) fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<(&DeviceId, f64)> {
        let mut out: Vec<(&DeviceId, f64)> = Vec::new();
        let envelopes = circle_envelopes(lat, lon, radius_m);
        // A point on the antimeridian can sit in both envelopes of a circle
        // that crosses it; one envelope needs no check.
        let mut seen = std::collections::HashSet::new();
        let several = envelopes.len() > 1;
        for b in envelopes {
            for p in self.tree.locate_in_envelope(&envelope(&b)) {
                let [plon, plat] = *p.geom();
                let d = haversine_m(lat, lon, f64::from(plat), f64::from(plon));
                if d <= radius_m + ROUNDING_SLACK_M && (!several || seen.insert(&p.data)) {
                    out.push((&p.data, d));
                }
            }
        }
        out
    }

    /// The `k` nearest devices by great-circle distance, nearest first.
    ///
    /// Degree space distorts distance, so this searches growing circles
    /// (exact radius queries) until one holds at least `k` devices: every
    /// device within that radius is then known, so the first `k` are exact.
    pub(crate) fn nearest(&self, lat: f64, lon: f64, k: usize) -> Vec<(&DeviceId, f64)> {
        if k == 0 || self.tree.size() == 0 {
            return Vec::new();
        }
        let k = k.min(self.tree.size());
        let mut radius = 1_000.0;
        let max = std::f64::consts::PI * EARTH_RADIUS_M;
        loop {
            let mut hits = self.within_radius(lat, lon, radius);
            if hits.len() >= k || radius >= max {
                hits.sort_by(|a, b| a.1.total_cmp(&b.1));
                hits.truncate(k);
                return hits;
            }
            radius = (radius * 4.0).min(max);
        }
    }
}
