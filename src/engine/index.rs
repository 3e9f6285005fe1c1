//! An immutable spatial index snapshot over [lon, lat] points.

use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};

use super::geo::{circle_envelopes, haversine_m, BBox, EARTH_RADIUS_M};
use crate::model::DeviceId;

/// A device's indexed point: `[lon, lat]` at rebuild time and its id (the
/// fix itself is read from the map, so answers are never older than it).
pub(crate) type Point = GeomWithData<[f64; 2], DeviceId>;

/// An immutable, bulk-loaded R*-tree of the latest positions.
pub struct Snapshot {
    tree: RTree<Point>,
    built_at: std::time::Instant,
}

impl Snapshot {
    pub(crate) fn empty() -> Self {
        Self {
            tree: RTree::new(),
            built_at: std::time::Instant::now(),
        }
    }

    pub(crate) fn build(points: Vec<Point>) -> Self {
        Self {
            tree: RTree::bulk_load(points),
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

    /// Devices inside `b`.
    pub(crate) fn in_bbox<'a>(&'a self, b: &BBox) -> impl Iterator<Item = &'a DeviceId> + 'a {
        let env = AABB::from_corners([b.min_lon, b.min_lat], [b.max_lon, b.max_lat]);
        self.tree.locate_in_envelope(&env).map(|p| &p.data)
    }

    /// Devices within `radius_m` and their distances (m), unordered.
    pub(crate) fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<(&DeviceId, f64)> {
        let mut out: Vec<(&DeviceId, f64)> = Vec::new();
        for b in circle_envelopes(lat, lon, radius_m) {
            for p in self.tree.locate_in_envelope(&AABB::from_corners(
                [b.min_lon, b.min_lat],
                [b.max_lon, b.max_lat],
            )) {
                let [plon, plat] = *p.geom();
                let d = haversine_m(lat, lon, plat, plon);
                // A point on the antimeridian can sit in both envelopes.
                if d <= radius_m && !out.iter().any(|(id, _)| **id == p.data) {
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
