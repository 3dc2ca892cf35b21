//! The directory's settings, with the defaults the issue asks for (3 s leases renewed every
//! second, 15 s reservations). Tests shorten them.

use std::time::Duration;

use crate::error::Error;
use crate::token::MAX_NODE_ID_LEN;

/// How one node talks to the directory.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Redis address, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// This node's id: 1 to 64 of `A-Z a-z 0-9 . _ -` (it is part of Redis keys and of
    /// reservation tokens).
    pub node_id: String,
    /// Where other nodes send players to reach this node (e.g. `ws://10.0.0.5:8080/ws`).
    pub public_url: String,
    /// Prefix of every Redis key, so several clusters (or tests) can share one Redis.
    pub key_prefix: String,
    /// How long this node's record and lobbies stay listed without a renewal.
    pub lease: Duration,
    /// How often the background task renews (and rewrites every lobby's true count).
    pub renew_interval: Duration,
    /// How long a seat reservation holds its seat unless redeemed.
    pub reservation_ttl: Duration,
    /// The longest any one Redis call may take before it fails with
    /// [`Error::Timeout`].
    pub op_timeout: Duration,
    /// Renewals between two clean-ups of expired entries (by this node).
    pub cleanup_every: u32,
    /// Most entries a listing or quick-join looks at (bounds the script's run time).
    pub scan_limit: usize,
    /// Seats of a lobby that quick-join opens (as a pending lobby, on the least-loaded
    /// node) when no public lobby has room.
    pub quick_lobby_size: u16,
}

impl DirectoryConfig {
    /// Settings with the defaults: lease 3 s, renewal every 1 s, reservations 15 s,
    /// Redis calls bounded by 1 s, key prefix `ticksync:`.
    pub fn new(
        redis_url: impl Into<String>,
        node_id: impl Into<String>,
        public_url: impl Into<String>,
    ) -> Self {
        Self {
            redis_url: redis_url.into(),
            node_id: node_id.into(),
            public_url: public_url.into(),
            key_prefix: "ticksync:".to_owned(),
            lease: Duration::from_secs(3),
            renew_interval: Duration::from_secs(1),
            reservation_ttl: Duration::from_secs(15),
            op_timeout: Duration::from_secs(1),
            cleanup_every: 5,
            scan_limit: 2_000,
            quick_lobby_size: 8,
        }
    }

    /// Checks the settings that would break the directory's guarantees.
    pub fn validate(&self) -> Result<(), Error> {
        validate_node_id(&self.node_id)?;
        if self.public_url.is_empty() {
            return Err(Error::Config("the public url is empty".into()));
        }
        if self.key_prefix.contains(char::is_whitespace) {
            return Err(Error::Config("the key prefix has whitespace".into()));
        }
        if self.renew_interval.is_zero() || self.lease < self.renew_interval * 2 {
            return Err(Error::Config(format!(
                "the lease ({:?}) must be at least twice the renewal interval ({:?})",
                self.lease, self.renew_interval
            )));
        }
        if millis(self.reservation_ttl) == 0 || millis(self.op_timeout) == 0 {
            return Err(Error::Config(
                "the reservation ttl and the operation timeout must be at least 1 ms".into(),
            ));
        }
        if self.op_timeout >= self.lease {
            return Err(Error::Config(
                "the operation timeout must be shorter than the lease".into(),
            ));
        }
        if self.quick_lobby_size == 0 {
            return Err(Error::Config("quick_lobby_size must be at least 1".into()));
        }
        if self.cleanup_every == 0 || self.scan_limit == 0 {
            return Err(Error::Config(
                "cleanup_every and scan_limit must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a node id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn validate_node_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "node id {id:?}: 1 to {MAX_NODE_ID_LEN} of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// A random node id, `node-` and 12 hex digits (the server's default for `--node-id`).
pub fn random_node_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)?;
    Ok(format!("node-{}", crate::token::hex(&bytes)))
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_settings_do_not() {
        let c = DirectoryConfig::new("redis://127.0.0.1:1", "a", "ws://x/ws");
        assert!(c.validate().is_ok());
        for bad in ["", "a/b", "a:b", "a b", &"x".repeat(65)] {
            let c = DirectoryConfig::new("redis://127.0.0.1:1", bad, "ws://x/ws");
            assert!(c.validate().is_err(), "{bad:?}");
        }
        let mut c = DirectoryConfig::new("redis://127.0.0.1:1", "a", "ws://x/ws");
        c.lease = c.renew_interval;
        assert!(c.validate().is_err());
        let id = random_node_id().expect("random");
        assert!(validate_node_id(&id).is_ok());
        assert_eq!(id.len(), 17);
    }
}
