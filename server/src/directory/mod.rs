//! The server's directories: open lobbies by id and code (`registry.rs`), players by
//! session token and id (`players.rs`), and in cluster mode the cluster's directory in
//! Redis and the routing of joins across nodes (`cluster.rs`).

pub(crate) mod cluster;
pub(crate) mod players;
pub(crate) mod registry;
