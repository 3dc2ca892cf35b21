//! "arena", the default game: top-down players in a 1000 x 1000 arena moving at 200
//! units/s in their input direction, clamped to the walls, pushed apart when they
//! overlap, and a game of tag: one player is "it"; touching another player passes it on
//! and scores the tagger a point. The player just tagged cannot tag straight back for a
//! second. Each player is one entity it controls (the client predicts it with
//! [`move_player`]); "it" and the score are fields of the entity.

use glam::Vec2;
use ticksync_protocol::{Messages, State};

use crate::game::{
    Ctx, EntityId, Game, GameOptions, LeaveReason, NoMessages, PlayerInput, PlayerRef, Writer,
};

/// Arena side length, in world units.
pub const ARENA_SIZE: f32 = 1000.0;
/// Player speed, in units per second.
pub const SPEED: f32 = 200.0;
/// Player radius, in units.
pub const RADIUS: f32 = 20.0;
/// Ticks during which a freshly tagged player cannot tag back the player who tagged it.
pub const TAG_BACK_TICKS: u32 = 30;

/// The arena's entity kinds: players only.
#[derive(Messages, Debug, Clone, PartialEq)]
pub enum ArenaEntity {
    /// A player's disc.
    Player {
        /// Position (16 bits per axis, as protocol 1).
        #[state(range = 0.0..=1000.0, precision = 0.0153)]
        pos: Vec2,
        /// Velocity (8 bits per axis, 0 exact).
        #[state(range = -200.0..=200.0, precision = 1.575)]
        vel: Vec2,
        /// This player is "it".
        it: bool,
        /// Tags scored (saturates at 65535); var4 groups: 4 bits up to 7, 8 up to 63.
        #[state(varint)]
        score: u16,
    },
}

/// A player's controls: the direction to move in (length at most 1; longer is scaled
/// down).
#[derive(State, Debug, Clone, Copy, PartialEq, Default)]
pub struct ArenaInput {
    /// Movement direction, x to the right, y downwards.
    #[state(range = -1.0..=1.0, precision = 0.0001)]
    pub dir: Vec2,
}

#[derive(Debug, Clone)]
struct Player {
    seat: PlayerRef,
    entity: EntityId,
    pos: Vec2,
    vel: Vec2,
    score: u16,
}

/// The arena game's world.
#[derive(Debug, Clone, Default)]
pub struct Arena {
    /// Players in ascending seat order.
    players: Vec<Player>,
    /// The player who is "it", if any.
    it: Option<PlayerRef>,
    /// Who tagged `it` last, and until which tick `it` may not tag them back.
    no_tag_back: Option<(PlayerRef, u32)>,
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// The player who is "it".
    pub fn it(&self) -> Option<PlayerRef> {
        self.it
    }

    fn player(&self, seat: PlayerRef) -> Option<&Player> {
        self.players.iter().find(|p| p.seat == seat)
    }

    /// A player's position.
    pub fn position(&self, seat: PlayerRef) -> Option<Vec2> {
        self.player(seat).map(|p| p.pos)
    }

    /// A player's score.
    pub fn score(&self, seat: PlayerRef) -> Option<u16> {
        self.player(seat).map(|p| p.score)
    }

    /// A player's entity.
    pub fn entity(&self, seat: PlayerRef) -> Option<EntityId> {
        self.player(seat).map(|p| p.entity)
    }

    /// Puts a player somewhere (tests and tools).
    pub fn set_position(&mut self, seat: PlayerRef, pos: Vec2) {
        if let Some(p) = self.players.iter_mut().find(|p| p.seat == seat) {
            p.pos = clamp_to_arena(pos);
        }
    }

    /// Spawn points spread over the arena on a golden-angle spiral, so that players
    /// joining one after another do not overlap (`index`: the seat less one).
    pub fn spawn_point(index: u16) -> Vec2 {
        let i = f32::from(index);
        let angle = i * 2.399_963;
        // Sunflower spacing: 250 players fit within 460 units of the centre, ~50 apart.
        let r = 29.0 * (i + 0.5).sqrt();
        let center = Vec2::splat(ARENA_SIZE / 2.0);
        clamp_to_arena(center + Vec2::new(angle.cos(), angle.sin()) * r)
    }
}

/// The movement rule the client predicts with: the direction (at most length 1) times
/// the speed, for `dt` seconds, then clamped to the walls.
pub fn move_player(pos: Vec2, dir: Vec2, dt: f32) -> Vec2 {
    clamp_to_arena(pos + velocity(dir) * dt)
}

/// The velocity an input direction gives.
pub fn velocity(dir: Vec2) -> Vec2 {
    dir.clamp_length_max(1.0) * SPEED
}

fn clamp_to_arena(pos: Vec2) -> Vec2 {
    pos.clamp(Vec2::splat(RADIUS), Vec2::splat(ARENA_SIZE - RADIUS))
}

impl Game for Arena {
    const NAME: &'static str = "arena";
    type Entity = ArenaEntity;
    type Lobby = ();
    type Private = ();
    type Input = ArenaInput;
    type Message = NoMessages;
    type Event = NoMessages;

    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, NoMessages>,
        seat: PlayerRef,
        _name: &str,
        _options: &GameOptions,
    ) -> Result<(), String> {
        let at = self.players.partition_point(|p| p.seat < seat);
        let entity = ctx.spawn();
        self.players.insert(
            at,
            Player {
                seat,
                entity,
                pos: Self::spawn_point(seat.0.saturating_sub(1)),
                vel: Vec2::ZERO,
                score: 0,
            },
        );
        if self.it.is_none() {
            self.it = Some(seat);
        }
        Ok(())
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, NoMessages>, seat: PlayerRef, _: LeaveReason) {
        if let Some(p) = self.player(seat) {
            ctx.despawn(p.entity);
        }
        self.players.retain(|p| p.seat != seat);
        if self.it == Some(seat) {
            self.it = self.players.first().map(|p| p.seat);
            self.no_tag_back = None;
        }
    }

    fn step(
        &mut self,
        _ctx: &mut Ctx<'_, NoMessages>,
        inputs: &[PlayerInput<ArenaInput>],
        tick: u32,
        dt: f32,
    ) {
        // Move everyone by their own input (both lists are in ascending seat order).
        let mut next_input = inputs.iter().peekable();
        for p in &mut self.players {
            while next_input.next_if(|i| i.player < p.seat).is_some() {}
            let dir = next_input
                .next_if(|i| i.player == p.seat)
                .map_or(Vec2::ZERO, |i| i.input.dir);
            p.vel = velocity(dir);
            p.pos = move_player(p.pos, dir, dt);
        }

        // Push overlapping players apart, half the overlap each, in a fixed order.
        let n = self.players.len();
        for i in 0..n {
            for j in i + 1..n {
                let delta = self.players[j].pos - self.players[i].pos;
                let dist = delta.length();
                let overlap = 2.0 * RADIUS - dist;
                if overlap > 0.0 {
                    let normal = if dist > 1e-4 {
                        delta / dist
                    } else {
                        // Same spot: separate along x, lower seat to the left.
                        Vec2::X
                    };
                    let push = normal * (overlap / 2.0);
                    self.players[i].pos = clamp_to_arena(self.players[i].pos - push);
                    self.players[j].pos = clamp_to_arena(self.players[j].pos + push);
                }
            }
        }

        // Tag: "it" touching another player passes it on.
        if let Some(it) = self.it {
            let Some(it_pos) = self.position(it) else {
                return;
            };
            let blocked = self
                .no_tag_back
                .filter(|&(_, until)| tick < until)
                .map(|(tagger, _)| tagger);
            let touched = self
                .players
                .iter()
                .filter(|p| p.seat != it && Some(p.seat) != blocked)
                .find(|p| p.pos.distance(it_pos) <= 2.0 * RADIUS + 0.5)
                .map(|p| p.seat);
            if let Some(victim) = touched {
                if let Some(tagger) = self.players.iter_mut().find(|p| p.seat == it) {
                    tagger.score = tagger.score.saturating_add(1);
                }
                self.it = Some(victim);
                self.no_tag_back = Some((it, tick.saturating_add(TAG_BACK_TICKS)));
            }
        }
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        for p in &self.players {
            out.controlled(
                p.entity,
                p.seat,
                &ArenaEntity::Player {
                    pos: p.pos,
                    vel: p.vel,
                    it: self.it == Some(p.seat),
                    score: p.score,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{GameSim, Sim};

    const DT: f32 = 1.0 / 30.0;

    fn p(seat: u16) -> PlayerRef {
        PlayerRef(seat)
    }

    fn sim(seats: &[u16]) -> GameSim<Arena> {
        let mut sim = GameSim::new(Arena::new(), 16).expect("arena's schema is valid");
        for &s in seats {
            sim.join(p(s), "p", &GameOptions::none()).expect("joins");
        }
        sim
    }

    fn go(sim: &mut GameSim<Arena>, seat: u16, seq: u32, dir: Vec2) {
        sim.push_input(p(seat), seq, seq, &ArenaInput { dir });
    }

    #[test]
    fn players_move_at_speed_and_stop_at_walls() {
        let mut sim = sim(&[1]);
        sim.game_mut().set_position(p(1), Vec2::new(500.0, 500.0));
        go(&mut sim, 1, 1, Vec2::X);
        for tick in 0..30 {
            sim.step(tick, DT);
        }
        let pos = sim.game().position(p(1)).expect("spawned");
        assert!((pos.x - 700.0).abs() < 1e-2, "{pos}");
        assert!((pos.y - 500.0).abs() < 1e-4);
        for tick in 30..200 {
            sim.step(tick, DT);
        }
        assert_eq!(
            sim.game().position(p(1)).expect("spawned").x,
            ARENA_SIZE - RADIUS
        );
    }

    #[test]
    fn long_directions_are_capped_at_speed() {
        let mut sim = sim(&[1]);
        sim.game_mut().set_position(p(1), Vec2::new(500.0, 500.0));
        // Clamped to the declared range first (1, 1), then to length 1.
        go(&mut sim, 1, 1, Vec2::new(3.0, 4.0));
        sim.step(0, 1.0 / 10.0);
        let moved = sim.game().position(p(1)).expect("spawned") - Vec2::new(500.0, 500.0);
        assert!((moved.length() - 20.0).abs() < 1e-3, "{moved}");
    }

    #[test]
    fn overlapping_players_are_pushed_apart() {
        let mut sim = sim(&[1, 2]);
        sim.game_mut().set_position(p(1), Vec2::new(500.0, 500.0));
        sim.game_mut().set_position(p(2), Vec2::new(510.0, 500.0));
        sim.step(0, DT);
        let d = sim
            .game()
            .position(p(1))
            .expect("p1")
            .distance(sim.game().position(p(2)).expect("p2"));
        assert!((d - 2.0 * RADIUS).abs() < 1e-3, "{d}");
    }

    #[test]
    fn touching_passes_it_and_scores() {
        let mut sim = sim(&[1, 2]);
        assert_eq!(sim.game().it(), Some(p(1)));
        sim.game_mut().set_position(p(1), Vec2::new(100.0, 100.0));
        sim.game_mut()
            .set_position(p(2), Vec2::new(100.0 + 2.0 * RADIUS + 5.0, 100.0));
        go(&mut sim, 1, 1, Vec2::X);
        sim.step(0, DT);
        assert_eq!(sim.game().it(), Some(p(2)));
        assert_eq!(sim.game().score(p(1)), Some(1));
        // No tag-back within the grace ticks, even while touching.
        go(&mut sim, 1, 2, Vec2::ZERO);
        sim.step(1, DT);
        assert_eq!(sim.game().it(), Some(p(2)));
        sim.step(TAG_BACK_TICKS + 1, DT);
        assert_eq!(sim.game().it(), Some(p(1)));
        assert_eq!(sim.game().score(p(2)), Some(1));
    }

    #[test]
    fn it_passes_on_when_it_leaves_and_the_state_shows_it() {
        let mut sim = sim(&[4, 2]);
        assert_eq!(sim.game().it(), Some(p(4)));
        let gone = sim.game().entity(p(4)).expect("entity");
        sim.leave(p(4), LeaveReason::Left);
        assert_eq!(sim.game().it(), Some(p(2)));
        let state = sim.state(0).expect("state");
        let ids: Vec<u32> = state.entities().iter().map(|e| e.id).collect();
        let kept = sim.game().entity(p(2)).expect("entity");
        assert_eq!(ids, vec![kept.get()]);
        assert_ne!(gone, kept);
        let e = &state.entities()[0];
        assert_eq!(e.controlled_by, p(2));
        let entity = state
            .entity_values(sim.codec(), kept.get())
            .expect("written");
        assert_eq!(entity[2], ticksync_protocol::state::Value::Bool(true));
    }

    #[test]
    fn entity_ids_are_never_reused() {
        let mut sim = sim(&[1]);
        let first = sim.game().entity(p(1)).expect("entity");
        sim.leave(p(1), LeaveReason::Dropped);
        sim.join(p(1), "again", &GameOptions::none())
            .expect("joins");
        let second = sim.game().entity(p(1)).expect("entity");
        assert!(second > first);
    }

    #[test]
    fn ten_players_cost_no_more_than_protocol_1_in_full() {
        use ticksync_protocol::schema::{FieldType, Messages as _};
        use ticksync_protocol::state::Encoder;

        // The shape protocol/tests/state.rs pins (arena_costs_no_more_than_protocol_1).
        let fields = &ArenaEntity::types().expect("types")[0].fields;
        let types: Vec<&FieldType> = fields.iter().map(|f| &f.ty).collect();
        assert!(matches!(
            types[..3],
            [
                FieldType::Vec2 { .. },
                FieldType::Vec2 { .. },
                FieldType::Bool
            ]
        ));
        assert_eq!(*types[3], FieldType::VarUint { max: 65535 });

        let mut sim = sim(&(1..=10).collect::<Vec<_>>());
        for seat in 1..=10u16 {
            let a = f32::from(seat);
            go(&mut sim, seat, 1, Vec2::new(a.cos(), a.sin()));
        }
        sim.step(0, DT);
        let state = sim.state(1).expect("state");
        let mut full = Vec::new();
        Encoder::new().encode_snapshot(sim.codec(), None, &state, p(3), 1, &mut full);
        // Scores of 0 take 4 bits each (a fixed u16 would be 16), ack 1 one LEB128 byte:
        // 87 B, protocol 1 93 B.
        assert_eq!(full.len(), 87);
    }

    #[test]
    fn simulation_is_deterministic() {
        let run = || {
            let mut sim = sim(&(1..=10).collect::<Vec<_>>());
            for tick in 0..300u32 {
                for seat in 1..=10u16 {
                    let a = (tick / 20 + u32::from(seat)) as f32;
                    go(&mut sim, seat, tick + 1, Vec2::new(a.cos(), a.sin()));
                }
                sim.step(tick, DT);
            }
            (1..=10)
                .map(|s| sim.game().position(p(s)).expect("here"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
