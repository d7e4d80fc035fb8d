//! The clock is an input: issuance, inspection, rotation and TLS verification all read the time
//! from a [`Clock`], so tests can drive them with paused tokio time.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::UnixTime;

/// A source of wall-clock time.
pub trait Clock: Debug + Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A wall clock that advances with tokio's clock from a fixed starting point.
///
/// Under `#[tokio::test(start_paused = true)]`, `tokio::time::advance` moves this clock too, so a
/// day of certificate rotation runs in milliseconds. Outside paused tests it follows real time.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start_wall: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start_wall` now and advances with tokio's clock.
    /// Must be called inside a tokio runtime.
    pub fn starting_at(start_wall: SystemTime) -> Self {
        Self {
            start_wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.start_wall + self.start.elapsed()
    }
}

/// A clock that stands still until it is moved by hand (for tests).
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<SystemTime>);

impl ManualClock {
    /// A clock reading `t`.
    pub fn new(t: SystemTime) -> Self {
        Self(std::sync::Mutex::new(t))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adapts a [`Clock`] to rustls' time provider, so certificate validity in handshakes is
/// judged by the same clock that issued and rotated the certificates.
#[derive(Debug)]
pub(crate) struct ClockTime(pub(crate) Arc<dyn Clock>);

impl rustls::time_provider::TimeProvider for ClockTime {
    fn current_time(&self) -> Option<UnixTime> {
        self.0
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(UnixTime::since_unix_epoch)
    }
}

/// Converts a wall-clock time to the `time` crate's type used by rcgen.
pub(crate) fn to_offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// Formats a duration for people: `23h 59m`, `29d 23h`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(3 * 60 + 2)), "3m 2s");
        assert_eq!(human_duration(Duration::from_secs(86_399)), "23h 59m");
        assert_eq!(human_duration(Duration::from_secs(30 * 86_400)), "30d 0h");
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = TokioClock::starting_at(start);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), start + Duration::from_secs(3600));
    }
}
