//! Position engine at 1M devices: latest-position updates, index rebuild,
//! box / radius / nearest queries, and memory per device.
//!
//! Baselines in the same run: a plain `HashMap` insert of the same
//! positions (the cheapest possible "latest" store) and moving points in one
//! shared `rstar` tree (remove + insert), the design the engine avoids.
//!
//! Run: `cargo bench --bench engine` (results in benches/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use trackgate::engine::{BBox, Engine};
use trackgate::model::{Attributes, DeviceId, Position};

/// The gateway binary's allocator, so the engine is measured as it runs,
/// wrapped in a counter of live heap bytes (what the structures hold, apart
/// from what the allocator keeps mapped).
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

const DEVICES: usize = 1_000_000;
const BATCH: usize = 100_000;

fn ids() -> Vec<DeviceId> {
    (0..DEVICES)
        .map(|i| DeviceId::new(&format!("35{:013}", i)).unwrap())
        .collect()
}

/// A position somewhere in Europe (lon 0..30, lat 40..60).
fn pos(rng: &mut StdRng, id: &DeviceId, t: i64) -> Position {
    Position {
        device_id: id.clone(),
        fix_time: Utc.timestamp_opt(1_700_000_000 + t, 0).unwrap(),
        received_time: Utc.timestamp_opt(1_700_000_000 + t, 0).unwrap(),
        lat: rng.gen_range(40.0..60.0),
        lon: rng.gen_range(0.0..30.0),
        altitude_m: 100.0,
        speed_kmh: 50.0,
        course_deg: 90.0,
        satellites: Some(9),
        valid: true,
        protocol: "teltonika",
        attributes: Attributes::new(),
    }
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn populated(ids: &[DeviceId], rng: &mut StdRng) -> Engine {
    let e = Engine::new();
    for id in ids {
        e.update(pos(rng, id, 0));
    }
    e.refresh_index();
    e
}

fn engine(c: &mut Criterion) {
    let ids = ids();
    let mut rng = StdRng::seed_from_u64(7);

    // Memory: RSS growth for 1M devices, map and index (no attributes).
    let (before, live_before) = (rss_bytes(), GLOBAL.allocated());
    let e = populated(&ids, &mut rng);
    let (after, live_after) = (rss_bytes(), GLOBAL.allocated());
    println!(
        "memory: {} bytes per device live heap, {} RSS (map + index, delta over {} devices)",
        live_after.saturating_sub(live_before) / DEVICES,
        after.saturating_sub(before) / DEVICES,
        DEVICES
    );

    let mut t = 1i64;
    let mut g = c.benchmark_group("engine_update_1M");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut next_batch = |rng: &mut StdRng| {
        t += 1;
        (0..BATCH)
            .map(|_| {
                let i = rng.gen_range(0..DEVICES);
                pos(rng, &ids[i], t)
            })
            .collect::<Vec<_>>()
    };
    g.bench_function("engine_update", |b| {
        b.iter_batched(
            || next_batch(&mut rng),
            |batch| {
                for p in batch {
                    black_box(e.update(p));
                }
            },
            BatchSize::LargeInput,
        )
    });
    // Baseline: a plain single-threaded HashMap insert of the same data.
    let mut map: HashMap<DeviceId, Position> = HashMap::with_capacity(DEVICES);
    for id in &ids {
        map.insert(id.clone(), pos(&mut rng, id, 0));
    }
    g.bench_function("baseline_hashmap_insert", |b| {
        b.iter_batched(
            || next_batch(&mut rng),
            |batch| {
                for p in batch {
                    black_box(map.insert(p.device_id.clone(), p));
                }
            },
            BatchSize::LargeInput,
        )
    });
    drop(map);
    // Baseline: moving points in one shared rstar tree (remove + insert).
    let mut by_id: Vec<[f64; 2]> = (0..DEVICES)
        .map(|_| [rng.gen_range(0.0..30.0), rng.gen_range(40.0..60.0)])
        .collect();
    let mut tree: RTree<GeomWithData<[f64; 2], u32>> = RTree::bulk_load(
        by_id
            .iter()
            .enumerate()
            .map(|(i, c)| GeomWithData::new(*c, i as u32))
            .collect(),
    );
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("baseline_rstar_move_10k", |b| {
        b.iter(|| {
            for _ in 0..10_000 {
                let id = rng.gen_range(0..DEVICES as u32);
                let old = by_id[id as usize];
                tree.remove(&GeomWithData::new(old, id));
                let new = [rng.gen_range(0.0..30.0), rng.gen_range(40.0..60.0)];
                tree.insert(GeomWithData::new(new, id));
                by_id[id as usize] = new;
            }
        })
    });
    g.finish();
    drop(tree);

    let mut g = c.benchmark_group("engine_index_1M");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(DEVICES as u64));
    g.bench_function("rebuild_snapshot", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let i = rng.gen_range(0..DEVICES);
                t += 1;
                e.update(pos(&mut rng, &ids[i], t));
                let start = Instant::now();
                assert!(e.refresh_index());
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();

    let mut g = c.benchmark_group("engine_query_1M");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("bbox_0.1deg", |b| {
        b.iter(|| {
            let lon = rng.gen_range(0.0..29.9);
            let lat = rng.gen_range(40.0..59.9);
            black_box(e.in_bbox(&BBox::new(lon, lat, lon + 0.1, lat + 0.1).unwrap()))
        })
    });
    // The same query as the engine answered it before `read_many`: one
    // `DashMap::get` (lock, lookup, unlock) per candidate.
    g.bench_function("baseline_bbox_0.1deg_get_per_hit", |b| {
        b.iter(|| {
            let lon = rng.gen_range(0.0..29.9);
            let lat = rng.gen_range(40.0..59.9);
            let bbox = BBox::new(lon, lat, lon + 0.1, lat + 0.1).unwrap();
            let snap = e.snapshot();
            let hits: Vec<Position> = snap
                .in_bbox(&bbox)
                .filter_map(|id| e.get(id))
                .filter(|p| {
                    (bbox.min_lon..=bbox.max_lon).contains(&p.lon)
                        && (bbox.min_lat..=bbox.max_lat).contains(&p.lat)
                })
                .collect();
            black_box(hits)
        })
    });
    g.bench_function("bbox_0.01deg", |b| {
        b.iter(|| {
            let lon = rng.gen_range(0.0..29.99);
            let lat = rng.gen_range(40.0..59.99);
            black_box(e.in_bbox(&BBox::new(lon, lat, lon + 0.01, lat + 0.01).unwrap()))
        })
    });
    g.bench_function("radius_5km", |b| {
        b.iter(|| {
            black_box(e.within_radius(rng.gen_range(40.0..60.0), rng.gen_range(0.0..30.0), 5_000.0))
        })
    });
    g.bench_function("nearest_10", |b| {
        b.iter(|| black_box(e.nearest(rng.gen_range(40.0..60.0), rng.gen_range(0.0..30.0), 10)))
    });
    g.bench_function("baseline_get_by_id", |b| {
        b.iter(|| black_box(e.get(&ids[rng.gen_range(0..DEVICES)])))
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
