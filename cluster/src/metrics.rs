//! Counters of one node's directory, for `/metrics`. Written by the directory, read by
//! anyone at any time (relaxed atomics: figures, not synchronisation).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The directory's counters.
#[derive(Debug, Default)]
pub struct DirectoryMetrics {
    pub(crate) renewals: AtomicU64,
    pub(crate) renewal_failures: AtomicU64,
    pub(crate) lease_lapses: AtomicU64,
    pub(crate) reservations_made: AtomicU64,
    pub(crate) reservations_used: AtomicU64,
    pub(crate) reservations_expired: AtomicU64,
    pub(crate) reservations_released: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) redis_up: AtomicBool,
    pub(crate) lobbies_published: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Successful renewals of this node's lease.
    pub renewals: u64,
    /// Renewals that failed (Redis down or slow); the task keeps retrying.
    pub renewal_failures: u64,
    /// Renewals that found the previous one older than the lease: the node had vanished
    /// from the directory (stall or Redis outage) and has just re-registered.
    pub lease_lapses: u64,
    /// Seat reservations (and quick-join create tickets) this node made.
    pub reservations_made: u64,
    /// Reservations redeemed on this node.
    pub reservations_used: u64,
    /// Reservations for this node's lobbies that expired unused (their seat returned).
    pub reservations_expired: u64,
    /// Redeemed reservations whose seat this node gave back at once because their
    /// player was not seated (the game refused the join).
    pub reservations_released: u64,
    /// Redis calls that failed or timed out.
    pub redis_errors: u64,
    /// Whether the last Redis call succeeded.
    pub redis_up: bool,
    /// Lobbies this node wrote at its last renewal.
    pub lobbies_published: u64,
}

impl DirectoryMetrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            renewals: get(&self.renewals),
            renewal_failures: get(&self.renewal_failures),
            lease_lapses: get(&self.lease_lapses),
            reservations_made: get(&self.reservations_made),
            reservations_used: get(&self.reservations_used),
            reservations_expired: get(&self.reservations_expired),
            reservations_released: get(&self.reservations_released),
            redis_errors: get(&self.redis_errors),
            redis_up: self.redis_up.load(Ordering::Relaxed),
            lobbies_published: get(&self.lobbies_published),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
