//! `trackgate simulate`: virtual Teltonika devices, each on its own TCP
//! connection, driving plausible routes and honouring acks exactly like a
//! real FMB: a record leaves the device's buffer only when the server's
//! count acknowledges it; on `00000000`, a timeout or a dropped connection
//! it stays and is sent again. The load tool for benchmarks and the crash
//! test, and a demo source.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// CRC-16/IBM (ARC), Teltonika's packet checksum.
const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_ARC);

/// What to simulate.
#[derive(Debug, Clone, clap::Args)]
pub struct SimOptions {
    /// The gateway's Teltonika TCP address.
    #[arg(long, default_value = "127.0.0.1:5027")]
    pub target: SocketAddr,
    /// Number of devices (one connection each).
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Packets per second per device.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Records per packet (1..=255).
    #[arg(long, default_value_t = 1)]
    pub records: usize,
    /// How long to generate records, in seconds; then the devices send
    /// what they still hold and stop.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// First IMEI; device i gets this plus i.
    #[arg(long, default_value_t = 350_000_000_000_000)]
    pub imei_base: u64,
    /// Seconds a device waits for an ack before it reconnects and resends.
    #[arg(long, default_value_t = 5.0)]
    pub ack_timeout: f64,
    /// Write every acknowledged record (imei, fix time ms, lat, lon) to this TSV file.
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
    /// Every acked record: (imei, fix ms, lat, lon).
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

/// One record a device holds.
#[derive(Debug, Clone, Copy)]
struct Record {
    fix_ms: i64,
    lat: f64,
    lon: f64,
    speed_kmh: u16,
    course: u16,
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

    fn next(&mut self, rng: &mut impl Rng) -> Record {
        let now = chrono::Utc::now().timestamp_millis();
        // Fix times strictly increase per device, so every record is distinct.
        let fix_ms = now.max(self.last_ms + 1);
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
        Record {
            fix_ms,
            lat: (self.lat * 1e7).round() / 1e7,
            lon: (self.lon * 1e7).round() / 1e7,
            speed_kmh: self.speed_kmh as u16,
            course: self.course as u16,
        }
    }
}

/// A codec 8 TCP AVL packet carrying `records`.
pub fn codec8_packet(records: &[(i64, f64, f64, u16, u16)]) -> Vec<u8> {
    let n = u8::try_from(records.len()).unwrap_or(u8::MAX);
    let mut data = vec![0x08, n];
    for &(ts, lat, lon, speed, course) in records.iter().take(usize::from(n)) {
        data.extend_from_slice(&(ts as u64).to_be_bytes());
        data.push(0); // priority
        data.extend_from_slice(&((lon * 1e7).round() as i32).to_be_bytes());
        data.extend_from_slice(&((lat * 1e7).round() as i32).to_be_bytes());
        data.extend_from_slice(&120i16.to_be_bytes()); // altitude
        data.extend_from_slice(&course.to_be_bytes());
        data.push(9); // satellites
        data.extend_from_slice(&speed.to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // event id, IO count, no IO
    }
    data.push(n);
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let crc = u32::from(CRC.checksum(&data));
    out.extend_from_slice(&data);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The IMEI login packet.
pub fn login_packet(imei: u64) -> Vec<u8> {
    let s = format!("{imei:015}");
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
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

/// Runs the simulation until `duration` has passed (then drains) or `stop`.
pub async fn run(opts: SimOptions, stop: CancellationToken) -> SimReport {
    let totals = Arc::new(Mutex::new(Totals::default()));
    let started = Instant::now();
    let generate_until = started + Duration::from_secs_f64(opts.duration.max(0.0));
    let mut tasks = Vec::with_capacity(opts.devices);
    for i in 0..opts.devices {
        let o = opts.clone();
        let t = Arc::clone(&totals);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            device(o, i, generate_until, t, stop).await;
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
    if let Some(path) = &opts.out {
        if let Err(e) = write_records(path, &report.acked_records) {
            tracing::error!(path = %path.display(), error = %e, "cannot write acked records");
        }
    }
    report
}

fn write_records(path: &std::path::Path, records: &[(u64, i64, f64, f64)]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "imei\tfix_ms\tlat\tlon")?;
    for (imei, ts, lat, lon) in records {
        writeln!(f, "{imei:015}\t{ts}\t{lat}\t{lon}")?;
    }
    f.flush()
}

async fn device(
    o: SimOptions,
    index: usize,
    generate_until: Instant,
    totals: Arc<Mutex<Totals>>,
    stop: CancellationToken,
) {
    let imei = o.imei_base + index as u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(imei);
    let mut route = Route::new(&mut rng);
    let mut buffer: std::collections::VecDeque<Record> = std::collections::VecDeque::new();
    let per_packet = o.records.clamp(1, 255);
    let period = Duration::from_secs_f64(1.0 / o.rate.max(0.001));
    let ack_timeout = Duration::from_secs_f64(o.ack_timeout.max(0.01));
    // Spread the devices' first packets over one period.
    let phase = period.mul_f64(rng.gen_range(0.0..1.0));
    let mut next_send = tokio::time::Instant::now() + phase;
    let mut conn: Option<TcpStream> = None;
    let mut pending_resend = false;
    let (mut generated, mut acked, mut resent, mut reconnects) = (0u64, 0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    let mut acked_records = Vec::new();
    loop {
        let generating = Instant::now() < generate_until && !stop.is_cancelled();
        if !generating && buffer.is_empty() {
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
                buffer.push_back(route.next(&mut rng));
                generated += 1;
            }
        }
        if conn.is_none() {
            match connect(o.target, imei, ack_timeout).await {
                Some(c) => conn = Some(c),
                None => {
                    reconnects += 1;
                    continue;
                }
            }
        }
        let Some(stream) = conn.as_mut() else {
            continue;
        };
        let n = buffer.len().min(per_packet);
        let recs: Vec<(i64, f64, f64, u16, u16)> = buffer
            .iter()
            .take(n)
            .map(|r| (r.fix_ms, r.lat, r.lon, r.speed_kmh, r.course))
            .collect();
        let packet = codec8_packet(&recs);
        if pending_resend {
            resent += 1;
        }
        let sent_at = Instant::now();
        let mut ack = [0u8; 4];
        let ok = async {
            stream.write_all(&packet).await?;
            stream.read_exact(&mut ack).await?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(ack_timeout, ok).await {
            Ok(Ok(())) if u32::from_be_bytes(ack) as usize == n => {
                latencies.push(sent_at.elapsed().as_micros() as u64);
                for r in buffer.drain(..n) {
                    acked_records.push((imei, r.fix_ms, r.lat, r.lon));
                }
                acked += n as u64;
                pending_resend = false;
            }
            Ok(Ok(())) => {
                // A zero (or wrong) count: keep the records, send again.
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

/// Connects and logs in; `None` when the server is away or refuses.
async fn connect(target: SocketAddr, imei: u64, timeout: Duration) -> Option<TcpStream> {
    let go = async {
        let mut s = TcpStream::connect(target).await.ok()?;
        let _ = s.set_nodelay(true);
        s.write_all(&login_packet(imei)).await.ok()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.ok()?;
        (b[0] == 1).then_some(s)
    };
    tokio::time::timeout(timeout, go).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::{replay, DecodeContext, Transport};

    #[test]
    fn packets_decode_to_the_records_they_carry() {
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
}
