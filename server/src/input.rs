//! The per-connection rate limits of client input. Inputs and game messages are
//! validated by the lobby's schema (`ticksync_protocol::state::io`): every value is
//! quantized into its declared range, so nothing non-finite or out of range reaches a
//! game.

use tokio::time::Instant;

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Self {
            tokens: burst,
            rate,
            burst,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one; `now` is the caller's clock reading (one per
    /// message serves every bucket).
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        if self.peek(now) >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl TokenBucket {
    /// The tokens there are at `now`, taking none.
    pub(crate) fn peek(&mut self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens
    }

    /// Whether the bucket has refilled completely at `now` (nothing to remember).
    pub(crate) fn is_full(&mut self, now: Instant) -> bool {
        self.peek(now) >= self.burst
    }
}

/// Game messages a connection may send per second, sustained.
pub const GAME_MESSAGES_PER_SECOND: f64 = 10.0;
/// Game messages a connection may send at once.
pub const GAME_MESSAGE_BURST: f64 = 20.0;

/// The per-connection limits, derived from the tick rate.
///
/// - Inputs: twice the tick rate, one second of burst; extra inputs are dropped and
///   counted (the tick only applies the newest anyway).
/// - Game messages: 10/s, a burst of 20; over that, the message is dropped and the
///   client told (`Error { RateLimited }`).
/// - All messages: four times the tick rate plus 20/s, two seconds of burst; a client
///   that empties this bucket is flooding and is disconnected.
/// - Lobby operations (list, create, join, quick-join, leave): 5/s, a burst of 10;
///   beyond that the client is disconnected.
#[derive(Debug, Clone)]
pub(crate) struct RateLimits {
    pub(crate) inputs: TokenBucket,
    pub(crate) game_messages: TokenBucket,
    pub(crate) messages: TokenBucket,
    pub(crate) lobby_ops: TokenBucket,
}

impl RateLimits {
    /// Limits for a server ticking at `tick_rate`.
    pub(crate) fn new(tick_rate: u16) -> Self {
        let tick = f64::from(tick_rate);
        let messages = 4.0 * tick + 20.0;
        Self {
            inputs: TokenBucket::new(2.0 * tick, 2.0 * tick),
            game_messages: TokenBucket::new(GAME_MESSAGES_PER_SECOND, GAME_MESSAGE_BURST),
            messages: TokenBucket::new(messages, 2.0 * messages),
            lobby_ops: TokenBucket::new(5.0, 10.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refills_at_its_rate() {
        let mut bucket = TokenBucket::new(10.0, 5.0);
        assert_eq!((0..20).filter(|_| bucket.take(Instant::now())).count(), 5);
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!((0..20).filter(|_| bucket.take(Instant::now())).count(), 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!((0..20).filter(|_| bucket.take(Instant::now())).count(), 5);
    }
}
