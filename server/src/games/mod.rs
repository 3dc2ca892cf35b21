//! The built-in games, selected with `ticksync-server --game NAME`.
//!
//! Each is written on the public Game API ([`crate::game`]) only, as an outside crate's
//! game would be.

pub mod arena;
pub mod hill;

use std::sync::Arc;

use ticksync_protocol::schema::SchemaError;

use crate::game::{GameFactory, factory};

/// A built-in game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BuiltinGame {
    /// Tag in a 1000 x 1000 arena (the default).
    #[default]
    Arena,
    /// King of the hill, with momentum.
    Hill,
}

impl BuiltinGame {
    /// The game's factory (its schema validated).
    pub fn factory(self) -> Result<Arc<dyn GameFactory>, SchemaError> {
        match self {
            BuiltinGame::Arena => factory(|_| Ok(arena::Arena::new())),
            BuiltinGame::Hill => factory(|_| Ok(hill::Hill::new())),
        }
    }
}
