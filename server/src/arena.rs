//! "arena", the demo game: top-down players in a 1000 x 1000 arena moving at 200 units/s
//! in their input direction, clamped to the walls, pushed apart when they overlap, and a
//! game of tag: one player is "it"; touching another player passes it on and scores the
//! tagger a point. The player just tagged cannot tag straight back for a second.

use glam::Vec2;
use ticksync_protocol::{EntityId, ScoreEntry};

use crate::game::legacy::{EntityView, Game, PlayerInput};

/// Arena side length, in world units.
pub const ARENA_SIZE: f32 = 1000.0;
/// Player speed, in units per second.
pub const SPEED: f32 = 200.0;
/// Player radius, in units.
pub const RADIUS: f32 = 20.0;
/// Ticks during which a freshly tagged player cannot tag back the player who tagged it.
pub const TAG_BACK_TICKS: u32 = 30;
/// Entity flag: this player is "it".
pub const FLAG_IT: u8 = 1;

#[derive(Debug, Clone)]
struct Player {
    id: EntityId,
    pos: Vec2,
    vel: Vec2,
    score: i32,
}

/// The arena game's world.
#[derive(Debug, Clone, Default)]
pub struct Arena {
    /// Players in ascending id order.
    players: Vec<Player>,
    /// The player who is "it", if any.
    it: Option<EntityId>,
    /// Who tagged `it` last, and until which tick `it` may not tag them back.
    no_tag_back: Option<(EntityId, u32)>,
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// The player who is "it".
    pub fn it(&self) -> Option<EntityId> {
        self.it
    }

    /// A player's position.
    pub fn position(&self, id: EntityId) -> Option<Vec2> {
        self.players.iter().find(|p| p.id == id).map(|p| p.pos)
    }

    /// A player's score.
    pub fn score(&self, id: EntityId) -> Option<i32> {
        self.players.iter().find(|p| p.id == id).map(|p| p.score)
    }

    /// Puts a player somewhere (tests and tools).
    pub fn set_position(&mut self, id: EntityId, pos: Vec2) {
        if let Some(p) = self.players.iter_mut().find(|p| p.id == id) {
            p.pos = clamp_to_arena(pos);
        }
    }

    /// Spawn points spread over the arena on a golden-angle spiral, so that players
    /// joining one after another do not overlap.
    pub fn spawn_point(id: EntityId) -> Vec2 {
        let i = f32::from(id);
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
    fn world_size(&self) -> Vec2 {
        Vec2::splat(ARENA_SIZE)
    }

    fn max_speed(&self) -> f32 {
        SPEED
    }

    fn spawn(&mut self, id: EntityId) {
        let at = self.players.partition_point(|p| p.id < id);
        if self.players.get(at).is_some_and(|p| p.id == id) {
            return;
        }
        self.players.insert(
            at,
            Player {
                id,
                pos: Self::spawn_point(id),
                vel: Vec2::ZERO,
                score: 0,
            },
        );
        if self.it.is_none() {
            self.it = Some(id);
        }
    }

    fn despawn(&mut self, id: EntityId) {
        self.players.retain(|p| p.id != id);
        if self.it == Some(id) {
            self.it = self.players.first().map(|p| p.id);
            self.no_tag_back = None;
        }
    }

    fn step(&mut self, inputs: &[(EntityId, PlayerInput)], tick: u32, dt: f32) {
        // Move everyone by their own input (both lists are in ascending id order).
        let mut next_input = inputs.iter().peekable();
        for p in &mut self.players {
            while next_input.next_if(|(id, _)| *id < p.id).is_some() {}
            let dir = next_input
                .next_if(|(id, _)| *id == p.id)
                .map_or(Vec2::ZERO, |(_, input)| input.dir);
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
                        // Same spot: separate along x, lower id to the left.
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
                .filter(|p| p.id != it && Some(p.id) != blocked)
                .find(|p| p.pos.distance(it_pos) <= 2.0 * RADIUS + 0.5)
                .map(|p| p.id);
            if let Some(victim) = touched {
                if let Some(tagger) = self.players.iter_mut().find(|p| p.id == it) {
                    tagger.score += 1;
                }
                self.it = Some(victim);
                self.no_tag_back = Some((it, tick.saturating_add(TAG_BACK_TICKS)));
            }
        }
    }

    fn view(&self, out: &mut Vec<EntityView>) {
        out.extend(self.players.iter().map(|p| EntityView {
            id: p.id,
            pos: p.pos,
            vel: p.vel,
            flags: if self.it == Some(p.id) { FLAG_IT } else { 0 },
        }));
    }

    fn scores(&self, out: &mut Vec<ScoreEntry>) {
        out.extend(self.players.iter().map(|p| ScoreEntry {
            entity: p.id,
            score: p.score,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f32 = 1.0 / 30.0;

    fn input(dir: Vec2) -> PlayerInput {
        PlayerInput { dir, buttons: 0 }
    }

    #[test]
    fn players_move_at_speed_and_stop_at_walls() {
        let mut arena = Arena::new();
        arena.spawn(0);
        arena.set_position(0, Vec2::new(500.0, 500.0));
        for tick in 0..30 {
            arena.step(&[(0, input(Vec2::X))], tick, DT);
        }
        let pos = arena.position(0).expect("spawned");
        assert!((pos.x - 700.0).abs() < 1e-2, "{pos}");
        assert!((pos.y - 500.0).abs() < 1e-4);
        for tick in 30..200 {
            arena.step(&[(0, input(Vec2::X))], tick, DT);
        }
        assert_eq!(arena.position(0).expect("spawned").x, ARENA_SIZE - RADIUS);
    }

    #[test]
    fn long_directions_are_capped_at_speed() {
        let mut arena = Arena::new();
        arena.spawn(0);
        arena.set_position(0, Vec2::new(500.0, 500.0));
        arena.step(&[(0, input(Vec2::new(3.0, 4.0)))], 0, 1.0 / 10.0);
        let moved = arena.position(0).expect("spawned") - Vec2::new(500.0, 500.0);
        assert!((moved.length() - 20.0).abs() < 1e-3);
    }

    #[test]
    fn overlapping_players_are_pushed_apart() {
        let mut arena = Arena::new();
        arena.spawn(0);
        arena.spawn(1);
        arena.set_position(0, Vec2::new(500.0, 500.0));
        arena.set_position(1, Vec2::new(510.0, 500.0));
        arena.step(&[], 0, DT);
        let d = arena
            .position(0)
            .expect("p0")
            .distance(arena.position(1).expect("p1"));
        assert!((d - 2.0 * RADIUS).abs() < 1e-3, "{d}");
    }

    #[test]
    fn touching_passes_it_and_scores() {
        let mut arena = Arena::new();
        arena.spawn(0);
        arena.spawn(1);
        assert_eq!(arena.it(), Some(0));
        arena.set_position(0, Vec2::new(100.0, 100.0));
        arena.set_position(1, Vec2::new(100.0 + 2.0 * RADIUS + 5.0, 100.0));
        arena.step(&[(0, input(Vec2::X))], 0, DT);
        assert_eq!(arena.it(), Some(1));
        assert_eq!(arena.score(0), Some(1));
        // No tag-back within the grace ticks, even while touching.
        arena.step(&[], 1, DT);
        assert_eq!(arena.it(), Some(1));
        arena.step(&[], TAG_BACK_TICKS + 1, DT);
        assert_eq!(arena.it(), Some(0));
        assert_eq!(arena.score(1), Some(1));
    }

    #[test]
    fn it_passes_on_when_it_leaves() {
        let mut arena = Arena::new();
        arena.spawn(3);
        arena.spawn(1);
        assert_eq!(arena.it(), Some(3));
        arena.despawn(3);
        assert_eq!(arena.it(), Some(1));
        let mut views = Vec::new();
        arena.view(&mut views);
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].flags, FLAG_IT);
    }

    #[test]
    fn simulation_is_deterministic() {
        let run = || {
            let mut arena = Arena::new();
            for id in 0..10 {
                arena.spawn(id);
            }
            for tick in 0..300u32 {
                let inputs: Vec<_> = (0..10u8)
                    .map(|id| {
                        let a = (tick / 20 + u32::from(id)) as f32;
                        (id, input(Vec2::new(a.cos(), a.sin())))
                    })
                    .collect();
                arena.step(&inputs, tick, DT);
            }
            let mut views = Vec::new();
            arena.view(&mut views);
            views
        };
        assert_eq!(run(), run());
    }
}
