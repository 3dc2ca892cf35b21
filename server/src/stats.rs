//! Server-wide counters: atomics only, so that the tick path never takes a lock for
//! them and a `/metrics` scrape never slows a tick. The label sets (close codes, message
//! kinds, refusal reasons) are fixed here, so that metrics stay bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Close codes counted separately (index in [`Stats::closes`]); 0 stands for "no close
/// frame" (the connection dropped or the client closed it).
pub(crate) const COUNTED_CLOSES: [u16; 15] = [
    0, 1000, 1001, 1002, 1003, 1008, 1009, 1011, 1013, 4001, 4002, 4003, 4004, 4005, 4006,
];

/// Server-wide counters: atomics, so reading them never slows a tick.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) sessions_open: AtomicU64,
    pub(crate) sessions_total: AtomicU64,
    pub(crate) snapshots_sent: AtomicU64,
    pub(crate) snapshots_skipped: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) lobby_panics: AtomicU64,
    pub(crate) kicks: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
    /// Sessions ended, by close code (see [`COUNTED_CLOSES`]; the last slot: others).
    pub(crate) closes: [AtomicU64; COUNTED_CLOSES.len() + 1],
    /// Client messages by tag (the last slot: undecodable).
    pub(crate) messages_by_kind: [AtomicU64; CLIENT_KINDS.len() + 1],
    /// TCP connections accepted.
    pub(crate) connections_total: AtomicU64,
    /// Connections refused, by reason (see [`REFUSALS`]).
    pub(crate) refused: [AtomicU64; REFUSALS.len()],
    pub(crate) ticks: AtomicU64,
    /// Ticks that took longer than the tick period, or started a period late.
    pub(crate) ticks_overrun: AtomicU64,
    /// Simulation + encode time of one lobby tick.
    pub(crate) tick_time: AtomicHistogram,
    /// Time to write one lobby tick's snapshots to its players' sockets.
    pub(crate) fanout_time: AtomicHistogram,
    /// How late ticks start against their schedule.
    pub(crate) tick_lateness: AtomicHistogram,
    pub(crate) inputs_superseded: AtomicU64,
    pub(crate) inputs_stale: AtomicU64,
    pub(crate) inputs_rate_limited: AtomicU64,
    pub(crate) admin_actions: AtomicU64,
}

/// Client message kinds by tag, as metric labels.
pub(crate) const CLIENT_KINDS: [&str; 8] = [
    "hello",
    "list_lobbies",
    "create_lobby",
    "join_lobby",
    "quick_join",
    "leave_lobby",
    "input",
    "ping",
];

/// Why connections are refused, as metric labels.
pub(crate) const REFUSALS: [&str; 5] = [
    "server_full",
    "address_full",
    "origin",
    "draining",
    "over_margin",
];

/// Index in [`Stats::refused`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    ServerFull = 0,
    AddressFull = 1,
    Origin = 2,
    Draining = 3,
    OverMargin = 4,
}

impl Stats {
    pub(crate) fn count_close(&self, code: u16) {
        let i = COUNTED_CLOSES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(COUNTED_CLOSES.len());
        self.closes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a received binary message; its first byte is its tag.
    pub(crate) fn count_in(&self, bytes: &[u8]) {
        self.bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        let kind = bytes.first().map_or(CLIENT_KINDS.len(), |&t| {
            usize::from(t).min(CLIENT_KINDS.len())
        });
        self.messages_by_kind[kind].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Bucket upper bounds of [`AtomicHistogram`], in microseconds.
pub(crate) const BUCKETS_US: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

/// A lock-free histogram of durations: one atomic per bucket.
#[derive(Debug, Default)]
pub(crate) struct AtomicHistogram {
    /// Non-cumulative counts; the last slot is everything above the largest bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl AtomicHistogram {
    /// Records one duration.
    pub(crate) fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last: +Inf), and the sum in microseconds.
    pub(crate) fn read(&self) -> (Vec<u64>, u64) {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        (cumulative, self.sum_us.load(Ordering::Relaxed))
    }

    /// An upper bound of the `q` quantile (0..=1), in microseconds: the bound of the
    /// bucket it falls in. None if nothing was recorded.
    pub(crate) fn quantile_us(&self, q: f64) -> Option<u64> {
        let (cumulative, _) = self.read();
        let count = *cumulative.last()?;
        if count == 0 {
            return None;
        }
        let rank = (q * count as f64).ceil().max(1.0) as u64;
        let i = cumulative.iter().position(|&c| c >= rank)?;
        Some(BUCKETS_US.get(i).copied().unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = AtomicHistogram::default();
        assert_eq!(h.quantile_us(0.99), None);
        for us in [5, 20, 20, 20, 300] {
            h.observe(Duration::from_micros(us));
        }
        h.observe(Duration::from_secs(1));
        let (cumulative, sum) = h.read();
        assert_eq!(cumulative[0], 1);
        assert_eq!(cumulative[1], 4);
        assert_eq!(*cumulative.last().expect("inf"), 6);
        assert_eq!(sum, 5 + 60 + 300 + 1_000_000);
        assert_eq!(h.quantile_us(0.5), Some(25));
        assert_eq!(h.quantile_us(0.8), Some(500));
        assert_eq!(h.quantile_us(1.0), Some(u64::MAX));
    }
}
