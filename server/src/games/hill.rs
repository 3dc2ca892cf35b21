//! "hill", king of the hill: players drift with momentum (the input is an acceleration,
//! not a velocity); whoever stands alone on the hill in the middle scores a point per
//! second. The score and whether a player stands on the hill are fields of its entity;
//! the client predicts its own entity with [`accelerate`].

use glam::Vec2;
use ticksync_protocol::{Messages, State};

use crate::game::{
    Ctx, EntityId, Game, GameOptions, LeaveReason, NoMessages, PlayerInput, PlayerRef, Writer,
};

/// Side length of the square world.
pub const SIZE: f32 = 600.0;
/// Acceleration at full input, units/s².
pub const ACCEL: f32 = 400.0;
/// Largest speed, units/s.
pub const MAX_SPEED: f32 = 250.0;
/// Velocity kept per tenth of a second.
pub const DRAG: f32 = 0.9;
/// Radius of the hill around the centre.
pub const HILL_RADIUS: f32 = 60.0;

/// The hill's entity kinds: players only.
#[derive(Messages, Debug, Clone, PartialEq)]
pub enum HillEntity {
    /// A player's disc.
    Player {
        /// Position.
        #[state(range = 0.0..=600.0, precision = 0.01)]
        pos: Vec2,
        /// Velocity (0 exact).
        #[state(range = -250.0..=250.0, precision = 0.05)]
        vel: Vec2,
        /// Standing on the hill.
        on_hill: bool,
        /// Whole seconds alone on the hill (var4 groups: 8 bits up to 63 s).
        #[state(varint)]
        score: u16,
    },
}

/// A player's controls: the direction to accelerate in (length at most 1).
#[derive(State, Debug, Clone, Copy, PartialEq, Default)]
pub struct HillInput {
    /// Acceleration direction.
    #[state(range = -1.0..=1.0, precision = 0.0001)]
    pub dir: Vec2,
}

#[derive(Debug, Clone)]
struct Player {
    seat: PlayerRef,
    entity: EntityId,
    pos: Vec2,
    vel: Vec2,
    /// Ticks spent alone on the hill.
    ticks_alone: u32,
}

/// The hill game's world.
#[derive(Debug, Clone, Default)]
pub struct Hill {
    /// Ascending seats.
    players: Vec<Player>,
    /// Ticks per second, from the step's `dt` (scores are whole seconds).
    tick_rate: u32,
}

/// One tick of momentum: accelerate by `dir` (at most length 1), drag, cap the speed,
/// move and clamp to the world. Returns the new position and velocity.
pub fn accelerate(pos: Vec2, vel: Vec2, dir: Vec2, dt: f32) -> (Vec2, Vec2) {
    let dir = dir.clamp_length_max(1.0);
    let vel = ((vel + dir * ACCEL * dt) * DRAG.powf(dt * 10.0)).clamp_length_max(MAX_SPEED);
    let pos = (pos + vel * dt).clamp(Vec2::ZERO, Vec2::splat(SIZE));
    (pos, vel)
}

fn on_hill(pos: Vec2) -> bool {
    pos.distance(Vec2::splat(SIZE / 2.0)) < HILL_RADIUS
}

impl Hill {
    /// An empty hill.
    pub fn new() -> Self {
        Self::default()
    }

    fn player_mut(&mut self, seat: PlayerRef) -> Option<&mut Player> {
        self.players.iter_mut().find(|p| p.seat == seat)
    }

    /// A player's position.
    pub fn position(&self, seat: PlayerRef) -> Option<Vec2> {
        self.players.iter().find(|p| p.seat == seat).map(|p| p.pos)
    }

    /// Puts a player somewhere (tests and tools).
    pub fn set_position(&mut self, seat: PlayerRef, pos: Vec2) {
        if let Some(p) = self.player_mut(seat) {
            p.pos = pos.clamp(Vec2::ZERO, Vec2::splat(SIZE));
        }
    }

    /// A player's score: whole seconds alone on the hill.
    pub fn score(&self, seat: PlayerRef) -> Option<u16> {
        let per_second = self.tick_rate.max(1);
        self.players
            .iter()
            .find(|p| p.seat == seat)
            .map(|p| u16::try_from(p.ticks_alone / per_second).unwrap_or(u16::MAX))
    }
}

impl Game for Hill {
    const NAME: &'static str = "hill";
    const TITLE: Option<&'static str> = Some("King of the hill");
    type Entity = HillEntity;
    type Lobby = ();
    type Private = ();
    type Input = HillInput;
    type Message = NoMessages;
    type Event = NoMessages;

    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, NoMessages>,
        seat: PlayerRef,
        _name: &str,
        _options: &GameOptions,
    ) -> Result<(), String> {
        let angle = f32::from(seat.0.saturating_sub(1)) * 2.4;
        let pos = Vec2::splat(SIZE / 2.0) + Vec2::new(angle.cos(), angle.sin()) * 250.0;
        let at = self.players.partition_point(|p| p.seat < seat);
        self.players.insert(
            at,
            Player {
                seat,
                entity: ctx.spawn(),
                pos,
                vel: Vec2::ZERO,
                ticks_alone: 0,
            },
        );
        Ok(())
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, NoMessages>, seat: PlayerRef, _: LeaveReason) {
        if let Some(p) = self.players.iter().find(|p| p.seat == seat) {
            ctx.despawn(p.entity);
        }
        self.players.retain(|p| p.seat != seat);
    }

    fn step(
        &mut self,
        _ctx: &mut Ctx<'_, NoMessages>,
        inputs: &[PlayerInput<HillInput>],
        _tick: u32,
        dt: f32,
    ) {
        self.tick_rate = (1.0 / dt).round() as u32;
        for p in &mut self.players {
            let dir = inputs
                .iter()
                .find(|i| i.player == p.seat)
                .map_or(Vec2::ZERO, |i| i.input.dir);
            (p.pos, p.vel) = accelerate(p.pos, p.vel, dir, dt);
        }
        let mut on = self.players.iter_mut().filter(|p| on_hill(p.pos));
        if let (Some(alone), None) = (on.next(), on.next()) {
            alone.ticks_alone += 1;
        }
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        for p in &self.players {
            out.controlled(
                p.entity,
                p.seat,
                &HillEntity::Player {
                    pos: p.pos,
                    vel: p.vel,
                    on_hill: on_hill(p.pos),
                    score: self.score(p.seat).unwrap_or(0),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{GameSim, Sim};

    #[test]
    fn alone_on_the_hill_scores() {
        let mut sim = GameSim::new(Hill::new(), 8).expect("valid schema");
        sim.join(PlayerRef(1), "a", &GameOptions::none())
            .expect("joins");
        sim.game_mut()
            .set_position(PlayerRef(1), Vec2::splat(SIZE / 2.0));
        for tick in 0..60 {
            sim.step(tick, 1.0 / 30.0);
        }
        assert_eq!(sim.game().score(PlayerRef(1)), Some(2));
        let state = sim.state(60).expect("state");
        let id = state.entities()[0].id;
        let values = state.entity_values(sim.codec(), id).expect("written");
        assert_eq!(values[2], ticksync_protocol::state::Value::Bool(true));
        assert_eq!(values[3], ticksync_protocol::state::Value::Int(2));
    }

    #[test]
    fn two_on_the_hill_score_nothing() {
        let mut sim = GameSim::new(Hill::new(), 8).expect("valid schema");
        for s in 1..=2 {
            sim.join(PlayerRef(s), "p", &GameOptions::none())
                .expect("joins");
            sim.game_mut()
                .set_position(PlayerRef(s), Vec2::splat(SIZE / 2.0));
        }
        for tick in 0..60 {
            sim.step(tick, 1.0 / 30.0);
        }
        assert_eq!(sim.game().score(PlayerRef(1)), Some(0));
    }

    #[test]
    fn momentum_carries_on_after_the_input_stops() {
        let mut sim = GameSim::new(Hill::new(), 8).expect("valid schema");
        sim.join(PlayerRef(1), "a", &GameOptions::none())
            .expect("joins");
        sim.game_mut()
            .set_position(PlayerRef(1), Vec2::new(100.0, 100.0));
        sim.push_input(PlayerRef(1), 1, 0, &HillInput { dir: Vec2::X });
        for tick in 0..10 {
            sim.step(tick, 1.0 / 30.0);
        }
        sim.push_input(PlayerRef(1), 2, 10, &HillInput { dir: Vec2::ZERO });
        let before = sim.game().position(PlayerRef(1)).expect("here");
        sim.step(10, 1.0 / 30.0);
        let after = sim.game().position(PlayerRef(1)).expect("here");
        assert!(after.x > before.x, "{before} -> {after}");
    }
}
