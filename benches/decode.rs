//! Teltonika decoding to owned positions, in records/s and bytes/s, against
//! nom-teltonika 0.3.0 decoding the same frames into owned records
//! (`take_frame(..).evaluate()`), measured in the same run.
//!
//! Frames come from nom-teltonika's own encoder with the record shape its
//! benchmarks use (FMB-typical IO: ignition, movement, external voltage,
//! odometer, one u64, and a 12-byte NX element in 8E): 1 record, 10
//! records, and the most records that fit in one frame.
//!
//! On a shared machine the two decoders, measured one after the other,
//! land in windows of different load (the same function moved by 40% between
//! back-to-back runs here). So a third group, `teltonika_paired`, runs both
//! decoders on each frame alternating in blocks of ~1024 records inside every
//! sample and prints the ratio of their summed times: both see the same load.
//!
//! A second group puts what the server does per frame for its metrics
//! (`frames.inc()`, `positions.inc_by(n)`, `ack_latency.observe(..)`, and the
//! clock reads behind the latency) next to decoding 1- and 10-record codec 8
//! frames, to check that metrics stay a small fraction of a frame's CPU.
//!
//! A last group, `vectors`, is the same harness for every other protocol:
//! each protocol's captured vectors (`protocols/vectors/<name>.tsv`, minus
//! framer and `@integrity` rows) replayed in file order through one session
//! per transport, as Traccar's tests feed one decoder — so logins precede
//! data — in records/s (positions decoded).
//!
//! Run: `cargo bench --bench decode` (results in benches/README.md);
//! `cargo bench --bench decode -- vectors` for the protocol breadth alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nom_teltonika::decoder::take_frame;
use nom_teltonika::encoder::{encode_avl_frame, AvlRecordFields, EncodeAvlError};
use nom_teltonika::protocol::{AvlCodec, AvlTimestamp, GpsElement, IoId, Priority};
use trackgate::metrics::Metrics;
use trackgate::protocol::{find, DecodeContext, SessionConfig, Transport};

const GPS: GpsElement = GpsElement {
    longitude_raw: 252_800_000,
    latitude_raw: 546_900_000,
    altitude_meters: 110,
    angle_degrees: 90,
    satellites: 9,
    speed_kph: 42,
};

fn records(codec: AvlCodec, count: usize, io: &Io) -> Vec<AvlRecordFields<'_>> {
    (0..count)
        .map(|i| {
            let r = AvlRecordFields::new(
                AvlTimestamp::from(1_700_000_000_000 + 1_000 * i as u64),
                Priority::Low,
                GPS,
            )
            .with_io_u8(&io.u8)
            .with_io_u16(&io.u16)
            .with_io_u32(&io.u32)
            .with_io_u64(&io.u64);
            if codec == AvlCodec::Codec8Extended {
                r.with_io_bytes(&io.bytes)
            } else {
                r
            }
        })
        .collect()
}

struct Io {
    u8: [(IoId, u8); 2],
    u16: [(IoId, u16); 1],
    u32: [(IoId, u32); 1],
    u64: [(IoId, u64); 1],
    bytes: [(IoId, &'static [u8]); 1],
}

fn io() -> Io {
    Io {
        u8: [(239.into(), 1), (240.into(), 1)],
        u16: [(66.into(), 13_800)],
        u32: [(16.into(), 123_456)],
        u64: [(78.into(), 0x0102_0304_0506_0708)],
        bytes: [(385.into(), &[0xab; 12])],
    }
}

fn frames(codec: AvlCodec, io: &Io) -> Vec<(Vec<u8>, usize)> {
    let fullest = (1..=255)
        .map_while(|n| match encode_avl_frame(codec, &records(codec, n, io)) {
            Ok(f) => Some((f, n)),
            Err(EncodeAvlError::TooLong { .. }) => None,
            Err(e) => panic!("{e}"),
        })
        .last()
        .unwrap();
    vec![
        (encode_avl_frame(codec, &records(codec, 1, io)).unwrap(), 1),
        (
            encode_avl_frame(codec, &records(codec, 10, io)).unwrap(),
            10,
        ),
        fullest,
    ]
}

fn decode(c: &mut Criterion) {
    let io = io();
    let teltonika = find("teltonika").unwrap();
    let ctx = DecodeContext::now();
    for (codec, name) in [
        (AvlCodec::Codec8, "codec8"),
        (AvlCodec::Codec8Extended, "codec8e"),
    ] {
        for (unit, records_unit) in [("records", true), ("bytes", false)] {
            let mut g = c.benchmark_group(format!("teltonika_{name}_{unit}"));
            g.measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1));
            for (frame, n) in frames(codec, &io) {
                g.throughput(if records_unit {
                    Throughput::Elements(n as u64)
                } else {
                    Throughput::Bytes(frame.len() as u64)
                });
                let mut session = teltonika.session(&SessionConfig::new(Transport::Tcp));
                session.decode(b"\x00\x0f356307042441013", &ctx).unwrap();
                // Sanity: both decoders see every record.
                assert_eq!(session.decode(&frame, &ctx).unwrap().positions.len(), n);
                g.bench_with_input(BenchmarkId::new("trackgate", n), &frame, |b, f| {
                    b.iter(|| black_box(session.decode(black_box(f), &ctx).unwrap()))
                });
                g.bench_with_input(
                    BenchmarkId::new("nom_teltonika_0.3.0", n),
                    &frame,
                    |b, f| {
                        b.iter(|| black_box(take_frame(&mut black_box(&f[..])).unwrap().evaluate()))
                    },
                );
            }
            g.finish();
        }
    }
}

/// Per frame: decoding it, against the metric updates the server makes for it.
fn metrics(c: &mut Criterion) {
    let io = io();
    let teltonika = find("teltonika").unwrap();
    let ctx = DecodeContext::now();
    let m = Metrics::new().protocol("teltonika");
    let mut g = c.benchmark_group("teltonika_metrics_per_frame");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    for n in [1, 10] {
        let frame = encode_avl_frame(AvlCodec::Codec8, &records(AvlCodec::Codec8, n, &io)).unwrap();
        let mut session = teltonika.session(&SessionConfig::new(Transport::Tcp));
        session.decode(b"\x00\x0f356307042441013", &ctx).unwrap();
        assert_eq!(session.decode(&frame, &ctx).unwrap().positions.len(), n);
        g.bench_with_input(BenchmarkId::new("decode_codec8", n), &frame, |b, f| {
            b.iter(|| black_box(session.decode(black_box(f), &ctx).unwrap()))
        });
    }
    // What tcp.rs / server::judge do per data frame, minus the decode.
    g.bench_function("metrics", |b| {
        b.iter(|| {
            m.frames.inc();
            m.positions.inc_by(black_box(10));
            m.ack_latency.observe(black_box(0.000_3));
        })
    });
    // The same with the clock reads that exist only for the latency metric.
    g.bench_function("metrics_and_clock", |b| {
        b.iter(|| {
            let started = Instant::now();
            m.frames.inc();
            m.positions.inc_by(black_box(10));
            m.ack_latency.observe(started.elapsed().as_secs_f64());
        })
    });
    g.finish();
}

/// Records each decoder decodes in turn before the other takes over
/// (about a quarter of a millisecond).
const BLOCK_RECORDS: u64 = 1024;

/// Both decoders on the same frames, alternating in blocks inside every
/// sample; prints each one's mean time per frame and the ratio.
fn paired(c: &mut Criterion) {
    let io = io();
    let teltonika = find("teltonika").unwrap();
    let ctx = DecodeContext::now();
    let mut lines = Vec::new();
    let mut g = c.benchmark_group("teltonika_paired");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (codec, name) in [
        (AvlCodec::Codec8, "codec8"),
        (AvlCodec::Codec8Extended, "codec8e"),
    ] {
        for (frame, n) in frames(codec, &io) {
            // One iteration decodes the frame once with each decoder.
            g.throughput(Throughput::Elements(2 * n as u64));
            let mut session = teltonika.session(&SessionConfig::new(Transport::Tcp));
            session.decode(b"\x00\x0f356307042441013", &ctx).unwrap();
            let block = (BLOCK_RECORDS / n as u64).max(1);
            let (mut ours, mut theirs, mut count) = (Duration::ZERO, Duration::ZERO, 0u64);
            g.bench_with_input(BenchmarkId::new(name, n), &frame, |b, f| {
                b.iter_custom(|iters| {
                    let mut left = iters;
                    let mut total = Duration::ZERO;
                    while left > 0 {
                        let k = left.min(block);
                        left -= k;
                        let t = Instant::now();
                        for _ in 0..k {
                            black_box(session.decode(black_box(f), &ctx).unwrap());
                        }
                        let a = t.elapsed();
                        let t = Instant::now();
                        for _ in 0..k {
                            black_box(take_frame(&mut black_box(&f[..])).unwrap().evaluate());
                        }
                        let b = t.elapsed();
                        (ours, theirs, count) = (ours + a, theirs + b, count + k);
                        total += a + b;
                    }
                    total
                })
            });
            if count == 0 {
                continue; // filtered out on the command line
            }
            let per_frame = |d: Duration| d.as_nanos() as f64 / count as f64;
            lines.push(format!(
                "teltonika_paired/{name}/{n}: trackgate {:.0} ns/frame, \
                 nom-teltonika 0.3.0 {:.0} ns/frame, trackgate {:.2}x as fast",
                per_frame(ours),
                per_frame(theirs),
                theirs.as_secs_f64() / ours.as_secs_f64(),
            ));
        }
    }
    g.finish();
    for line in lines {
        println!("{line}");
    }
}

/// The replayable rows of `protocol`'s vector file, grouped by transport.
fn vector_streams(protocol: &str) -> Vec<(Transport, Vec<Vec<u8>>)> {
    use trackgate::protocol::testkit;
    let path = format!(
        "{}/protocols/vectors/{protocol}.tsv",
        env!("CARGO_MANIFEST_DIR")
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let rows = testkit::parse_tsv(&text).unwrap();
    let mut out: Vec<(Transport, Vec<Vec<u8>>)> = Vec::new();
    for t in [Transport::Tcp, Transport::Udp] {
        let chunks: Vec<Vec<u8>> = rows
            .iter()
            .filter(|v| !testkit::is_framer_row(v) && v.integrity().is_none())
            .filter(|v| match t {
                Transport::Tcp => v.transport.contains("tcp") || v.transport == "http",
                Transport::Udp => v.transport == "udp",
            })
            .map(|v| v.message.clone())
            .collect();
        if !chunks.is_empty() {
            out.push((t, chunks));
        }
    }
    out
}

fn vectors(c: &mut Criterion) {
    let ctx = DecodeContext::now();
    let mut g = c.benchmark_group("vectors");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for p in trackgate::protocol::registry() {
        for (transport, chunks) in vector_streams(p.name()) {
            if !p.transports().contains(&transport) {
                continue;
            }
            let run = || {
                let (steps, _) = trackgate::protocol::replay(
                    *p,
                    transport,
                    chunks.iter().map(Vec::as_slice),
                    &ctx,
                );
                steps
                    .iter()
                    .filter_map(|s| s.outcome.as_ref().ok())
                    .map(|d| d.positions.len())
                    .sum::<usize>()
            };
            let n = run();
            if n == 0 {
                println!(
                    "vectors/{}/{transport}: no positions decoded; skipped",
                    p.name()
                );
                continue;
            }
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(p.name(), transport), |b| {
                b.iter(|| black_box(run()))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, decode, paired, metrics, vectors);
criterion_main!(benches);
