//! Batches snapshot changes: after a change, wait for a quiet window, but never longer than a
//! maximum, so a burst of edits makes a handful of pushes. While changes keep coming (a batch
//! was cut at the maximum), the next batch may last four times as long, up to 8 × the maximum;
//! each batch that ends in quiet halves it again, down to the maximum. A steady flood then
//! costs a push every 8 × maximum at most (a short pause in it does not start over), a burst of
//! one to two seconds three or four pushes, and an isolated change still waits only the quiet
//! window.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How many times the maximum a batch may grow to while changes keep coming.
const STRETCH: u32 = 8;
/// How much longer the next batch may be when one was cut at its maximum.
const GROWTH: u32 = 4;

/// Forwards one tick per batch of changes on `rx` until either side closes.
pub(crate) async fn coalesce<T>(
    mut rx: watch::Receiver<T>,
    ticks: mpsc::Sender<()>,
    quiet: Duration,
    max: Duration,
) {
    let mut limit = max;
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let first = Instant::now();
        let cut = loop {
            let deadline = (Instant::now() + quiet).min(first + limit);
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) if Instant::now() < first + limit => continue,
                Ok(Ok(())) => break true,
                Err(_) => break Instant::now() >= first + limit,
                Ok(Err(_)) => return,
            }
        };
        limit = if cut {
            (limit * GROWTH).min(max * STRETCH)
        } else {
            (limit / 2).max(max)
        };
        // A full channel already holds a pending tick: that one covers this batch too.
        if let Err(mpsc::error::TrySendError::Closed(())) = ticks.try_send(()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_tick_and_a_long_burst_is_cut_at_the_maximum() {
        let (tx, rx) = watch::channel(0);
        let (ticks_tx, mut ticks) = mpsc::channel(1);
        tokio::spawn(coalesce(
            rx,
            ticks_tx,
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
        // 20 edits 2 ms apart: one tick, 10 ms after the last.
        for i in 0..20 {
            tx.send(i).unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(ticks.try_recv().is_ok());
        assert!(ticks.try_recv().is_err());
        // 200 edits 5 ms apart (1 s): cut at 100 ms, then after 400 more, then once quiet:
        // 3 ticks, not 200 (nor 10).
        let n = edits(&tx, &mut ticks, 200).await;
        assert_eq!(n, 3);
        // The burst's last batch (800 ms) ended in quiet, and each batch that does halves the
        // maximum (400 → 200 → 100 ms): 30 edits
        // 5 ms apart (150 ms) are one batch twice, then cut once at 100 ms.
        assert_eq!(edits(&tx, &mut ticks, 30).await, 1);
        assert_eq!(edits(&tx, &mut ticks, 30).await, 1);
        assert_eq!(edits(&tx, &mut ticks, 30).await, 2);
        // That cut stretched the maximum to 400 ms and the quiet end halved it to 200. 400
        // edits 5 ms apart (2 s): cut at 200, 1,000 and 1,800 ms (the stretch stops at 800 ms),
        // then once quiet.
        assert_eq!(edits(&tx, &mut ticks, 400).await, 4);
    }

    /// `count` edits 5 ms apart, then 20 ms of quiet: the number of ticks.
    async fn edits(tx: &watch::Sender<i32>, ticks: &mut mpsc::Receiver<()>, count: i32) -> usize {
        let mut n = 0;
        for i in 0..count {
            tx.send(i).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            if ticks.try_recv().is_ok() {
                n += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        n + usize::from(ticks.try_recv().is_ok())
    }
}
