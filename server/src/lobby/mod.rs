//! A lobby: its handle (what sessions, the registry and operators see, `handle.rs`) and
//! its tick task (which owns the game world, `task.rs`).

mod handle;
mod task;

pub(crate) use handle::{
    Claim, InputOutcome, JoinRefused, JoinRequest, LobbyHandle, SeatBox, Seated,
};
pub(crate) use task::{Lobby, LobbyEnv};
