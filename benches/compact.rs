//! The access-log compactor's CPU per entry before SQLite: reading a
//! segment's committed frames and building the chunks' bytes, as it does
//! now (skim each entry, copy its bytes) against the way it did (decode
//! each entry into a `LogEntry`, encode it again), in the same run.
//!
//! ```sh
//! cargo bench --bench compact
//! ```
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trackgate::framed::put_frame;
use trackgate::store::log_chunks;
use trackgate::store::log_journal::{decode_frames, skim_frames};
use trackgate::store::{LogEntry, StoredEntry};

/// The gateway binary's allocator: what the old way cost was mostly
/// allocating and freeing strings.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Entries per frame: a group commit under load.
const PER_FRAME: usize = 16;
/// Frames in the segment read: ~one compaction run at 30k reads/s.
const FRAMES: usize = 400;

/// A partner read's entry, with the fields an API read fills in.
fn entry(id: i64) -> StoredEntry {
    StoredEntry {
        id,
        entry: LogEntry {
            scope: "partner",
            time_ms: 1_700_000_000_000 + id,
            event: "read".into(),
            permission_id: Some(id % 4),
            permission_name: Some("Loads for Shipper".into()),
            provider_company_id: Some("4711".into()),
            recipient_company_id: Some("0815".into()),
            user_id: Some(7),
            api_key_id: Some(9),
            device_id: Some("356307042441013".into()),
            device_name: Some("Truck 1".into()),
            channel: Some("api".into()),
            query: Some("latest".into()),
            positions: Some(1),
            shipment_number: Some("SHP-2026-001".into()),
            client_addr: Some("127.0.0.1".into()),
            user_agent: Some("curl/8.5.0".into()),
            detail: None,
        },
        prev_hash: [id as u8; 32],
        hash: [id as u8 + 1; 32],
    }
}

/// A segment's body: `FRAMES` frames of `PER_FRAME` entries each.
fn segment() -> Vec<u8> {
    let mut body = Vec::new();
    for f in 0..FRAMES {
        let entries: Vec<StoredEntry> = (0..PER_FRAME)
            .map(|i| entry((f * PER_FRAME + i) as i64 + 1))
            .collect();
        // A chunk's bytes are the entries behind one format byte.
        let chunk = log_chunks::encode(&entries);
        put_frame(&mut body, |o| o.extend_from_slice(&chunk[1..]));
    }
    body
}

fn compact(c: &mut Criterion) {
    let body = segment();
    let mut g = c.benchmark_group("compact_segment");
    g.throughput(Throughput::Elements((FRAMES * PER_FRAME) as u64));
    g.bench_function("decode_and_encode", |b| {
        b.iter(|| {
            let (entries, intact) = decode_frames(&body);
            let bytes = log_chunks::encode(&entries);
            assert_eq!(intact, body.len());
            bytes.len()
        })
    });
    g.bench_function("skim_and_copy", |b| {
        b.iter(|| {
            let (mut bytes, mut raw) = (Vec::new(), Vec::new());
            let intact = skim_frames(&body, &mut bytes, &mut raw);
            let mut chunk = Vec::with_capacity(bytes.len() + 1);
            chunk.push(1);
            for r in &raw {
                chunk.extend_from_slice(&bytes[r.bytes.clone()]);
            }
            assert_eq!(intact, body.len());
            chunk.len()
        })
    });
    g.finish();
}

criterion_group!(benches, compact);
criterion_main!(benches);
