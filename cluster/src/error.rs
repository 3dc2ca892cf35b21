//! The crate's errors.

use std::time::Duration;

/// What a directory call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis could not be reached, dropped the connection or failed the command. The
    /// server maps this (and [`Error::Timeout`]) to its "cluster unavailable" error;
    /// local play is unaffected.
    #[error("redis unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within the configured operation timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// No live lobby has that id, code or key (or its lease is over).
    #[error("no live lobby with that id or code")]
    LobbyNotFound,
    /// The lobby's players and live reservations already fill it.
    #[error("the lobby is full (players and live reservations)")]
    LobbyFull,
    /// The lobby's node is draining: it takes no new players.
    #[error("the lobby's node is draining")]
    Draining,
    /// Quick-join found no lobby with room and no live node that is not draining.
    #[error("no live node can take a new lobby")]
    NoNode,
    /// A reservation could not be redeemed.
    #[error("reservation refused: {0}")]
    Reservation(#[from] ReservationError),
    /// The directory's settings are unusable (e.g. a node id with a '/').
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// Redis answered something the scripts never send (a bug, or a foreign key layout).
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
}

impl Error {
    /// Whether the failure is Redis being unreachable or slow (retry later; cross-node
    /// requests fail while it lasts), as opposed to an answer about the lobby.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Redis(_) | Error::Timeout(_))
    }
}

/// Why a reservation token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    /// Not a reservation token (wrong length, version or encoding).
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the cluster secret (forged, altered, or signed
    /// before Redis lost its data).
    #[error("bad signature")]
    BadSignature,
    /// The token names another node.
    #[error("the reservation is for another node")]
    WrongNode,
    /// Expired, or never made (its record is gone); its seat is free again.
    #[error("the reservation expired or is unknown")]
    Expired,
    /// Already redeemed once.
    #[error("the reservation was already used")]
    AlreadyUsed,
    /// The token's lobby is not the one its record holds.
    #[error("the reservation is for another lobby")]
    Mismatch,
}
