//! What a session does to client input before anything else sees it: sanitizing and
//! rate limiting.

use glam::Vec2;
use ticksync_protocol::Input;
use tokio::time::Instant;

/// Button bits a client may set; higher bits are cleared. Games get at most these four.
pub const BUTTON_MASK: u8 = 0x0f;

/// Makes an input safe for any game: a non-finite direction becomes zero, a direction
/// longer than 1 is scaled to length 1, buttons outside [`BUTTON_MASK`] are cleared.
pub(crate) fn sanitize(mut input: Input) -> Input {
    let dir = Vec2::new(input.dir_x, input.dir_y);
    let dir = if dir.is_finite() {
        dir.clamp_length_max(1.0)
    } else {
        Vec2::ZERO
    };
    input.dir_x = dir.x;
    input.dir_y = dir.y;
    input.buttons &= BUTTON_MASK;
    input
}

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

/// The per-connection limits, derived from the tick rate.
///
/// - Inputs: twice the tick rate, one second of burst; extra inputs are dropped and
///   counted (the tick only applies the newest anyway).
/// - All messages: four times the tick rate plus 20/s, two seconds of burst; a client
///   that empties this bucket is flooding and is disconnected.
/// - Lobby operations (list, create, join, quick-join, leave): 5/s, a burst of 10;
///   beyond that the client is disconnected.
#[derive(Debug, Clone)]
pub(crate) struct RateLimits {
    pub(crate) inputs: TokenBucket,
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
            messages: TokenBucket::new(messages, 2.0 * messages),
            lobby_ops: TokenBucket::new(5.0, 10.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn inputs_are_sanitized() {
        let i = |x, y, b| Input {
            seq: 1,
            dir_x: x,
            dir_y: y,
            buttons: b,
        };
        let s = sanitize(i(f32::NAN, 1.0, 0));
        assert_eq!((s.dir_x, s.dir_y), (0.0, 0.0));
        let s = sanitize(i(f32::INFINITY, 0.0, 0));
        assert_eq!((s.dir_x, s.dir_y), (0.0, 0.0));
        let s = sanitize(i(3.0, 4.0, 0xff));
        assert!((s.dir_x - 0.6).abs() < 1e-6 && (s.dir_y - 0.8).abs() < 1e-6);
        assert_eq!(s.buttons, 0x0f);
        let s = sanitize(i(0.5, 0.0, 1));
        assert_eq!((s.dir_x, s.dir_y, s.buttons), (0.5, 0.0, 1));
    }

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
