//! The protocol-1 game interface (one disc per seat), which the lobby task still drives
//! until it moves to the Game API of [`crate::game`] (protocol 2); it goes then.
//!
//! A game is deterministic: [`Game::step`] sees only the inputs and the tick, no clock and
//! no I/O, so it can be unit-tested without a runtime and replayed exactly.

use glam::Vec2;
use ticksync_protocol::{EntityId, EntityState, ScoreEntry, quantize};

/// One player's controls for a tick, already validated: `dir` is finite with length at
/// most 1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlayerInput {
    /// Movement direction.
    pub dir: Vec2,
    /// Button bits.
    pub buttons: u8,
}

/// What a snapshot shows of one entity.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EntityView {
    /// The entity.
    pub id: EntityId,
    /// Position, inside `0..=world_size()`.
    pub pos: Vec2,
    /// Velocity, each component within `±max_speed()`.
    pub vel: Vec2,
    /// Game-defined bits.
    pub flags: u8,
}

/// The rules of one game. The lobby's tick task owns the value; nothing else touches it.
pub trait Game: Send + 'static {
    /// World extent; positions are quantized over `0..=size` on each axis.
    fn world_size(&self) -> Vec2;

    /// Largest speed on one axis; velocities are quantized over `±max_speed`.
    fn max_speed(&self) -> f32;

    /// A player joined: create its entity.
    fn spawn(&mut self, entity: EntityId);

    /// A player left: remove its entity.
    fn despawn(&mut self, entity: EntityId);

    /// Advances the world by one tick of `dt` seconds. `inputs` holds every player's
    /// current controls, in ascending entity order (a player keeps its last input until
    /// a newer one arrives).
    fn step(&mut self, inputs: &[(EntityId, PlayerInput)], tick: u32, dt: f32);

    /// Appends every entity's view, in ascending id order.
    fn view(&self, out: &mut Vec<EntityView>);

    /// Appends the scores. A lobby sends a `Scoreboard` whenever they change. The
    /// default: a game without scores.
    fn scores(&self, out: &mut Vec<ScoreEntry>) {
        let _ = out;
    }
}

/// Quantizes entity views as a snapshot carries them (see `ticksync_protocol::quantize`):
/// positions over `0..=world`, velocities over `±max_speed`. Appends to `out`.
pub fn quantize_views(
    views: &[EntityView],
    world: Vec2,
    max_speed: f32,
    out: &mut Vec<EntityState>,
) {
    out.extend(views.iter().map(|v| EntityState {
        id: v.id,
        flags: v.flags,
        x: quantize::position(v.pos.x, world.x),
        y: quantize::position(v.pos.y, world.y),
        vx: quantize::velocity(v.vel.x, max_speed),
        vy: quantize::velocity(v.vel.y, max_speed),
    }));
}

/// What a new lobby was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbySpec {
    /// The lobby's name (a game may pick a mode or map from it).
    pub name: String,
    /// Its player cap.
    pub max_players: u8,
    /// Whether it is private.
    pub private: bool,
}

/// Makes the game of each new lobby. Any `Fn(&LobbySpec) -> Box<dyn Game>` is one.
pub trait GameFactory: Send + Sync + 'static {
    /// A new game for the lobby `spec` describes.
    fn create(&self, spec: &LobbySpec) -> Box<dyn Game>;
}

impl<F> GameFactory for F
where
    F: Fn(&LobbySpec) -> Box<dyn Game> + Send + Sync + 'static,
{
    fn create(&self, spec: &LobbySpec) -> Box<dyn Game> {
        self(spec)
    }
}
