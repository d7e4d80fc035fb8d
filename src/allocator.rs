//! The process allocator: jemalloc, with its background thread returning freed pages to the
//! system on a timer (10 s decay), whichever thread freed them. The control plane replaces
//! persistent maps' nodes from several threads; glibc malloc's per-thread arenas kept that
//! freed memory, and mimalloc's pages held by idle worker threads were not returned either
//! (BENCHMARKS.md, memory).

use std::time::Duration;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background purging; a warning if the platform does not allow it.
pub(crate) fn start_background_purge() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!(
            "warning: the allocator's background purging is off ({e}): memory freed after a scale-down returns only as new work arrives"
        );
    }
}

/// What the allocator holds: bytes the program has allocated (live data) and bytes of
/// physical memory the allocator keeps (live data, its metadata and freed pages not yet
/// returned).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heap {
    pub(crate) allocated: usize,
    pub(crate) resident: usize,
}

/// The allocator's current figures, if it can say.
pub(crate) fn heap() -> Option<Heap> {
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    Some(Heap {
        allocated: tikv_jemalloc_ctl::stats::allocated::read().ok()?,
        resident: tikv_jemalloc_ctl::stats::resident::read().ok()?,
    })
}

/// Logs the allocator's figures every `period` at debug level (enable with
/// `RUST_LOG=gatehouse::allocator=debug`): tells live data from memory not yet returned.
pub(crate) async fn log_every(period: Duration) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if let Some(h) = heap() {
            tracing::debug!(
                allocated_bytes = h.allocated,
                resident_bytes = h.resident,
                "heap"
            );
        }
    }
}
