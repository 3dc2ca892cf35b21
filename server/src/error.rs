//! The crate's one error type.

/// The server crate's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener's address could not be read.
    #[error("listener has no local address: {0}")]
    Listener(#[source] std::io::Error),
    /// A flag or environment variable is wrong (or help or the version was asked for:
    /// `clap::Error::exit` prints it).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The game's declared state is wrong (found at start-up, never on the wire).
    #[error(transparent)]
    Schema(#[from] ticksync_protocol::schema::SchemaError),
    /// The config file is unreadable or wrong.
    #[error("config file: {0}")]
    ConfigFile(String),
    /// No join token was given, and the server requires one.
    #[error("a join token is required")]
    TokenMissing,
    /// The join token is not `<expiry>.<hex>` or `<expiry>.<nonce>.<hex>`.
    #[error("the join token is malformed")]
    TokenMalformed,
    /// The join token's expiry has passed.
    #[error("the join token has expired")]
    TokenExpired,
    /// The join token's signature does not match the name and expiry.
    #[error("the join token does not match")]
    TokenBadSignature,
    /// The single-use join token was used before.
    #[error("the join token was already used")]
    TokenUsed,
    /// The single-use join token expires further ahead than the server remembers nonces.
    #[error("the join token is valid for too long")]
    TokenTooLong,
    /// The server remembers as many single-use tokens as it may; try again later.
    #[error("too many single-use join tokens in flight; try again later")]
    TokenBusy,
    /// Cluster mode was asked for (`--redis-url`) and the directory could not be joined
    /// (Redis unreachable, or a bad node id or public URL).
    #[error("cluster mode: {0}")]
    Cluster(#[from] ticksync_cluster::Error),
}
