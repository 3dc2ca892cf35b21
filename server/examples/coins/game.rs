//! coins: a complete small game on ticksync's Game API, as an outside crate writes one
//! (docs/GAME_GUIDE.md walks through it). Players run around an 800 x 800 field and pick
//! up coins; how many a player carries is private (the others see only where everyone
//! is); a player may drop a coin to bait the others; the first to carry the lobby's
//! target wins the round, and a new round starts. A lobby created with a `password`
//! option admits only players who join with the same one.

use glam::Vec2;
use ticksync_protocol::{Messages, State};
use ticksync_server::game::{
    Ctx, EntityId, Game, GameOptions, LeaveReason, LobbySpec, PlayerInput, PlayerRef, Writer,
    rank_by_score,
};

/// Side of the square field.
pub const SIZE: f32 = 800.0;
/// Running speed, units per second.
pub const SPEED: f32 = 180.0;
/// How close a runner must come to a coin to pick it up.
pub const REACH: f32 = 24.0;
/// Coins on the field: while fewer lie there (dropped ones count), new ones appear.
pub const COINS: usize = 6;
/// Coins to carry to win, unless the lobby's `target` option says otherwise.
pub const TARGET: u8 = 10;
/// Ticks a dropped coin lies before anyone can pick it up.
pub const DROP_DELAY: u32 = 30;

/// The entity kinds: one variant each; the variant's index is the kind's number on the
/// wire, its fields are what every client receives.
#[derive(Messages, Debug, Clone, PartialEq)]
pub enum Thing {
    /// A player's runner.
    Runner {
        /// Where it is.
        #[state(range = 0.0..=800.0, precision = 0.01)]
        pos: Vec2,
        /// Its velocity (clients extrapolate with it).
        #[state(range = -180.0..=180.0, precision = 0.01)]
        vel: Vec2,
    },
    /// A coin lying on the field.
    Coin {
        /// Where it lies.
        #[state(range = 0.0..=800.0, precision = 0.5)]
        pos: Vec2,
    },
}

/// A player's controls: the direction to run in (the demo client's WASD).
#[derive(State, Debug, Clone, Copy, PartialEq, Default)]
pub struct Run {
    /// Direction, length at most 1 (the server clamps each axis to the range).
    #[state(range = -1.0..=1.0, precision = 0.0001)]
    pub dir: Vec2,
}

/// Lobby-wide state: every player sees it.
#[derive(State, Debug, Clone, PartialEq, Default)]
pub struct Round {
    /// Coins to carry to win this round.
    #[state(range = 1..=99)]
    pub target: u8,
    /// Whole seconds since the round started.
    pub seconds: u16,
}

/// Private state: only its player receives it.
#[derive(State, Debug, Clone, PartialEq, Default)]
pub struct Purse {
    /// Coins carried this round.
    #[state(range = 0..=99)]
    pub carried: u8,
}

/// What a client may ask of the game.
#[derive(Messages, Debug, Clone, PartialEq)]
pub enum Ask {
    /// Drop one carried coin where the runner stands.
    Drop,
}

/// What the game tells the clients.
#[derive(Messages, Debug, Clone, PartialEq)]
pub enum News {
    /// Someone picked up a coin (how many they carry stays private).
    Collected {
        /// Who.
        by: PlayerRef,
    },
}

#[derive(Debug, Clone)]
struct Runner {
    seat: PlayerRef,
    name: String,
    entity: EntityId,
    pos: Vec2,
    vel: Vec2,
    carried: u8,
}

#[derive(Debug, Clone)]
struct Coin {
    entity: EntityId,
    pos: Vec2,
    /// The first tick it may be picked up at.
    ready_at: u32,
}

/// One lobby's game.
#[derive(Debug, Clone)]
pub struct Coins {
    target: u8,
    password: Option<String>,
    /// Ascending seats.
    runners: Vec<Runner>,
    coins: Vec<Coin>,
    round_time: f32,
    /// The game's own random numbers (xorshift32): seeded from the lobby's name, so a
    /// lobby replays exactly.
    rng: u32,
}

/// One tick of running: `dir` (at most length 1) times [`SPEED`], kept on the field.
/// Returns the new position and velocity.
pub fn run(pos: Vec2, dir: Vec2, dt: f32) -> (Vec2, Vec2) {
    let vel = dir.clamp_length_max(1.0) * SPEED;
    ((pos + vel * dt).clamp(Vec2::ZERO, Vec2::splat(SIZE)), vel)
}

impl Coins {
    /// The game of a new lobby: `target` and `password` come from its creation options.
    pub fn for_lobby(spec: &LobbySpec) -> Result<Self, String> {
        let target = match spec.options.get("target") {
            None => TARGET,
            Some(t) => t
                .parse()
                .ok()
                .filter(|t| (1..=99).contains(t))
                .ok_or("target must be a number from 1 to 99")?,
        };
        let seed = spec.name.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        Ok(Self {
            target,
            password: spec.options.get("password").map(str::to_owned),
            runners: Vec::new(),
            coins: Vec::new(),
            round_time: 0.0,
            rng: seed | 1,
        })
    }

    fn random_spot(&mut self) -> Vec2 {
        let mut next = || {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            (self.rng % 1000) as f32 / 1000.0
        };
        Vec2::new(40.0 + next() * (SIZE - 80.0), 40.0 + next() * (SIZE - 80.0))
    }
}

impl Game for Coins {
    const NAME: &'static str = "coins";
    type Entity = Thing;
    type Lobby = Round;
    type Private = Purse;
    type Input = Run;
    type Message = Ask;
    type Event = News;

    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, News>,
        seat: PlayerRef,
        name: &str,
        options: &GameOptions,
    ) -> Result<(), String> {
        if self.password.is_some() && options.get("password") != self.password.as_deref() {
            return Err("this lobby needs its password (join option `password`)".into());
        }
        let angle = f32::from(seat.0) * 2.4;
        let runner = Runner {
            seat,
            name: name.to_owned(),
            entity: ctx.spawn(),
            pos: Vec2::splat(SIZE / 2.0) + Vec2::from_angle(angle) * 200.0,
            vel: Vec2::ZERO,
            carried: 0,
        };
        let at = self.runners.partition_point(|r| r.seat < seat);
        self.runners.insert(at, runner);
        Ok(())
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, News>, seat: PlayerRef, _: LeaveReason) {
        // Whatever the reason, the runner goes, and what it carried with it.
        if let Some(r) = self.runners.iter().find(|r| r.seat == seat) {
            ctx.despawn(r.entity);
        }
        self.runners.retain(|r| r.seat != seat);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, News>, seat: PlayerRef, message: Ask) {
        let Ask::Drop = message;
        let Some(r) = self.runners.iter_mut().find(|r| r.seat == seat) else {
            return;
        };
        if r.carried > 0 {
            r.carried -= 1;
            let coin = Coin {
                entity: ctx.spawn(),
                pos: r.pos,
                ready_at: ctx.tick() + DROP_DELAY,
            };
            self.coins.push(coin);
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_, News>, inputs: &[PlayerInput<Run>], tick: u32, dt: f32) {
        self.round_time += dt;
        // Picked-up coins come back somewhere else.
        while self.coins.len() < COINS {
            let pos = self.random_spot();
            let entity = ctx.spawn();
            self.coins.push(Coin {
                entity,
                pos,
                ready_at: 0,
            });
        }
        for r in &mut self.runners {
            let dir = inputs
                .iter()
                .find(|i| i.player == r.seat)
                .map_or(Vec2::ZERO, |i| i.input.dir);
            (r.pos, r.vel) = run(r.pos, dir, dt);
        }
        // A coin goes to the first runner in reach (ascending seats: deterministic).
        let runners = &mut self.runners;
        self.coins.retain(|coin| {
            let taker = runners
                .iter_mut()
                .find(|r| tick >= coin.ready_at && r.pos.distance(coin.pos) <= REACH);
            let Some(r) = taker else { return true };
            r.carried += 1;
            ctx.despawn(coin.entity);
            ctx.broadcast(News::Collected { by: r.seat });
            false
        });
        if let Some(winner) = self.runners.iter().find(|r| r.carried >= self.target) {
            let summary = format!("{} carried {} coins first", winner.name, self.target);
            let scores = self.runners.iter().map(|r| (r.seat, i32::from(r.carried)));
            ctx.end_match(summary, rank_by_score(scores));
            // A new round: empty purses, fresh coins.
            for r in &mut self.runners {
                r.carried = 0;
            }
            for coin in self.coins.drain(..) {
                ctx.despawn(coin.entity);
            }
            self.round_time = 0.0;
        }
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        out.lobby(&Round {
            target: self.target,
            seconds: self.round_time as u16,
        });
        for r in &self.runners {
            out.private(r.seat, &Purse { carried: r.carried });
            let runner = Thing::Runner {
                pos: r.pos,
                vel: r.vel,
            };
            out.controlled(r.entity, r.seat, &runner);
        }
        for c in &self.coins {
            out.entity(c.entity, &Thing::Coin { pos: c.pos });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ticksync_protocol::state::io::{decode_message, encode_message};
    use ticksync_server::game::{Audience, GameSim, Sim, Standing};

    use super::*;

    const DT: f32 = 1.0 / 30.0;

    fn lobby(options: GameOptions) -> GameSim<Coins> {
        let spec = LobbySpec {
            options,
            ..LobbySpec::new("test", 4)
        };
        let game = Coins::for_lobby(&spec).expect("valid options");
        GameSim::new(game, 4).expect("valid schema")
    }

    fn one_player() -> GameSim<Coins> {
        let mut sim = lobby(GameOptions::none());
        sim.join(PlayerRef(1), "ann", &GameOptions::none())
            .expect("joins");
        sim.step(0, DT);
        sim
    }

    fn carried(sim: &GameSim<Coins>, seat: u16) -> u8 {
        let runner = sim
            .game()
            .runners
            .iter()
            .find(|r| r.seat == PlayerRef(seat));
        runner.expect("seated").carried
    }

    /// Puts coin `i` under seat 1's runner.
    fn coin_under_runner(sim: &mut GameSim<Coins>, i: usize) {
        let game = sim.game_mut();
        game.coins[i].pos = game.runners[0].pos;
    }

    #[test]
    fn a_coin_in_reach_is_collected_announced_and_respawned_elsewhere() {
        let mut sim = one_player();
        assert_eq!(sim.game().coins.len(), COINS);
        coin_under_runner(&mut sim, 2);
        let taken = sim.game().coins[2].entity;
        let at = sim.game().coins[2].pos;
        sim.step(1, DT);
        assert_eq!(carried(&sim, 1), 1);
        assert!(!sim.live_entities().any(|e| e == taken), "despawned");
        let news = sim.take_events();
        assert_eq!(
            news,
            [(Audience::Everyone, News::Collected { by: PlayerRef(1) })]
        );
        sim.step(2, DT);
        let coins = &sim.game().coins;
        assert_eq!(coins.len(), COINS, "a new coin replaces it");
        let newest = coins.last().expect("coins");
        assert!(newest.entity.get() > taken.get() && newest.pos != at);
        // The state written: the runner (controlled by its player) and the coins.
        let state = sim.state(3).expect("state");
        let entities = state.entities();
        assert_eq!(entities.len(), 1 + COINS);
        assert_eq!(entities[0].controlled_by, PlayerRef(1));
        assert_eq!(sim.stale_writes(), 0);
    }

    #[test]
    fn runners_follow_their_input_and_stay_on_the_field() {
        let mut sim = one_player();
        let start = sim.game().runners[0].pos;
        sim.push_input(PlayerRef(1), 1, 1, &Run { dir: Vec2::X });
        sim.step(1, DT);
        let moved = sim.game().runners[0].pos;
        assert!(
            (moved.x - start.x - SPEED * DT).abs() < 0.01,
            "{start} -> {moved}"
        );
        for tick in 2..300 {
            sim.step(tick, DT);
        }
        assert_eq!(sim.game().runners[0].pos.x, SIZE);
    }

    #[test]
    fn a_password_lobby_refuses_joins_without_it() {
        let mut sim = lobby(GameOptions::none().with("password", "gold"));
        let wrong = GameOptions::none().with("password", "silver");
        for options in [GameOptions::none(), wrong] {
            let refused = sim.join(PlayerRef(1), "bob", &options);
            assert!(refused.expect_err("refused").contains("password"));
        }
        let right = GameOptions::none().with("password", "gold");
        sim.join(PlayerRef(1), "bob", &right).expect("joins");
    }

    #[test]
    fn the_target_option_is_checked_when_the_lobby_is_made() {
        for bad in ["0", "100", "ten"] {
            let spec = LobbySpec {
                options: GameOptions::none().with("target", bad),
                ..LobbySpec::new("l", 4)
            };
            assert!(Coins::for_lobby(&spec).is_err(), "{bad}");
        }
        let sim = lobby(GameOptions::none().with("target", "3"));
        assert_eq!(sim.game().target, 3);
        assert_eq!(lobby(GameOptions::none()).game().target, TARGET);
    }

    #[test]
    fn a_dropped_coin_lies_a_while_before_it_can_be_taken() {
        let mut sim = one_player();
        coin_under_runner(&mut sim, 0);
        sim.step(1, DT);
        assert_eq!(carried(&sim, 1), 1);
        let codec = Arc::clone(sim.codec());
        let mut bytes = Vec::new();
        encode_message(&codec, &Ask::Drop, &mut bytes);
        let drop = decode_message(&codec, &bytes).expect("a valid message");
        sim.message(PlayerRef(1), &drop);
        assert_eq!(carried(&sim, 1), 0);
        assert_eq!(
            sim.game().coins.len(),
            COINS,
            "the dropped coin fills the gap"
        );
        // Standing on it: not taken before the delay.
        for tick in 2..2 + DROP_DELAY {
            sim.step(tick, DT);
            assert_eq!(carried(&sim, 1), 0, "tick {tick}");
        }
        sim.step(2 + DROP_DELAY, DT);
        assert_eq!(carried(&sim, 1), 1);
        // Nothing to drop: nothing happens.
        sim.message(PlayerRef(1), &drop);
        sim.message(PlayerRef(1), &drop);
        assert_eq!(carried(&sim, 1), 0);
        assert_eq!(sim.game().coins.len(), COINS);
    }

    #[test]
    fn reaching_the_target_ends_the_match_with_results_and_starts_a_round() {
        let mut sim = lobby(GameOptions::none().with("target", "2"));
        sim.join(PlayerRef(1), "ann", &GameOptions::none())
            .expect("joins");
        sim.join(PlayerRef(2), "bo", &GameOptions::none())
            .expect("joins");
        sim.step(0, DT);
        for tick in 1..3 {
            coin_under_runner(&mut sim, 0);
            sim.step(tick, DT);
        }
        let end = sim.take_match_end().expect("the match ended");
        assert_eq!(end.summary, "ann carried 2 coins first");
        let place = |player, score, place| Standing {
            player: PlayerRef(player),
            score,
            place,
        };
        assert_eq!(end.results, [place(1, 2, 1), place(2, 0, 2)]);
        assert_eq!(sim.close_requested(), None, "the lobby goes on");
        assert_eq!((carried(&sim, 1), carried(&sim, 2)), (0, 0));
        assert!(sim.game().coins.is_empty());
        sim.step(3, DT);
        assert_eq!(sim.game().coins.len(), COINS);
    }

    /// The browser predicts the runner with `run` in JavaScript (the module on
    /// docs/GAME_GUIDE.md); these cases, the game's own positions tick by tick, are what
    /// demo-client/test/game.test.js replays it against. `UPDATE_GOLDEN=1` rewrites them.
    #[test]
    fn prediction_cases_are_the_games_own_positions() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../server/examples/coins/prediction.json"
        );
        let cases: Vec<serde_json::Value> = [
            ("right", vec![(1.0, 0.0); 30]),
            ("diagonal", vec![(0.6, 0.8); 20]),
            ("too_long_is_capped", vec![(2.0, -3.0); 15]),
            ("into_the_corner", vec![(-1.0, -1.0); 150]),
            (
                "stop_and_go",
                [
                    vec![(0.0, 1.0); 5],
                    vec![(0.0, 0.0); 5],
                    vec![(-0.3, 0.2); 5],
                ]
                .concat(),
            ),
        ]
        .into_iter()
        .map(|(name, sent)| {
            let mut sim = one_player();
            let start = sim.game().runners[0].pos;
            let (mut inputs, mut positions) = (Vec::new(), Vec::new());
            for (tick, &(x, y)) in sent.iter().enumerate() {
                let tick = tick as u32 + 1;
                sim.push_input(
                    PlayerRef(1),
                    tick,
                    tick,
                    &Run {
                        dir: Vec2::new(x, y),
                    },
                );
                // What the game sees: the input as the schema quantizes it.
                let mut row = ticksync_protocol::state::Row::default();
                row.set(
                    sim.codec().input_row(),
                    &Run {
                        dir: Vec2::new(x, y),
                    },
                );
                let dir = row.get::<Run>(sim.codec().input_row()).dir;
                inputs.push([dir.x, dir.y]);
                sim.step(tick, DT);
                let pos = sim.game().runners[0].pos;
                positions.push([pos.x, pos.y]);
            }
            serde_json::json!({
                "name": name,
                "start": [start.x, start.y],
                "inputs": inputs,
                "positions": positions,
            })
        })
        .collect();
        let golden = serde_json::json!({
            "about": "The coins runner's positions, tick by tick, from GameSim (server/examples/coins/game.rs); inputs as the schema quantizes them.",
            "dt": DT,
            "cases": cases,
        });
        let fresh = serde_json::to_string_pretty(&golden).expect("JSON") + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &fresh).expect("write the cases");
        }
        let stored =
            std::fs::read_to_string(path).expect("the cases (UPDATE_GOLDEN=1 writes them)");
        assert!(
            stored == fresh,
            "{path} is stale: UPDATE_GOLDEN=1 rewrites it"
        );
    }

    #[test]
    fn a_leaving_player_takes_its_runner_along() {
        let mut sim = one_player();
        let runner = sim.game().runners[0].entity;
        sim.leave(PlayerRef(1), LeaveReason::Dropped);
        assert!(sim.game().runners.is_empty());
        assert!(!sim.live_entities().any(|e| e == runner));
    }
}
