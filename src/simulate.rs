//! `trackgate simulate`: virtual trackers, each on its own TCP connection,
//! driving plausible routes and honouring acks exactly like real devices of
//! the chosen protocol (Teltonika, GT06, JT/T 808, Meitrack, Ruptela, Wialon
//! IPS — every protocol
//! with a [`DeviceSide`]): a record leaves the device's buffer only when the
//! server acknowledges it; on a refusal, a timeout or a dropped connection
//! it stays and is sent again. The load tool for benchmarks and the crash
//! test, and a demo source.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::protocol::device::{Answer, BadReply, DeviceSide, Fix, Stage};

pub use crate::protocols::teltonika::device::{codec8_packet, login_packet};

/// What to simulate.
#[derive(Debug, Clone, clap::Args)]
pub struct SimOptions {
    /// The protocol the devices speak (teltonika, gt06, jt808, meitrack,
    /// ruptela, wialon).
    #[arg(long, default_value = "teltonika")]
    pub protocol: String,
    /// The gateway's TCP address for that protocol; default 127.0.0.1 on
    /// the protocol's default port.
    #[arg(long)]
    pub target: Option<SocketAddr>,
    /// Number of devices (one connection each).
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Packets per second per device.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Records per packet (1 up to what one packet of the protocol carries:
    /// Teltonika, Meitrack, Ruptela and Wialon 255, JT/T 808 32, GT06 1).
    #[arg(long, default_value_t = 1)]
    pub records: usize,
    /// How long to generate records, in seconds; then the devices send
    /// what they still hold and stop.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds after `--duration` that devices go on resending what was
    /// not acked before they give up (what is left is reported unacked).
    #[arg(long, default_value_t = DRAIN_FOR.as_secs_f64())]
    pub drain: f64,
    /// First device number (IMEI); device i gets this plus i.
    #[arg(long, default_value_t = 350_000_000_000_000)]
    pub imei_base: u64,
    /// Seconds a device waits for an ack before it reconnects and resends.
    #[arg(long, default_value_t = 5.0)]
    pub ack_timeout: f64,
    /// Write every acknowledged record (device id, fix time ms, lat, lon) to this TSV file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub generated: u64,
    pub acked: u64,
    /// Records still unacknowledged when the run ended.
    pub unacked: u64,
    /// Packets sent again after a refusal, a timeout or a lost connection.
    pub resent: u64,
    pub reconnects: u64,
    pub elapsed: Duration,
    /// Ack latency per packet, microseconds, sorted.
    pub latency_us: Vec<u64>,
    /// Every acked record: (device number, fix ms, lat, lon); kept only
    /// with `--out` or [`Plan::keeping_acked`].
    pub acked_records: Vec<(u64, i64, f64, f64)>,
}

impl SimReport {
    /// Latency percentile `q` (0..=1) in microseconds.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.latency_us.is_empty() {
            return 0;
        }
        let i = ((self.latency_us.len() - 1) as f64 * q).round() as usize;
        self.latency_us[i.min(self.latency_us.len() - 1)]
    }

    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "generated {} records, acked {} ({:.0}/s), unacked {}, resent packets {}, reconnects {}; ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.generated,
            self.acked,
            self.acked as f64 / secs,
            self.unacked,
            self.resent,
            self.reconnects,
            self.percentile(0.5) as f64 / 1000.0,
            self.percentile(0.99) as f64 / 1000.0,
            self.percentile(1.0) as f64 / 1000.0,
        )
    }
}

/// A device driving a route: position, heading, speed.
struct Route {
    lat: f64,
    lon: f64,
    course: f64,
    speed_kmh: f64,
    last_ms: i64,
}

impl Route {
    fn new(rng: &mut impl Rng) -> Self {
        Self {
            // Somewhere in central Europe.
            lat: rng.gen_range(47.0..54.0),
            lon: rng.gen_range(6.0..15.0),
            course: rng.gen_range(0.0..360.0),
            speed_kmh: rng.gen_range(40.0..90.0),
            last_ms: 0,
        }
    }

    /// The next fix, at least `step_ms` after the previous one (the wire's
    /// time resolution), so every record of a device is distinct.
    fn next(&mut self, rng: &mut impl Rng, step_ms: i64) -> Fix {
        let now = chrono::Utc::now().timestamp_millis();
        let fix_ms = if self.last_ms == 0 {
            now
        } else {
            now.max(self.last_ms + step_ms)
        };
        let dt_h = if self.last_ms == 0 {
            0.0
        } else {
            (fix_ms - self.last_ms) as f64 / 3_600_000.0
        };
        self.last_ms = fix_ms;
        self.course = (self.course + rng.gen_range(-10.0..10.0)).rem_euclid(360.0);
        self.speed_kmh = (self.speed_kmh + rng.gen_range(-3.0..3.0)).clamp(0.0, 110.0);
        let km = self.speed_kmh * dt_h;
        let rad = self.course.to_radians();
        self.lat = (self.lat + km * rad.cos() / 111.0).clamp(-89.0, 89.0);
        self.lon = (self.lon + km * rad.sin() / (111.0 * self.lat.to_radians().cos()))
            .clamp(-179.0, 179.0);
        Fix {
            fix_ms,
            lat: self.lat,
            lon: self.lon,
            speed_kmh: self.speed_kmh as u16,
            course: self.course as u16,
        }
    }
}

/// Why a simulation cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown protocol {0:?}")]
    UnknownProtocol(String),
    #[error("no device simulator for {0} yet (there is one for: {1})")]
    NoDeviceSide(String, String),
    #[error("{protocol} carries at most {max} record(s) per packet, not {asked}")]
    TooManyRecords {
        protocol: String,
        max: usize,
        asked: usize,
    },
    #[error("{0}")]
    Invalid(&'static str),
}

/// Device numbers stay 15-digit IMEIs.
const MAX_DEVICE_NUMBER: u64 = 999_999_999_999_999;

/// A checked simulation: the protocol's device side and where it connects.
pub struct Plan {
    opts: SimOptions,
    side: &'static dyn DeviceSide,
    target: SocketAddr,
    /// Whether the report lists every acked record. Off for a plain load
    /// run: growing that list was 15% of the simulator's CPU at 300k
    /// records/s (fresh pages zeroed as each device's list grew), CPU the
    /// gateway under test shares.
    keep_acked: bool,
}

impl Plan {
    /// Checks `opts` against the protocol's device side.
    pub fn new(opts: SimOptions) -> Result<Self, SimError> {
        let within = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if opts.devices == 0 || opts.records == 0 {
            return Err(SimError::Invalid("need --devices > 0 and --records > 0"));
        }
        if !within(opts.rate, 1e-3, 10_000.0) {
            return Err(SimError::Invalid(
                "--rate must be in 0.001..=10000 packets/s",
            ));
        }
        if !within(opts.duration, 0.0, 1e7)
            || !within(opts.drain, 0.0, 1e7)
            || !within(opts.ack_timeout, 0.01, 3600.0)
        {
            return Err(SimError::Invalid(
                "--duration and --drain must be in 0..=1e7 s, --ack-timeout in 0.01..=3600 s",
            ));
        }
        let last = u64::try_from(opts.devices - 1)
            .ok()
            .and_then(|d| opts.imei_base.checked_add(d));
        if last.is_none_or(|l| l > MAX_DEVICE_NUMBER) {
            return Err(SimError::Invalid(
                "--imei-base plus --devices must stay within 15 digits",
            ));
        }
        let p = crate::protocol::find(&opts.protocol)
            .ok_or_else(|| SimError::UnknownProtocol(opts.protocol.clone()))?;
        let side = p
            .device_side()
            .ok_or_else(|| SimError::NoDeviceSide(opts.protocol.clone(), simulated().join(", ")))?;
        if opts.records > side.max_records() {
            return Err(SimError::TooManyRecords {
                protocol: opts.protocol.clone(),
                max: side.max_records(),
                asked: opts.records,
            });
        }
        let target = opts
            .target
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], p.default_port())));
        let keep_acked = opts.out.is_some();
        Ok(Self {
            opts,
            side,
            target,
            keep_acked,
        })
    }

    /// Lists every acked record in the report (as `--out` does in its file).
    pub fn keeping_acked(mut self) -> Self {
        self.keep_acked = true;
        self
    }

    /// Where the devices connect.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// How many times faster than the clock fix times advance, when a
    /// device reports more fixes per second than its wire's time stamps
    /// can tell apart (whole seconds): each fix is one step after the last.
    pub fn clock_ahead(&self) -> Option<f64> {
        let per_second = self.opts.rate * self.opts.records as f64;
        let factor = per_second * self.side.time_step_ms() as f64 / 1000.0;
        (factor > 1.0).then_some(factor)
    }
}

/// The protocols `simulate` can speak.
pub fn simulated() -> Vec<&'static str> {
    crate::protocol::registry()
        .iter()
        .filter(|p| p.device_side().is_some())
        .map(|p| p.name())
        .collect()
}

#[derive(Default)]
struct Totals {
    generated: u64,
    acked: u64,
    unacked: u64,
    resent: u64,
    reconnects: u64,
    latency_us: Vec<u64>,
    acked_records: Vec<(u64, i64, f64, f64)>,
}

/// How long, by default, devices go on sending their unacked records after
/// `duration`: a gateway that stays away does not keep the simulation
/// running for ever.
pub const DRAIN_FOR: Duration = Duration::from_secs(60);
/// A device whose connection attempt failed waits this long (at most its
/// ack timeout) before the next, as trackers do, rather than hammering a
/// gateway that is down.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Runs the simulation until `duration` has passed (then drains, for at
/// most `drain` seconds) or `stop`.
pub async fn run(plan: Plan, stop: CancellationToken) -> SimReport {
    let totals = Arc::new(Mutex::new(Totals::default()));
    let started = Instant::now();
    let generate_until = started + Duration::from_secs_f64(plan.opts.duration.max(0.0));
    let plan = Arc::new(plan);
    let mut tasks = Vec::with_capacity(plan.opts.devices);
    for i in 0..plan.opts.devices {
        let plan = Arc::clone(&plan);
        let t = Arc::clone(&totals);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            device(&plan, i, generate_until, t, stop).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut t = std::mem::take(&mut *totals.lock());
    t.latency_us.sort_unstable();
    let report = SimReport {
        generated: t.generated,
        acked: t.acked,
        unacked: t.unacked,
        resent: t.resent,
        reconnects: t.reconnects,
        elapsed: started.elapsed(),
        latency_us: t.latency_us,
        acked_records: t.acked_records,
    };
    if let Some(path) = &plan.opts.out {
        if let Err(e) = write_records(path, plan.side, &report.acked_records) {
            tracing::error!(path = %path.display(), error = %e, "cannot write acked records");
        }
    }
    report
}

fn write_records(
    path: &std::path::Path,
    side: &dyn DeviceSide,
    records: &[(u64, i64, f64, f64)],
) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "device_id\tfix_ms\tlat\tlon")?;
    for (n, ts, lat, lon) in records {
        writeln!(f, "{}\t{ts}\t{lat}\t{lon}", side.device_id(*n))?;
    }
    f.flush()
}

/// Most bytes a device buffers while waiting for one whole answer; a
/// server sending more without completing one is broken, and the device
/// drops the connection.
const MAX_REPLY: usize = 128 * 1024;

/// One open connection: the stream, bytes read but not yet used, and the
/// next message serial.
struct Conn {
    stream: TcpStream,
    inbox: BytesMut,
    serial: u16,
}

impl Conn {
    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    /// Sends `bytes` and waits for the answer to them (skipping unrelated
    /// server messages). An error: the connection closed, or the server
    /// sent bytes no device could read, or more than [`MAX_REPLY`] without
    /// one whole answer.
    async fn ask(
        &mut self,
        side: &dyn DeviceSide,
        bytes: &[u8],
        stage: Stage,
        serial: u16,
        sent: usize,
    ) -> std::io::Result<Answer> {
        self.stream.write_all(bytes).await?;
        loop {
            match side.next_reply(&mut self.inbox, stage) {
                Ok(Some(reply)) => match side.answer(&reply, stage, serial, sent) {
                    Answer::Unrelated => continue,
                    a => return Ok(a),
                },
                Ok(None) => {}
                Err(BadReply(why)) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
                }
            }
            if self.inbox.len() > MAX_REPLY {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("no whole answer in {} bytes", self.inbox.len()),
                ));
            }
            if self.stream.read_buf(&mut self.inbox).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

async fn device(
    plan: &Plan,
    index: usize,
    generate_until: Instant,
    totals: Arc<Mutex<Totals>>,
    stop: CancellationToken,
) {
    let (o, side) = (&plan.opts, plan.side);
    let number = o.imei_base + index as u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(number);
    let mut route = Route::new(&mut rng);
    let mut buffer: std::collections::VecDeque<Fix> = std::collections::VecDeque::new();
    let per_packet = o.records.clamp(1, side.max_records());
    let period = Duration::from_secs_f64(1.0 / o.rate.max(0.001));
    let ack_timeout = Duration::from_secs_f64(o.ack_timeout.max(0.01));
    // Spread the devices' first packets over one period.
    let phase = period.mul_f64(rng.gen_range(0.0..1.0));
    let mut next_send = tokio::time::Instant::now() + phase;
    let mut conn: Option<Conn> = None;
    let mut pending_resend = false;
    let (mut generated, mut acked, mut resent, mut reconnects) = (0u64, 0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    let mut acked_records = Vec::new();
    let drain_until = generate_until + Duration::from_secs_f64(o.drain);
    let mut retry_at = Instant::now();
    loop {
        let generating = Instant::now() < generate_until && !stop.is_cancelled();
        if !generating && (buffer.is_empty() || Instant::now() >= drain_until) {
            break;
        }
        if stop.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next_send) => {}
        }
        next_send += period;
        if generating {
            for _ in 0..per_packet {
                let fix = route.next(&mut rng, side.time_step_ms());
                buffer.push_back(side.quantize(fix));
                generated += 1;
            }
        }
        if conn.is_none() {
            if Instant::now() < retry_at {
                continue;
            }
            match connect(plan.target, side, number, ack_timeout).await {
                Some(c) => conn = Some(c),
                None => {
                    reconnects += 1;
                    retry_at = Instant::now() + RECONNECT_PAUSE.min(ack_timeout);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let n = buffer.len().min(per_packet);
        let fixes: Vec<Fix> = buffer.iter().take(n).copied().collect();
        let serial = c.next_serial();
        let packet = side.packet(number, &fixes, serial);
        if pending_resend {
            resent += 1;
        }
        let sent_at = Instant::now();
        let answer = c.ask(side, &packet, Stage::Packet, serial, n);
        match tokio::time::timeout(ack_timeout, answer).await {
            Ok(Ok(Answer::Accepted)) => {
                latencies.push(sent_at.elapsed().as_micros() as u64);
                if plan.keep_acked {
                    acked_records.extend(
                        buffer
                            .iter()
                            .take(n)
                            .map(|r| (number, r.fix_ms, r.lat, r.lon)),
                    );
                }
                buffer.drain(..n);
                acked += n as u64;
                pending_resend = false;
            }
            Ok(Ok(_)) => {
                // Refused ("send again"): keep the records.
                pending_resend = true;
            }
            _ => {
                conn = None;
                reconnects += 1;
                pending_resend = true;
            }
        }
    }
    let mut t = totals.lock();
    t.generated += generated;
    t.acked += acked;
    t.unacked += buffer.len() as u64;
    t.resent += resent;
    t.reconnects += reconnects;
    t.latency_us.extend(latencies);
    t.acked_records.extend(acked_records);
}

/// Connects and logs in where the protocol has a login; `None` when the
/// server is away or refuses.
async fn connect(
    target: SocketAddr,
    side: &dyn DeviceSide,
    number: u64,
    timeout: Duration,
) -> Option<Conn> {
    let go = async {
        let stream = TcpStream::connect(target).await.ok()?;
        let _ = stream.set_nodelay(true);
        let mut c = Conn {
            stream,
            inbox: BytesMut::with_capacity(256),
            serial: 0,
        };
        let serial = c.next_serial();
        if let Some(login) = side.login(number, serial) {
            let a = c.ask(side, &login, Stage::Login, serial, 0).await.ok()?;
            if a != Answer::Accepted {
                return None;
            }
        }
        Some(c)
    };
    tokio::time::timeout(timeout, go).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::{replay, DecodeContext, Transport};

    #[test]
    fn teltonika_packets_decode_to_the_records_they_carry() {
        let recs = [
            (1_764_158_400_000, 52.5, 13.4, 60, 90),
            (1_764_158_401_000, 52.5001, 13.4002, 61, 91),
        ];
        let login = login_packet(350_000_000_000_007);
        let packet = codec8_packet(&recs);
        let p = crate::protocol::find("teltonika").unwrap();
        let (steps, err) = replay(
            p,
            Transport::Tcp,
            [login.as_slice(), packet.as_slice()],
            &DecodeContext::now(),
        );
        assert!(err.is_none());
        assert_eq!(steps[0].reply.as_deref(), Some(&[1u8][..]));
        assert_eq!(steps[1].reply.as_deref(), Some(&[0u8, 0, 0, 2][..]));
        let d = steps[1].outcome.as_ref().unwrap();
        assert_eq!(d.positions.len(), 2);
        assert_eq!(d.positions[0].device_id.as_str(), "350000000000007");
        assert_eq!(
            d.positions[1].fix_time.timestamp_millis(),
            1_764_158_401_000
        );
        assert!((d.positions[1].lat - 52.5001).abs() < 1e-7);
        assert_eq!(d.positions[1].speed_kmh, 61.0);
    }

    /// Every device side against its protocol's server side: the login is
    /// accepted, a full packet decodes to exactly the quantized fixes (so a
    /// simulator's record of what was acked equals what is stored), and
    /// the server's accept and refuse replies read as such.
    #[test]
    fn every_device_side_speaks_what_its_server_side_reads() {
        let sides = simulated();
        assert_eq!(
            sides,
            [
                "teltonika",
                "gt06",
                "jt808",
                "meitrack",
                "ruptela",
                "wialon"
            ]
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for name in sides {
            let p = crate::protocol::find(name).unwrap();
            let side = p.device_side().unwrap();
            let n = 350_000_000_000_042;
            let mut route = Route::new(&mut rng);
            let mut fixes: Vec<Fix> = (0..side.max_records())
                .map(|_| side.quantize(route.next(&mut rng, side.time_step_ms())))
                .collect();
            // The southern and western hemispheres too.
            fixes[0].lat = -fixes[0].lat;
            fixes[0].lon = -fixes[0].lon;
            let login = side.login(n, 1);
            let packet = side.packet(n, &fixes, 2);
            let mut chunks: Vec<&[u8]> = login.iter().map(Vec::as_slice).collect();
            chunks.push(&packet);
            let (steps, err) = replay(p, Transport::Tcp, chunks, &DecodeContext::now());
            assert!(err.is_none(), "{name}: {err:?}");
            assert_eq!(steps.len(), 1 + usize::from(login.is_some()), "{name}");
            if login.is_some() {
                let reply = steps[0].reply.clone().unwrap();
                let mut buf = BytesMut::from(&reply[..]);
                let r = side.next_reply(&mut buf, Stage::Login).unwrap().unwrap();
                assert!(buf.is_empty(), "{name}: one reply");
                assert_eq!(
                    side.answer(&r, Stage::Login, 1, 0),
                    Answer::Accepted,
                    "{name}"
                );
            }
            let step = steps.last().unwrap();
            let d = step.outcome.as_ref().unwrap();
            assert_eq!(d.positions.len(), fixes.len(), "{name}");
            for (pos, f) in d.positions.iter().zip(&fixes) {
                assert_eq!(pos.device_id.as_str(), side.device_id(n), "{name}");
                assert_eq!(pos.fix_time.timestamp_millis(), f.fix_ms, "{name}");
                assert_eq!(pos.lat, f.lat, "{name}");
                assert_eq!(pos.lon, f.lon, "{name}");
                assert_eq!(pos.speed_kmh, f64::from(f.speed_kmh), "{name}");
            }
            // The server's accept reply, then its refusal where it has one,
            // arriving in one read.
            let mut wire = BytesMut::from(&step.reply.clone().unwrap()[..]);
            let refuse = d.reply.refuse.clone();
            if let Some(r) = &refuse {
                wire.extend_from_slice(r);
            }
            let r = side.next_reply(&mut wire, Stage::Packet).unwrap().unwrap();
            let sent = fixes.len();
            assert_eq!(
                side.answer(&r, Stage::Packet, 2, sent),
                Answer::Accepted,
                "{name}"
            );
            if matches!(name, "gt06" | "jt808") {
                // These answer a message by its serial.
                let a = side.answer(&r, Stage::Packet, 3, sent);
                assert_eq!(a, Answer::Unrelated, "{name}: another serial");
            }
            if refuse.is_some() {
                let r = side.next_reply(&mut wire, Stage::Packet).unwrap().unwrap();
                assert_eq!(
                    side.answer(&r, Stage::Packet, 2, sent),
                    Answer::Refused,
                    "{name}"
                );
            }
            assert!(side.next_reply(&mut wire, Stage::Packet).unwrap().is_none());
        }
    }

    #[test]
    fn plans_refuse_what_a_protocol_cannot_carry() {
        let opts = |protocol: &str, records| SimOptions {
            protocol: protocol.into(),
            target: None,
            devices: 1,
            rate: 1.0,
            records,
            duration: 1.0,
            imei_base: 350_000_000_000_000,
            drain: 60.0,
            ack_timeout: 1.0,
            out: None,
        };
        let e = |o| Plan::new(o).err().unwrap().to_string();
        assert_eq!(
            e(opts("gt06", 2)),
            "gt06 carries at most 1 record(s) per packet, not 2"
        );
        assert_eq!(e(opts("nope", 1)), "unknown protocol \"nope\"");
        assert!(e(opts("h02", 1))
            .starts_with("no device simulator for h02 yet (there is one for: teltonika, gt06"));
        assert!(e(opts("teltonika", 0)).starts_with("need --devices > 0"));
        let mut o = opts("teltonika", 1);
        o.ack_timeout = f64::INFINITY;
        assert!(e(o).starts_with("--duration and --drain must be"));
        let mut o = opts("teltonika", 1);
        o.drain = -1.0;
        assert!(e(o).starts_with("--duration and --drain must be"));
        let mut o = opts("teltonika", 1);
        o.rate = f64::NAN;
        assert!(e(o).starts_with("--rate must be"));
        let mut o = opts("gt06", 1);
        o.imei_base = 999_999_999_999_999;
        o.devices = 2;
        assert!(e(o).contains("15 digits"));
        let mut o = opts("jt808", 5);
        o.rate = 2.0;
        assert_eq!(Plan::new(o).unwrap().clock_ahead(), Some(10.0));
        assert_eq!(
            Plan::new(opts("teltonika", 255)).unwrap().clock_ahead(),
            None
        );
        let plan = Plan::new(opts("jt808", 32)).unwrap();
        assert_eq!(plan.target(), "127.0.0.1:5015".parse().unwrap());
    }

    /// A server that answers with an endless unterminated message: the
    /// device's buffer stays bounded, it drops the connection and keeps
    /// its records.
    #[tokio::test]
    async fn an_endless_answer_is_dropped_not_buffered() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut served = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                served += 1;
                tokio::spawn(async move {
                    let mut junk = vec![0u8; 64 * 1024];
                    junk[0] = 0x7e;
                    let _ = s.write_all(&junk).await;
                    junk[0] = 0;
                    while s.write_all(&junk).await.is_ok() {}
                });
                if served == 3 {
                    break;
                }
            }
            served
        });
        let plan = Plan::new(SimOptions {
            protocol: "jt808".into(),
            target: Some(addr),
            devices: 1,
            rate: 20.0,
            records: 2,
            duration: 0.3,
            imei_base: 350_000_000_000_000,
            drain: 60.0,
            ack_timeout: 2.0,
            out: None,
        })
        .unwrap();
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            s2.cancel();
        });
        let report = run(plan, stop).await;
        assert_eq!(report.acked, 0);
        assert!(report.generated >= 2);
        assert_eq!(report.unacked, report.generated);
        assert!(report.reconnects >= 2, "{}", report.summary());
        server.abort();
    }

    /// A Teltonika server's part for one device: every login and every
    /// record accepted, until the device hangs up.
    async fn accept_everything(mut s: TcpStream) -> std::io::Result<()> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut imei = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut imei).await?;
        s.write_all(&[1]).await?;
        loop {
            let mut head = [0u8; 8];
            s.read_exact(&mut head).await?;
            let n = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            let mut body = vec![0u8; n as usize + 4];
            s.read_exact(&mut body).await?;
            s.write_all(&u32::from(body[1]).to_be_bytes()).await?;
        }
    }

    /// The acked records are listed when asked for (the crash test checks
    /// them) or written with `--out`, and not gathered otherwise.
    #[tokio::test]
    async fn acked_records_are_kept_only_when_asked_for() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(accept_everything(s));
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("acked.tsv");
        let opts = |out: Option<PathBuf>| SimOptions {
            protocol: "teltonika".into(),
            target: Some(addr),
            devices: 3,
            rate: 20.0,
            records: 4,
            duration: 0.5,
            imei_base: 350_000_000_000_000,
            drain: 5.0,
            ack_timeout: 5.0,
            out,
        };
        let plain = run(Plan::new(opts(None)).unwrap(), CancellationToken::new()).await;
        assert!(plain.acked >= 3 * 4, "{}", plain.summary());
        assert_eq!(plain.unacked, 0);
        assert!(plain.acked_records.is_empty());
        let asked = Plan::new(opts(None)).unwrap().keeping_acked();
        let asked = run(asked, CancellationToken::new()).await;
        assert_eq!(asked.acked_records.len() as u64, asked.acked);
        let written = Plan::new(opts(Some(file.clone()))).unwrap();
        let written = run(written, CancellationToken::new()).await;
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert_eq!(
            lines as u64,
            written.acked + 1,
            "a header, a line per record"
        );
        server.abort();
    }

    /// A gateway that is down: the devices keep generating for the
    /// duration, retry about once a second each, and give up after the
    /// drain with everything reported unacked.
    #[tokio::test]
    async fn devices_give_up_on_a_gateway_that_stays_away() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let plan = Plan::new(SimOptions {
            protocol: "teltonika".into(),
            target: Some(closed),
            devices: 5,
            rate: 50.0,
            records: 1,
            duration: 1.0,
            imei_base: 350_000_000_000_000,
            drain: 1.0,
            ack_timeout: 5.0,
            out: None,
        })
        .unwrap();
        let started = Instant::now();
        let report = run(plan, CancellationToken::new()).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(report.acked, 0);
        assert!(report.generated >= 5 * 40, "{}", report.summary());
        assert_eq!(report.unacked, report.generated);
        // One attempt at the start and about one a second after: not one
        // per packet (50 a second each).
        assert!(
            (5..=5 * 4).contains(&report.reconnects),
            "{}",
            report.summary()
        );
    }

    proptest::proptest! {
        /// Whatever a server sends, a simulated device neither panics nor
        /// takes it for an ack it did not get.
        #[test]
        fn no_server_bytes_make_a_device_side_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            for p in crate::protocol::registry() {
                let Some(side) = p.device_side() else { continue };
                for stage in [Stage::Login, Stage::Packet] {
                    let mut buf = BytesMut::from(&bytes[..]);
                    while let Ok(Some(r)) = side.next_reply(&mut buf, stage) {
                        let _ = side.answer(&r, stage, 1, 1);
                    }
                }
            }
        }
    }
}
