//! Server-wide counters: atomics only, so that the tick path never takes a lock for
//! them and a `/metrics` scrape never slows a tick. The label sets (close codes, message
//! kinds, refusal reasons) are fixed here, so that metrics stay bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ticksync_protocol::{ClientMessage, close};

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
    /// Sessions ended, by close code: slot 0 for "no close frame" (the connection
    /// dropped or the client closed it), then one per documented code
    /// ([`close::ALL`]), the last for any other.
    pub(crate) closes: [AtomicU64; close::ALL.len() + 2],
    /// Client messages by kind ([`message_kinds`]): the control messages by tag, then
    /// inputs, game messages and anything else.
    pub(crate) messages_by_kind: [AtomicU64; ClientMessage::KIND_NAMES.len() + 3],
    /// TCP connections accepted.
    pub(crate) connections_total: AtomicU64,
    /// Connections refused, by reason (see [`REFUSALS`]).
    pub(crate) refused: [AtomicU64; REFUSALS.len()],
    pub(crate) ticks: AtomicU64,
    /// Ticks that took longer than the tick period, or started a period late.
    pub(crate) ticks_overrun: AtomicU64,
    /// Simulation time of one lobby tick (the game's hooks and its state written).
    pub(crate) tick_time: AtomicHistogram,
    /// Time to deliver one lobby tick: its shared parts encoded on first need, every
    /// player's snapshot written to its socket.
    pub(crate) fanout_time: AtomicHistogram,
    /// How late ticks start against their schedule.
    pub(crate) tick_lateness: AtomicHistogram,
    pub(crate) inputs_superseded: AtomicU64,
    pub(crate) inputs_stale: AtomicU64,
    pub(crate) inputs_rate_limited: AtomicU64,
    /// Input values out of their declared range, clamped by the schema.
    pub(crate) inputs_clamped: AtomicU64,
    /// Inputs refused, by reason ([`FRAME_REJECTIONS`]).
    pub(crate) inputs_rejected: [AtomicU64; FRAME_REJECTIONS.len()],
    /// Game messages refused, by reason ([`FRAME_REJECTIONS`]).
    pub(crate) game_messages_rejected: [AtomicU64; FRAME_REJECTIONS.len()],
    /// Game messages passed to the lobby.
    pub(crate) game_messages: AtomicU64,
    /// Game message values out of their declared range, clamped.
    pub(crate) game_messages_clamped: AtomicU64,
    /// Game events sent (each once per tick, to one player or to all).
    pub(crate) events_sent: AtomicU64,
    /// Players dropped because their must-arrive queue (events) overflowed.
    pub(crate) events_overflowed: AtomicU64,
    pub(crate) admin_actions: AtomicU64,
}

/// Why an input or a game message is refused, as metric labels (the index is
/// [`FrameRejection`]'s).
pub(crate) const FRAME_REJECTIONS: [&str; 8] = [
    "truncated",
    "trailing_bytes",
    "string_too_long",
    "invalid_utf8",
    "unknown_type",
    "too_large",
    "not_in_lobby",
    "rate_limited",
];

/// Index in [`Stats::inputs_rejected`] and [`Stats::game_messages_rejected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameRejection {
    Truncated = 0,
    TrailingBytes = 1,
    StringTooLong = 2,
    InvalidUtf8 = 3,
    UnknownType = 4,
    TooLarge = 5,
    NotInLobby = 6,
    RateLimited = 7,
}

impl FrameRejection {
    /// The reason an input or message failed to decode.
    pub(crate) fn of(e: &ticksync_protocol::state::io::IoError) -> Self {
        use ticksync_protocol::state::WireError;
        use ticksync_protocol::state::io::IoError;
        match e {
            IoError::WrongTag | IoError::Wire(WireError::Truncated) => Self::Truncated,
            IoError::TrailingBytes => Self::TrailingBytes,
            IoError::Wire(WireError::StringTooLong) => Self::StringTooLong,
            IoError::Wire(WireError::InvalidUtf8) => Self::InvalidUtf8,
            IoError::UnknownType(_) => Self::UnknownType,
            IoError::TooLarge(_) => Self::TooLarge,
        }
    }
}

/// The labels of [`Stats::messages_by_kind`].
pub(crate) fn message_kinds() -> impl Iterator<Item = &'static str> {
    ClientMessage::KIND_NAMES
        .iter()
        .copied()
        .chain(["input", "game_message", "unknown"])
}

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
        let i = if code == 0 {
            0
        } else {
            close::ALL
                .iter()
                .position(|&(_, c)| c == code)
                .map_or(close::ALL.len() + 1, |i| i + 1)
        };
        self.closes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a received binary message; its first byte is its tag.
    pub(crate) fn count_in(&self, bytes: &[u8]) {
        self.bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        let n = ClientMessage::KIND_NAMES.len();
        let kind = match bytes.first() {
            Some(&t) if usize::from(t) < n => usize::from(t),
            Some(&ticksync_protocol::state::io::INPUT_TAG) => n,
            Some(&ticksync_protocol::state::io::MESSAGE_TAG) => n + 1,
            _ => n + 2,
        };
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
    fn every_message_kind_and_close_code_has_its_own_label() {
        let stats = Stats::default();
        let options = ticksync_protocol::encode_client(&ClientMessage::Options {
            delta_snapshots: true,
        });
        stats.count_in(&options);
        let i = ClientMessage::KIND_NAMES
            .iter()
            .position(|k| *k == "options")
            .expect("an options kind");
        assert_eq!(stats.messages_by_kind[i].load(Ordering::Relaxed), 1);
        stats.count_in(&[200]);
        stats.count_in(&[ticksync_protocol::state::io::INPUT_TAG, 1]);
        stats.count_in(&[ticksync_protocol::state::io::MESSAGE_TAG, 0]);
        stats.count_in(&[ticksync_protocol::state::io::MESSAGE_TAG, 0]);
        let kinds: Vec<&str> = message_kinds().collect();
        let count = |kind: &str| {
            let i = kinds.iter().position(|k| *k == kind).expect("a kind");
            stats.messages_by_kind[i].load(Ordering::Relaxed)
        };
        assert_eq!(kinds.len(), stats.messages_by_kind.len());
        assert_eq!(
            (count("unknown"), count("input"), count("game_message")),
            (1, 1, 2)
        );
        stats.count_close(close::REPLACED);
        stats.count_close(0);
        stats.count_close(3999);
        let replaced = 1 + close::ALL
            .iter()
            .position(|&(_, c)| c == close::REPLACED)
            .expect("listed");
        assert_eq!(stats.closes[replaced].load(Ordering::Relaxed), 1);
        assert_eq!(stats.closes[0].load(Ordering::Relaxed), 1);
        assert_eq!(
            stats.closes[close::ALL.len() + 1].load(Ordering::Relaxed),
            1
        );
    }

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
