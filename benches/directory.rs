//! An owner's device list at 1M registered devices (10,000 companies of
//! 100): what every owner list, spatial query and stream tick asks the
//! directory for, from its per-company index against the scan of every
//! company's devices it did before, in the same run.
//!
//! ```sh
//! cargo bench --bench directory
//! ```
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use dashmap::DashMap;
use trackgate::access::Directory;
use trackgate::store::Device;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEVICES: u32 = 1_000_000;
const COMPANIES: u32 = 10_000;

fn device(i: u32) -> Device {
    Device {
        device_id: format!("{i:015}"),
        company_id: format!("c{}", i % COMPANIES),
        name: format!("Truck {i}"),
    }
}

fn bench(c: &mut Criterion) {
    let dir = Directory::default();
    // The way it was: every device in one map, filtered by company.
    let all: DashMap<String, Device> = DashMap::new();
    for i in 0..DEVICES {
        let d = device(i);
        all.insert(d.device_id.clone(), d.clone());
        dir.add_device(d);
    }
    let mut g = c.benchmark_group("company_devices_1m");
    g.sample_size(20);
    g.bench_function("index", |b| {
        b.iter(|| {
            let v = dir.company_devices("c42");
            assert_eq!(v.len(), 100);
            v
        })
    });
    g.bench_function("scan_before", |b| {
        b.iter(|| {
            let mut v: Vec<Device> = all
                .iter()
                .filter(|d| d.company_id == "c42")
                .map(|d| d.clone())
                .collect();
            v.sort_by(|a, b| a.device_id.cmp(&b.device_id));
            assert_eq!(v.len(), 100);
            v
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
