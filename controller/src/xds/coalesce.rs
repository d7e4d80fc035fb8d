//! Batches snapshot changes: after a change, wait for a quiet window, but never longer than a
//! hard maximum, so a burst of edits makes a handful of pushes.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Forwards one tick per batch of changes on `rx` until either side closes.
pub(crate) async fn coalesce<T>(
    mut rx: watch::Receiver<T>,
    ticks: mpsc::Sender<()>,
    quiet: Duration,
    max: Duration,
) {
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let first = Instant::now();
        loop {
            let deadline = (Instant::now() + quiet).min(first + max);
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) if Instant::now() < first + max => continue,
                Ok(Ok(())) | Err(_) => break,
                Ok(Err(_)) => return,
            }
        }
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
        // 200 edits 5 ms apart (1 s): cut every 100 ms, so about 10 ticks, not 200.
        let mut n = 0;
        for i in 0..200 {
            tx.send(i).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            if ticks.try_recv().is_ok() {
                n += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        n += usize::from(ticks.try_recv().is_ok());
        assert!((9..=12).contains(&n), "{n}");
    }
}
