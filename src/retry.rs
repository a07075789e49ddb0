//! One retry policy for every external call: exponential backoff with
//! jitter, a bounded number of attempts (backon). HTTP clients (Argo CD,
//! Flux, the registry), git transport, and the compare-and-swap loops of the
//! push and the ledger all build their delays here, so "bounded and backs
//! off" holds in one place.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How often and how patiently to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Policy {
    /// The backon builder for this policy: `attempts - 1` retries.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
    }

    /// The delays between attempts, for loops that do more than call again
    /// (a compare-and-swap that refetches and rebuilds before retrying).
    /// `None` once the attempts are spent.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        self.backoff().build()
    }
}

/// Git transport (fetch, push) against the infra remote.
pub const GIT_TRANSPORT: Policy = Policy {
    attempts: 3,
    min_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(8),
};

/// A compare-and-swap push (the revert, the ledger notes) that found the
/// remote moved: refetch, rebuild, try again.
pub const CAS_PUSH: Policy = Policy {
    attempts: 5,
    min_delay: Duration::from_millis(300),
    max_delay: Duration::from_secs(5),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_in_number_and_size() {
        for policy in [GIT_TRANSPORT, CAS_PUSH] {
            let delays: Vec<Duration> = policy.delays().collect();
            assert_eq!(delays.len() as u32, policy.attempts - 1);
            // Jitter adds up to one more delay on top of the capped one.
            assert!(
                delays.iter().all(|d| *d <= policy.max_delay * 2),
                "{delays:?}"
            );
        }
    }
}
