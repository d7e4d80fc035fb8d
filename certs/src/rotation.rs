//! When to renew a certificate, renewing the store's leaves, and rotating a live server
//! certificate in place.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ca::{CertificateAuthority, LeafRequest};
use crate::clock::Clock;
use crate::error::Result;
use crate::identity::Identity;
use crate::leaf::IssuedLeaf;
use crate::resolver::ReloadableCert;
use crate::store::{CaStore, StoredLeaf};

/// Renew at half of the lifetime, minus up to this fraction of the lifetime as jitter.
const JITTER_FRACTION: f64 = 0.1;

/// When a certificate is due for renewal: at half of its lifetime, brought forward by a jitter
/// of up to a tenth of the lifetime so that many proxies do not renew at the same instant.
///
/// The jitter is derived from `seed` (the certificate's bytes), so it is stable for a given
/// certificate: asking twice gives the same answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationSchedule {
    not_before: SystemTime,
    not_after: SystemTime,
    renew_at: SystemTime,
}

impl RotationSchedule {
    /// The schedule of a certificate valid from `not_before` to `not_after`.
    pub fn new(not_before: SystemTime, not_after: SystemTime, seed: &[u8]) -> Self {
        let lifetime = not_after.duration_since(not_before).unwrap_or_default();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed);
        let mut first = [0u8; 8];
        first.copy_from_slice(digest.as_ref().get(..8).unwrap_or(&[0; 8]));
        let unit = u64::from_be_bytes(first) as f64 / u64::MAX as f64;
        let jitter = lifetime.mul_f64(JITTER_FRACTION * unit);
        Self {
            not_before,
            not_after,
            renew_at: not_before + lifetime / 2 - jitter,
        }
    }

    /// When renewal is due.
    pub fn renew_at(&self) -> SystemTime {
        self.renew_at
    }

    /// Whether renewal is due at `now`.
    pub fn is_due(&self, now: SystemTime) -> bool {
        now >= self.renew_at
    }

    /// How long from `now` until renewal is due (zero if it is due).
    pub fn time_until_due(&self, now: SystemTime) -> Duration {
        self.renew_at.duration_since(now).unwrap_or_default()
    }
}

/// What `rotate` did with one leaf.
#[derive(Debug)]
pub enum RotationOutcome {
    /// The leaf was past its renewal time and was replaced.
    Renewed {
        /// Whose certificate.
        identity: Identity,
        /// The replaced certificate's expiry.
        old_not_after: SystemTime,
        /// The new certificate's expiry.
        new_not_after: SystemTime,
        /// The lifetime was cut short because the CA expires first.
        shortened: bool,
    },
    /// The leaf is not due yet.
    Kept {
        /// Whose certificate.
        identity: Identity,
        /// When it will be due.
        renew_at: SystemTime,
        /// Its expiry.
        not_after: SystemTime,
    },
    /// Renewal was due but failed; the old certificate is still in place.
    Failed {
        /// Whose certificate.
        identity: Identity,
        /// Why.
        error: crate::CertsError,
    },
}

/// Renews every leaf of the store that is past its renewal time, keeping its SANs and
/// lifetime (cut short if the CA expires first).
pub fn rotate_store(store: &CaStore, now: SystemTime) -> Result<Vec<RotationOutcome>> {
    let ca = store.load(now)?;
    let anchors = store.trust_anchors()?;
    let mut outcomes = Vec::new();
    for leaf in store.leaves()? {
        let schedule = RotationSchedule::new(leaf.not_before, leaf.not_after, &leaf.certificate);
        if !schedule.is_due(now) {
            outcomes.push(RotationOutcome::Kept {
                identity: leaf.identity,
                renew_at: schedule.renew_at(),
                not_after: leaf.not_after,
            });
            continue;
        }
        outcomes.push(match renew(&ca, &leaf, now) {
            Ok((issued, shortened)) => match store.write_leaf(&issued, &anchors) {
                Ok(_) => RotationOutcome::Renewed {
                    identity: leaf.identity,
                    old_not_after: leaf.not_after,
                    new_not_after: issued.not_after(),
                    shortened,
                },
                Err(error) => RotationOutcome::Failed {
                    identity: leaf.identity,
                    error,
                },
            },
            Err(error) => RotationOutcome::Failed {
                identity: leaf.identity,
                error,
            },
        });
    }
    Ok(outcomes)
}

fn renew(
    ca: &CertificateAuthority,
    leaf: &StoredLeaf,
    now: SystemTime,
) -> Result<(IssuedLeaf, bool)> {
    let wanted = leaf.requested_validity().min(ca.max_leaf_validity());
    let ca_left = ca.not_after().duration_since(now).unwrap_or_default();
    let validity = wanted.min(ca_left);
    let req = LeafRequest {
        identity: leaf.identity.clone(),
        dns_names: leaf.dns_names.clone(),
        ip_addresses: leaf.ip_addresses.clone(),
        validity,
    };
    Ok((ca.issue(&req, now)?, validity < wanted))
}

/// Keeps a live certificate fresh: sleeps until the current certificate is due, issues a new
/// one and swaps it into a [`ReloadableCert`], so new handshakes get it and open connections
/// carry on. The clock decides when; tokio's timer does the waiting, so paused-time tests
/// drive it.
pub struct Rotator<F> {
    clock: Arc<dyn Clock>,
    slot: Arc<ReloadableCert>,
    issue: F,
    retry: Duration,
}

impl<F> Rotator<F>
where
    F: FnMut(SystemTime) -> Result<IssuedLeaf> + Send,
{
    /// A rotator that renews the certificate in `slot` with `issue(now)`.
    pub fn new(clock: Arc<dyn Clock>, slot: Arc<ReloadableCert>, issue: F) -> Self {
        Self {
            clock,
            slot,
            issue,
            retry: Duration::from_secs(30),
        }
    }

    /// Runs until `shutdown` completes. A failed renewal is logged and retried after 30 s;
    /// the current certificate stays in place meanwhile.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let (nb, na, seed) = self.slot.validity();
            let wait = RotationSchedule::new(nb, na, &seed).time_until_due(self.clock.now());
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
            let now = self.clock.now();
            match (self.issue)(now).and_then(|leaf| self.slot.swap(&leaf)) {
                Ok(()) => {
                    let (_, not_after, _) = self.slot.validity();
                    tracing::info!(not_after = %crate::inspect::rfc3339(not_after), "certificate rotated");
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?self.retry, "certificate rotation failed");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(self.retry) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_between_forty_and_fifty_percent() {
        let nb = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let na = nb + Duration::from_secs(100_000);
        let mut seen = std::collections::HashSet::new();
        for seed in 0u32..200 {
            let s = RotationSchedule::new(nb, na, &seed.to_be_bytes());
            let at = s.renew_at().duration_since(nb).unwrap().as_secs();
            assert!((40_000..=50_000).contains(&at), "{at}");
            seen.insert(at / 1000);
            assert_eq!(
                s,
                RotationSchedule::new(nb, na, &seed.to_be_bytes()),
                "stable per seed"
            );
            assert!(!s.is_due(nb + Duration::from_secs(39_999)));
            assert!(s.is_due(nb + Duration::from_secs(50_000)));
        }
        assert!(seen.len() > 5, "jitter spreads renewals: {seen:?}");
    }
}
