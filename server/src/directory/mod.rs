//! The server's directories: open lobbies by id and code (`registry.rs`), players by
//! session token and id (`players.rs`).

pub(crate) mod players;
pub(crate) mod registry;
