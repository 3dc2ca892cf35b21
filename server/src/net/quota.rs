//! What one address may do, whatever connections it spreads it over (a per-connection
//! limit is no limit for a client that reconnects):
//!
//! - [`LobbyQuota`]: lobbies it creates per minute (`--lobby-creates-per-minute`) and
//!   lobbies it has open at once (`--max-lobbies-per-ip`);
//! - [`Guesses`]: failed guesses (wrong admin tokens, unknown join codes, bad join
//!   tokens) per minute (`--auth-failures-per-minute`); past them the address is refused
//!   until its bucket refills. Failures are counted (`ticksync_auth_failures_total`) and
//!   logged at most once a second per kind.
//!
//! Addresses are the connection caps' keys (`admission::ip_key`: a /64 for IPv6). Entries
//! of idle addresses are swept, so memory follows the addresses active in the last minute.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use tokio::time::Instant;
use tracing::warn;

use crate::input::TokenBucket;

/// Why a lobby could not be created for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaRefusal {
    /// It created too many lobbies in the last minute.
    TooFast,
    /// It has `--max-lobbies-per-ip` lobbies open.
    TooMany,
}

#[derive(Debug)]
struct Creator {
    bucket: TokenBucket,
    open: usize,
}

/// Lobby creation per address.
#[derive(Debug)]
pub(crate) struct LobbyQuota {
    per_minute: u32,
    max_open: usize,
    creators: DashMap<IpAddr, Creator>,
}

/// One open lobby counted against the address that created it; uncounts itself when
/// dropped (its lobby's task holds it until the lobby closes).
#[derive(Debug)]
pub(crate) struct OpenLobby {
    quota: Arc<LobbyQuota>,
    key: IpAddr,
}

impl Drop for OpenLobby {
    fn drop(&mut self) {
        if let Some(mut creator) = self.quota.creators.get_mut(&self.key) {
            creator.open = creator.open.saturating_sub(1);
        }
    }
}

fn per_minute(n: u32) -> TokenBucket {
    let n = f64::from(n);
    TokenBucket::new(n / 60.0, n)
}

impl LobbyQuota {
    /// At most `per_minute` creations a minute and `max_open` open lobbies per address.
    pub(crate) fn new(per_minute: u32, max_open: usize) -> Arc<Self> {
        Arc::new(LobbyQuota {
            per_minute,
            max_open,
            creators: DashMap::new(),
        })
    }

    /// Counts a lobby about to be created by `key`, or says why it may not.
    pub(crate) fn create(self: &Arc<Self>, key: IpAddr) -> Result<OpenLobby, QuotaRefusal> {
        let mut creator = self.creators.entry(key).or_insert_with(|| Creator {
            bucket: per_minute(self.per_minute),
            open: 0,
        });
        if creator.open >= self.max_open {
            return Err(QuotaRefusal::TooMany);
        }
        if !creator.bucket.take(Instant::now()) {
            return Err(QuotaRefusal::TooFast);
        }
        creator.open += 1;
        Ok(OpenLobby {
            quota: Arc::clone(self),
            key,
        })
    }

    /// Forgets addresses with no open lobby and a full bucket.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.creators
            .retain(|_, c| c.open > 0 || !c.bucket.is_full(now));
    }
}

/// Kinds of failed guesses, as metric labels.
pub(crate) const GUESS_KINDS: [&str; 3] = ["admin_token", "join_code", "join_token"];

/// What was guessed (index in [`GUESS_KINDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guess {
    /// A wrong admin bearer token.
    AdminToken = 0,
    /// A join code that names no lobby.
    JoinCode = 1,
    /// A join token that does not verify.
    JoinToken = 2,
}

/// Failed guesses per address.
#[derive(Debug)]
pub(crate) struct Guesses {
    per_minute: u32,
    buckets: DashMap<IpAddr, TokenBucket>,
    /// Failures, by kind.
    pub(crate) failures: [AtomicU64; GUESS_KINDS.len()],
    /// Attempts refused because their address failed too often, by kind.
    pub(crate) refused: [AtomicU64; GUESS_KINDS.len()],
    /// When each kind was last logged (ms since `started`), for the once-a-second log.
    logged_ms: [AtomicU64; GUESS_KINDS.len()],
    started: Instant,
}

impl Guesses {
    /// At most `per_minute` failures a minute per address.
    pub(crate) fn new(per_minute: u32) -> Self {
        Guesses {
            per_minute,
            buckets: DashMap::new(),
            failures: Default::default(),
            refused: Default::default(),
            logged_ms: Default::default(),
            started: Instant::now(),
        }
    }

    /// Whether `key` may try now (it has failures left this minute). Counts a refusal.
    pub(crate) fn may_try(&self, key: IpAddr, kind: Guess) -> bool {
        let now = Instant::now();
        let allowed = self
            .buckets
            .get_mut(&key)
            .is_none_or(|mut bucket| bucket.peek(now) >= 1.0);
        if !allowed {
            self.refused[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// Counts a failed guess by `key`: the metric, a log line (at most one a second per
    /// kind), and one token of the address's bucket.
    pub(crate) fn failed(&self, key: IpAddr, kind: Guess) {
        let total = self.failures[kind as usize].fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let blocked = {
            let mut bucket = self
                .buckets
                .entry(key)
                .or_insert_with(|| per_minute(self.per_minute));
            !bucket.take(now)
        };
        let at = u64::try_from(now.duration_since(self.started).as_millis()).unwrap_or(u64::MAX);
        let last = &self.logged_ms[kind as usize];
        let previous = last.load(Ordering::Relaxed);
        if (previous == 0 || at.saturating_sub(previous) >= 1_000)
            && last
                .compare_exchange(previous, at.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!(
                kind = GUESS_KINDS[kind as usize],
                address = %key,
                failures_total = total,
                address_blocked = blocked,
                "failed guess (logged at most once a second per kind)"
            );
        }
    }

    /// Forgets addresses whose bucket is full again.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.buckets.retain(|_, b| !b.is_full(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_creates_at_its_rate_and_holds_its_share() {
        let quota = LobbyQuota::new(3, 2);
        let a = quota.create(ip(1)).expect("first");
        let b = quota.create(ip(1)).expect("second");
        assert_eq!(
            quota.create(ip(1)).expect_err("refused"),
            QuotaRefusal::TooMany
        );
        assert!(
            quota.create(ip(2)).is_ok(),
            "another address is not affected"
        );
        drop(a);
        let c = quota.create(ip(1)).expect("a lobby closed: room again");
        drop((b, c));
        assert_eq!(
            quota.create(ip(1)).expect_err("refused"),
            QuotaRefusal::TooFast
        );
        tokio::time::advance(std::time::Duration::from_secs(21)).await;
        assert!(
            quota.create(ip(1)).is_ok(),
            "one more after a third of a minute"
        );
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        quota.sweep();
        assert!(quota.creators.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_that_keeps_failing_is_refused_for_a_while() {
        let guesses = Guesses::new(5);
        for _ in 0..5 {
            assert!(guesses.may_try(ip(1), Guess::AdminToken));
            guesses.failed(ip(1), Guess::AdminToken);
        }
        assert!(!guesses.may_try(ip(1), Guess::AdminToken));
        assert!(guesses.may_try(ip(2), Guess::AdminToken));
        assert_eq!(guesses.failures[0].load(Ordering::Relaxed), 5);
        assert_eq!(guesses.refused[0].load(Ordering::Relaxed), 1);
        tokio::time::advance(std::time::Duration::from_secs(12)).await;
        assert!(guesses.may_try(ip(1), Guess::AdminToken), "refilled");
    }
}
