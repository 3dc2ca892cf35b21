//! The way out to a connection: WebSocket frames built by the server (`frame.rs`), a
//! connection's outbox shared by its session and its lobby (`outbox.rs`), and a tick's
//! snapshot delivery to every player of a lobby (`broadcast.rs`).

pub(crate) mod broadcast;
pub(crate) mod frame;
pub(crate) mod outbox;
