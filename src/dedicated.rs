//! Running a commit loop on a thread of its own.
//!
//! A group-commit writer spends its life waiting on a commit and then
//! releasing the waiters. As a tokio task it queued behind every connection
//! task on the two workers each time its commit finished, and those idle
//! gaps between commits were what requests waited on (logged reads at 30k/s:
//! the writer was busy 80% of the time in ~0.5 ms commits). On its own
//! thread, driven by the runtime's handle, it is woken by the commit itself.

use std::future::Future;

/// Runs `fut` to completion on a new thread named `name`, inside the current
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
        .spawn(move || handle.block_on(fut))
        .map(drop)
}
