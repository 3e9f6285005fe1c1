//! Running a commit loop on a thread of its own.
//!
//! A group-commit writer spends its life waiting on a commit and then
//! releasing the waiters. As a tokio task it queued behind every connection
//! task on the two workers each time its commit finished, and those idle
//! gaps between commits were what requests waited on (logged reads at 30k/s:
//! the writer was busy 80% of the time in ~0.5 ms commits). On its own
//! thread, driven by the runtime's handle, it is woken by the commit itself.
//! The thread asks for the kernel's shortest time slice, so that on two busy
//! cores it runs when woken rather than after the running thread's slice.

use std::future::Future;

/// Runs `fut` to completion on a new thread named `name` (with a short time
/// slice, see [`short_slice`]), inside the current
/// runtime's context (its channels and blocking pool). Must be called from
/// within a runtime. `fut` should not use tokio timers: the thread may
/// outlive the runtime, and a timer polled after its shutdown panics.
pub fn spawn<F>(name: &str, fut: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            short_slice();
            handle.block_on(fut)
        })
        .map(drop)
}

/// Lowers the calling thread's CPU priority (nice +10; on Linux a
/// thread's own), for deferred work: the history's and the access log's
/// compactors. When the cores are busy, the connections, reads and commits
/// that devices and partners wait on go first (history ack p99 at 50k
/// records/s: 17.4 against 20.7 ms, means of nine alternated runs; the
/// access log's wait per read at 30k reads/s: p99 2.3–3.2 against 3.5–4.9
/// ms, three alternated pairs). Each caller bounds how far its work may be
/// put off (the history's journal bound, the access log's `MAX_SEALED`).
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // Relative to the process's own nice value, which may be set already.
        let lowered =
            getpriority_process(None).and_then(|n| setpriority_process(None, (n + NICE).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "cannot lower a compactor's priority");
        }
    }
}

/// How much [`lower_priority`] raises a thread's nice value.
const NICE: i32 = 10;

/// Asks the scheduler for a short time slice for the calling thread
/// (Linux 6.12+, EEVDF: `sched_setattr` with `sched_runtime` on a normal
/// thread, no privilege needed). A commit loop runs for microseconds at a
/// time and is woken by every queued request and by its own fsync; with a
/// short slice its deadline comes first, so it runs on waking instead of
/// waiting for the busy thread's slice to end (the access log's wait per
/// read at 30k reads/s: p99 2.65–2.87 ms against 2.86–4.15 ms). It does not
/// give the thread more CPU than its nice value does. Older kernels ignore
/// or refuse it, which only costs that latency.
fn short_slice() {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        let nice = rustix::process::getpriority_process(None).unwrap_or(0);
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: 0, // SCHED_OTHER
            flags: 0,
            nice,
            priority: 0,
            runtime: SLICE_NS,
            deadline: 0,
            period: 0,
        };
        // SAFETY: a valid, fully initialised sched_attr of the size it
        // declares (SCHED_ATTR_SIZE_VER0), for the calling thread (pid 0).
        #[allow(unsafe_code)]
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "no short time slice");
        }
    }
}

/// The slice [`short_slice`] asks for: the kernel's shortest, 0.1 ms.
const SLICE_NS: u64 = 100_000;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The slice the scheduler reports for the calling thread, in ns.
    fn slice() -> Option<u64> {
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
        line.rsplit(' ').next()?.trim().parse().ok()
    }

    /// Custom slices came with Linux 6.12; this machine (and CI) runs a
    /// newer kernel, where the thread must get the one it asked for.
    #[test]
    fn a_dedicated_thread_gets_the_short_slice() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        let got = std::thread::spawn(|| {
            let before = slice();
            short_slice();
            (before, slice())
        })
        .join()
        .unwrap();
        if (major, minor) >= (6, 12) {
            assert_eq!(
                got.1,
                Some(SLICE_NS),
                "kernel {release}, before {:?}",
                got.0
            );
            assert_ne!(got.0, got.1, "the default slice is longer");
        }
        // The main test thread keeps its default.
        assert_ne!(slice(), Some(SLICE_NS));
    }
}
