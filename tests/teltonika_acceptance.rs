//! Acceptance on frames nobody on the team has seen: random codec 8 / 8E
//! sessions built by an independent encoder (nom-teltonika's) are fed to
//! `trackgate decode` and to the running server, and every value and every
//! reply byte is checked. The seed is printed; set TRACKGATE_SEED to replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use nom_teltonika::encoder::{
    encode_avl_datagram, encode_avl_frame, AvlRecordFields, DatagramHeaderFields,
};
use nom_teltonika::protocol::{AvlCodec, AvlTimestamp, GpsElement, ImeiView, IoId, Priority};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use trackgate::model::DeviceId;
use trackgate::protocol::Transport;

/// One generated record with the values we expect back.
#[derive(Debug, Clone)]
struct Rec {
    ms: u64,
    priority: u8,
    gps: GpsElement,
    u8s: Vec<(u16, u8)>,
    u16s: Vec<(u16, u16)>,
    u32s: Vec<(u16, u32)>,
    u64s: Vec<(u16, u64)>,
    nx: Vec<(u16, Vec<u8>)>,
}

/// Ids with a distinct id per record; 8E ids range over u16, codec 8 over u8.
fn ids(rng: &mut StdRng, n: usize, extended: bool, used: &mut Vec<u16>) -> Vec<u16> {
    let mut out = Vec::new();
    while out.len() < n {
        let id = if extended {
            rng.gen_range(1..=u16::MAX)
        } else {
            rng.gen_range(1..=255)
        };
        if !used.contains(&id) {
            used.push(id);
            out.push(id);
        }
    }
    out
}

fn record(rng: &mut StdRng, ms: u64, extended: bool) -> Rec {
    let mut used = Vec::new();
    let mut pick = |rng: &mut StdRng, max: usize| {
        let n = rng.gen_range(0..=max);
        ids(rng, n, extended, &mut used)
    };
    let u8s = pick(rng, 6).into_iter().map(|id| (id, rng.gen())).collect();
    let u16s = pick(rng, 4).into_iter().map(|id| (id, rng.gen())).collect();
    let u32s = pick(rng, 3).into_iter().map(|id| (id, rng.gen())).collect();
    let u64s = pick(rng, 2).into_iter().map(|id| (id, rng.gen())).collect();
    let nx = if extended {
        pick(rng, 2)
            .into_iter()
            .map(|id| {
                let len = rng.gen_range(0..24);
                (id, (0..len).map(|_| rng.gen()).collect())
            })
            .collect()
    } else {
        Vec::new()
    };
    Rec {
        ms,
        priority: rng.gen_range(0..=2),
        gps: GpsElement {
            longitude_raw: rng.gen_range(-1_800_000_000..=1_800_000_000),
            latitude_raw: rng.gen_range(-900_000_000..=900_000_000),
            altitude_meters: rng.gen_range(0..=9_000),
            angle_degrees: rng.gen_range(0..360),
            satellites: rng.gen_range(0..=24),
            speed_kph: rng.gen_range(0..=250),
        },
        u8s,
        u16s,
        u32s,
        u64s,
        nx,
    }
}

/// Encodes records with nom-teltonika (borrowed IO tables live in `store`).
/// `None` when the records exceed the codec's frame limit (1,280 bytes for
/// codec 8/8E in nom-teltonika; devices send no larger frames).
fn encode(codec: AvlCodec, recs: &[Rec]) -> Option<Vec<u8>> {
    let tables: Vec<_> = recs
        .iter()
        .map(|r| {
            (
                r.u8s
                    .iter()
                    .map(|(i, v)| (IoId::from(*i), *v))
                    .collect::<Vec<_>>(),
                r.u16s
                    .iter()
                    .map(|(i, v)| (IoId::from(*i), *v))
                    .collect::<Vec<_>>(),
                r.u32s
                    .iter()
                    .map(|(i, v)| (IoId::from(*i), *v))
                    .collect::<Vec<_>>(),
                r.u64s
                    .iter()
                    .map(|(i, v)| (IoId::from(*i), *v))
                    .collect::<Vec<_>>(),
                r.nx.iter()
                    .map(|(i, v)| (IoId::from(*i), v.as_slice()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let fields: Vec<AvlRecordFields<'_>> = recs
        .iter()
        .zip(&tables)
        .map(|(r, t)| {
            let p = match r.priority {
                0 => Priority::Low,
                1 => Priority::High,
                _ => Priority::Panic,
            };
            AvlRecordFields::new(AvlTimestamp::from(r.ms), p, r.gps)
                .with_io_u8(&t.0)
                .with_io_u16(&t.1)
                .with_io_u32(&t.2)
                .with_io_u64(&t.3)
                .with_io_bytes(&t.4)
        })
        .collect();
    encode_avl_frame(codec, &fields).ok()
}

/// A random session: an IMEI and frames of records with increasing times.
struct Session {
    imei: String,
    frames: Vec<(Vec<u8>, Vec<Rec>)>,
}

fn session(rng: &mut StdRng) -> Session {
    let imei: String = (0..15)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    let mut ms = rng.gen_range(946_684_800_000u64..2_000_000_000_000);
    let frames = (0..rng.gen_range(1..=4))
        .map(|_| {
            let extended = rng.gen_bool(0.5);
            let mut recs: Vec<Rec> = (0..rng.gen_range(1..=12))
                .map(|_| {
                    ms += rng.gen_range(1..60_000);
                    record(rng, ms, extended)
                })
                .collect();
            let codec = if extended {
                AvlCodec::Codec8Extended
            } else {
                AvlCodec::Codec8
            };
            // Drop trailing records until the frame fits the codec's limit.
            loop {
                if let Some(frame) = encode(codec, &recs) {
                    break (frame, recs);
                }
                assert!(recs.len() > 1, "one record always fits");
                recs.pop();
            }
        })
        .collect();
    Session { imei, frames }
}

fn login(imei: &str) -> Vec<u8> {
    let mut v = (imei.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(imei.as_bytes());
    v
}

fn seed() -> u64 {
    let s = std::env::var("TRACKGATE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("TRACKGATE_SEED={s}");
    s
}

/// Checks one decoded position (JSON form) against the generated record.
fn check(p: &Value, r: &Rec, imei: &str, ctx: &str) {
    assert_eq!(p["device_id"], imei, "{ctx}");
    let t = chrono::DateTime::from_timestamp_millis(r.ms as i64).unwrap();
    assert_eq!(p["fix_time"], trackgate::model::format_time(&t), "{ctx}");
    let close = |a: &Value, e: f64, what: &str| {
        let a = a
            .as_f64()
            .unwrap_or_else(|| panic!("{ctx}: {what} missing"));
        assert!((a - e).abs() < 1e-9, "{ctx}: {what} {a} != {e}");
    };
    close(&p["lat"], f64::from(r.gps.latitude_raw) / 1e7, "lat");
    close(&p["lon"], f64::from(r.gps.longitude_raw) / 1e7, "lon");
    close(
        &p["altitude_m"],
        f64::from(r.gps.altitude_meters as i16),
        "altitude",
    );
    close(&p["speed_kmh"], f64::from(r.gps.speed_kph), "speed");
    close(&p["course_deg"], f64::from(r.gps.angle_degrees), "course");
    assert_eq!(p["satellites"], r.gps.satellites, "{ctx}");
    assert_eq!(p["valid"], r.gps.satellites != 0, "{ctx}");
    assert_eq!(p["protocol"], "teltonika");
    let a = &p["attributes"];
    assert_eq!(a["priority"], r.priority, "{ctx}");
    for (id, v) in &r.u8s {
        assert_eq!(a[format!("io{id}")], u64::from(*v), "{ctx} io{id}");
    }
    for (id, v) in &r.u16s {
        assert_eq!(a[format!("io{id}")], u64::from(*v), "{ctx} io{id}");
    }
    for (id, v) in &r.u32s {
        assert_eq!(a[format!("io{id}")], u64::from(*v), "{ctx} io{id}");
    }
    for (id, v) in &r.u64s {
        assert_eq!(a[format!("io{id}")], *v, "{ctx} io{id} (raw unsigned)");
    }
    for (id, v) in &r.nx {
        assert_eq!(a[format!("io{id}")], hex::encode(v), "{ctx} io{id}");
    }
}

#[test]
fn random_sessions_through_trackgate_decode() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..40 {
        let s = session(&mut rng);
        let mut messages = vec![hex::encode(login(&s.imei))];
        messages.extend(s.frames.iter().map(|(f, _)| hex::encode(f)));
        // Half the sessions as positional HEX arguments, half on stdin.
        let as_args = n % 2 == 0;
        let mut child = Command::new(env!("CARGO_BIN_EXE_trackgate"))
            .args(["decode", "--protocol", "teltonika"])
            .args(if as_args {
                messages.clone()
            } else {
                Vec::new()
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = if as_args {
            String::new()
        } else {
            messages.join("\n") + "\n"
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ctx = format!("seed {seed} session {n}");
        assert_eq!(lines.len(), 1 + s.frames.len(), "{ctx}");
        assert_eq!(lines[0]["message"], "login", "{ctx}");
        assert_eq!(lines[0]["device_id"], s.imei.as_str(), "{ctx}");
        assert_eq!(lines[0]["reply_hex"], "01", "{ctx}");
        let mut offset = 2 + s.imei.len();
        for (i, ((frame, recs), line)) in s.frames.iter().zip(&lines[1..]).enumerate() {
            let reply = (recs.len() as u32).to_be_bytes();
            let want = DataLine {
                imei: &s.imei,
                reply: &reply,
                offset,
                recs,
            };
            want.check(line, check, &format!("{ctx} frame {i}"));
            offset += frame.len();
        }
    }
}

#[test]
fn random_datagrams_through_trackgate_decode_over_udp() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..20 {
        let sessions: Vec<Session> = (0..3).map(|_| session(&mut rng)).collect();
        let grams: Vec<_> = sessions.iter().map(|s| datagram(&mut rng, s)).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_trackgate"))
            .args(["decode", "--protocol", "teltonika", "--transport", "udp"])
            .args(grams.iter().map(|(d, _, _)| hex::encode(d)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ctx = format!("seed {seed} udp {n}");
        assert_eq!(lines.len(), 3, "{ctx}");
        let mut offset = 0;
        for (i, ((s, (d, want, recs)), line)) in sessions.iter().zip(&grams).zip(&lines).enumerate()
        {
            let w = DataLine {
                imei: &s.imei,
                reply: want,
                offset,
                recs,
            };
            w.check(line, check_udp, &format!("{ctx} datagram {i}"));
            offset += d.len();
        }
    }
}

#[test]
fn malformed_input_exits_non_zero_naming_the_byte_offset() {
    let mut rng = StdRng::seed_from_u64(seed());
    let s = session(&mut rng);
    let login = hex::encode(login(&s.imei));
    let good = hex::encode(&s.frames[0].0);
    let mut broken = s.frames[0].0.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0x5a;
    let cases = [
        (
            vec![login.clone(), hex::encode(&broken)],
            "-byte frame rejected: checksum",
        ),
        (
            vec![login.clone(), good[..good.len() / 4 * 2].to_string()],
            "input ends inside a frame",
        ),
        (
            vec![login.clone(), "474554202f20485454502f312e31".into()],
            "cannot frame: ",
        ),
    ];
    for (args, what) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_trackgate"))
            .args(["decode", "--protocol", "teltonika"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        let offset = format!("byte offset {}: ", 2 + s.imei.len());
        assert!(err.contains(&offset) && err.contains(what), "{what}: {err}");
        // What was good before the error is still printed.
        let first: Value = serde_json::from_str(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(first["message"], "login");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sessions_against_the_running_server() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let gw = support::start(&support::test_config(dir.path())).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let engine = std::sync::Arc::clone(&gw.engine);
    let (tcp_sent, udp_sent) = tokio::task::spawn_blocking(move || {
        let mut rng = StdRng::seed_from_u64(seed);
        // What each device sent and saw acked: checked against the history.
        let mut tcp_sent: Vec<(String, Vec<Rec>)> = Vec::new();
        let mut udp_sent: Vec<(String, Vec<Rec>)> = Vec::new();
        for n in 0..150 {
            let s = session(&mut rng);
            let ctx = format!("seed {seed} session {n}");
            let mut c = TcpStream::connect(tcp).unwrap();
            c.set_nodelay(true).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Random TCP segmentation: devices and networks split frames anywhere.
            let mut stream = login(&s.imei);
            let mut cut_points = Vec::new();
            c.write_all(&stream).unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b, [1], "{ctx}: login reply");
            for (frame, recs) in &s.frames {
                stream.clear();
                stream.extend_from_slice(frame);
                let cut = rng.gen_range(1..=stream.len());
                cut_points.push(cut);
                c.write_all(&stream[..cut]).unwrap();
                c.flush().unwrap();
                c.write_all(&stream[cut..]).unwrap();
                let mut ack = [0u8; 4];
                c.read_exact(&mut ack).unwrap();
                assert_eq!(
                    ack,
                    (recs.len() as u32).to_be_bytes(),
                    "{ctx}: ack (cut at {cut_points:?})"
                );
            }
            tcp_sent.push((
                s.imei.clone(),
                s.frames.iter().flat_map(|(_, r)| r.clone()).collect(),
            ));
            // The latest is the newest record not stamped more than 25 h
            // ahead (the random times reach 2033: those are stored, never
            // the latest).
            let limit = chrono::Utc::now().timestamp_millis() + trackgate::model::MAX_FIX_AHEAD_MS;
            let latest = s
                .frames
                .iter()
                .flat_map(|(_, r)| r)
                .rfind(|r| (r.ms as i64) <= limit);
            let p = engine.get(&DeviceId::new(&s.imei).unwrap());
            match (latest, p) {
                (Some(want), Some(p)) => {
                    let v = serde_json::to_value(&p).unwrap();
                    check(&v, want, &s.imei, &format!("{ctx} latest"));
                }
                (None, None) => {}
                (want, got) => panic!("{ctx}: latest {got:?}, want {:?}", want.map(|r| r.ms)),
            }
        }

        // UDP: random datagrams, the ack carries their packet ids and count.
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for n in 0..100 {
            let s = session(&mut rng);
            let (d, want, recs) = datagram(&mut rng, &s);
            sock.send_to(&d, tcp).unwrap();
            let mut buf = [0u8; 32];
            let (len, _) = sock.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], want.as_slice(), "seed {seed} udp {n}");
            udp_sent.push((s.imei.clone(), recs.clone()));
        }
        (tcp_sent, udp_sent)
    })
    .await
    .unwrap();

    // Every acked record, every value, as stored.
    gw.history.flush().await.unwrap();
    for (udp, sent) in [(false, &tcp_sent), (true, &udp_sent)] {
        for (n, (imei, recs)) in sent.iter().enumerate() {
            let page = gw
                .history
                .range(trackgate::history::Range {
                    device: DeviceId::new(imei).unwrap(),
                    from_ms: 0,
                    to_ms: i64::MAX,
                    limit: 10_000,
                    after: None,
                    records: trackgate::history::Records::Positions,
                })
                .await
                .unwrap();
            let ctx = format!(
                "seed {seed} {} session {n}",
                if udp { "udp" } else { "tcp" }
            );
            assert_eq!(page.positions.len(), recs.len(), "{ctx}: stored records");
            for (j, (p, r)) in page.positions.iter().zip(recs).enumerate() {
                let v = serde_json::to_value(p).unwrap();
                let ctx = format!("{ctx} record {j}");
                if udp {
                    check_udp(&v, r, imei, &ctx);
                } else {
                    check(&v, r, imei, &ctx);
                }
            }
        }
    }
    gw.shutdown().await;
}

/// What `trackgate decode` must print for one data message.
struct DataLine<'a> {
    imei: &'a str,
    reply: &'a [u8],
    offset: usize,
    recs: &'a [Rec],
}

impl DataLine<'_> {
    fn check(&self, line: &Value, each: fn(&Value, &Rec, &str, &str), ctx: &str) {
        assert_eq!(line["message"], "data", "{ctx}");
        assert_eq!(line["device_id"], self.imei, "{ctx}");
        assert_eq!(line["reply_hex"], hex::encode(self.reply), "{ctx}");
        assert_eq!(line["offset"], self.offset, "{ctx}");
        let ps = line["positions"].as_array().unwrap();
        assert_eq!(ps.len(), self.recs.len(), "{ctx}");
        for (j, (p, r)) in ps.iter().zip(self.recs).enumerate() {
            each(p, r, self.imei, &format!("{ctx} record {j}"));
        }
    }
}

/// One UDP datagram of the session's first frame's records (GPS, low
/// priority, their u8 elements; codec 8 or 8E), and the exact ack it needs.
fn datagram(rng: &mut StdRng, s: &Session) -> (Vec<u8>, Vec<u8>, Vec<Rec>) {
    let (_, recs) = &s.frames[0];
    let packet_id: u16 = rng.gen();
    let avl_id: u8 = rng.gen();
    let header = DatagramHeaderFields {
        packet_id,
        avl_packet_id: avl_id,
        imei: ImeiView::try_from(s.imei.as_str()).unwrap(),
    };
    let tables: Vec<_> = recs
        .iter()
        .map(|r| {
            r.u8s
                .iter()
                .map(|(i, v)| (IoId::from(*i), *v))
                .collect::<Vec<_>>()
        })
        .collect();
    let fields: Vec<_> = recs
        .iter()
        .zip(&tables)
        .map(|(r, t)| {
            AvlRecordFields::new(AvlTimestamp::from(r.ms), Priority::Low, r.gps).with_io_u8(t)
        })
        .collect();
    let narrow = recs.iter().all(|r| r.u8s.iter().all(|(i, _)| *i < 256));
    let codec = if narrow && rng.gen_bool(0.5) {
        AvlCodec::Codec8
    } else {
        AvlCodec::Codec8Extended
    };
    let d = encode_avl_datagram(header, codec, &fields).unwrap();
    let mut want = vec![0x00, 0x05];
    want.extend_from_slice(&packet_id.to_be_bytes());
    want.extend_from_slice(&[0x01, avl_id, recs.len() as u8]);
    (d, want, recs.clone())
}

/// A UDP record as the test sends it: GPS, low priority, its u8 elements.
fn check_udp(p: &Value, r: &Rec, imei: &str, ctx: &str) {
    let only_gps = Rec {
        priority: 0,
        u16s: Vec::new(),
        u32s: Vec::new(),
        u64s: Vec::new(),
        nx: Vec::new(),
        ..r.clone()
    };
    check(p, &only_gps, imei, ctx);
}
