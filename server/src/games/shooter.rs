//! "shooter": a top-down shooter, the built-in game that needs what arena cannot. Ships
//! fly with momentum towards their input direction and aim freely; the fire button shoots
//! bullets (entities the game spawns and removes), a hit costs [`DAMAGE`] health, a ship at
//! 0 dies (a [`ShooterEvent::Kill`] to everyone) and respawns [`RESPAWN_SECS`] later. Ammo
//! is private to its player: a magazine of [`MAGAZINE`] rounds, reloaded when empty or on
//! the reload button. The match starts once `min_players` are in, runs `match_secs`
//! (its time left is lobby state) and ends when time is up or someone reaches
//! `kill_limit`, with the standings as its results.
//!
//! [`Shooter`] is a [`Game`] on the public Game API only, as an outside crate's game would
//! be: deterministic, no clock and no I/O (durations are counted in ticks of the `dt`
//! that `step` receives), unit-tested below through a `GameSim` without a runtime. Ships
//! and bullets are entities it spawns; the ammo is the private row; the phase, time left
//! and kill limit are the lobby row; hits and kills are events to everyone; the match
//! ends with `end_match` (kills are the score) and closes the lobby.
//!
//! Client prediction replays [`move_ship`] (the only rule that moves the controlled ship);
//! `server/golden/shooter-prediction.json` holds cases generated from it.

use glam::Vec2;
use ticksync_protocol::state::{Button, PlayerRef};
use ticksync_protocol::{Messages, State, StateEnum};

use crate::game::{
    Ctx, EntityId, Game, GameOptions, LeaveReason, LobbySpec, NoMessages, PlayerInput, Standing,
    Writer,
};

/// World side length, in world units (the world is square).
pub const WORLD_SIZE: f32 = 1200.0;
/// Ship radius, in units (for walls and bullet hits).
pub const SHIP_RADIUS: f32 = 16.0;
/// Top speed, in units per second.
pub const SPEED: f32 = 240.0;
/// Acceleration towards the input velocity, in units per second squared (full speed from
/// rest in 0.2 s).
pub const ACCEL: f32 = 1200.0;
/// Bullet speed, in units per second.
pub const BULLET_SPEED: f32 = 700.0;
/// Seconds a bullet flies before it vanishes: long enough to cross the spawn ring
/// (ships spawned opposite each other are in range).
pub const BULLET_SECS: f32 = 1.5;
/// Distance from a ship's centre at which its bullets appear.
pub const MUZZLE: f32 = SHIP_RADIUS + 4.0;
/// Seconds between two shots of one ship.
pub const FIRE_COOLDOWN_SECS: f32 = 0.15;
/// Health of a fresh ship.
pub const MAX_HEALTH: u8 = 100;
/// Health one bullet takes.
pub const DAMAGE: u8 = 25;
/// Rounds in a full magazine.
pub const MAGAZINE: u8 = 12;
/// Seconds a reload takes.
pub const RELOAD_SECS: f32 = 1.5;
/// Seconds a dead ship waits before it respawns.
pub const RESPAWN_SECS: f32 = 2.0;
/// Presses of the fire button a ship remembers while its gun cools down (more taps
/// than that within one cooldown are dropped).
pub const MAX_PENDING_SHOTS: u8 = 3;
/// Spawn points, evenly spaced on a ring around the centre.
pub const SPAWN_POINTS: usize = 8;
/// The spawn ring's radius.
pub const SPAWN_RING: f32 = 450.0;

/// The shooter's entity kinds, as every player sees them (the variant index is the
/// kind's wire number).
#[derive(Messages, Debug, Clone, Copy, PartialEq)]
pub enum ShooterEntity {
    /// A player's ship, controlled by its player.
    Ship {
        /// The player flying it.
        owner: PlayerRef,
        /// Position, inside the walls.
        #[state(range = 0.0..=1200.0, precision = 0.05)]
        pos: Vec2,
        /// Velocity, at most [`SPEED`] long.
        #[state(range = -240.0..=240.0, precision = 0.25)]
        vel: Vec2,
        /// Where the gun points, in radians.
        #[state(angle_bits = 10)]
        aim: f32,
        /// Health, 0 when dead.
        #[state(range = 0..=100)]
        health: u8,
        /// False from its death until it respawns.
        alive: bool,
        /// Kills this match (the score; var4 groups: 4 bits up to 7).
        #[state(varint, max = 999)]
        kills: u16,
        /// Deaths this match (var4 groups, as kills).
        #[state(varint, max = 999)]
        deaths: u16,
    },
    /// A bullet in flight, controlled by nobody.
    Bullet {
        /// Who fired it.
        owner: PlayerRef,
        /// Position.
        #[state(range = 0.0..=1200.0, precision = 0.1)]
        pos: Vec2,
        /// Velocity ([`BULLET_SPEED`] long).
        #[state(range = -700.0..=700.0, precision = 1.0)]
        vel: Vec2,
    },
}

/// A ship (what [`ShooterEntity::Ship`] replicates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ship {
    /// The player flying it.
    pub owner: PlayerRef,
    /// Position, inside the walls.
    pub pos: Vec2,
    /// Velocity, at most [`SPEED`] long.
    pub vel: Vec2,
    /// Where the gun points, in radians.
    pub aim: f32,
    /// Health, 0 when dead.
    pub health: u8,
    /// False from its death until it respawns.
    pub alive: bool,
    /// Kills this match (the score).
    pub kills: u16,
    /// Deaths this match.
    pub deaths: u16,
}

impl Ship {
    /// The ship as an entity.
    pub fn entity(&self) -> ShooterEntity {
        ShooterEntity::Ship {
            owner: self.owner,
            pos: self.pos,
            vel: self.vel,
            aim: self.aim,
            health: self.health,
            alive: self.alive,
            kills: self.kills,
            deaths: self.deaths,
        }
    }
}

/// A bullet (what [`ShooterEntity::Bullet`] replicates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bullet {
    /// Who fired it.
    pub owner: PlayerRef,
    /// Position.
    pub pos: Vec2,
    /// Velocity ([`BULLET_SPEED`] long).
    pub vel: Vec2,
}

impl Bullet {
    /// The bullet as an entity.
    pub fn entity(&self) -> ShooterEntity {
        ShooterEntity::Bullet {
            owner: self.owner,
            pos: self.pos,
            vel: self.vel,
        }
    }
}

/// Where the match is.
#[derive(StateEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Fewer than `min_players` are in: warm-up, bullets do no damage.
    #[default]
    Waiting,
    /// The match runs.
    Playing,
    /// Time is up or the kill limit was reached; the world is frozen.
    Ended,
}

/// The lobby-wide state everyone sees.
#[derive(State, Debug, Clone, Copy, PartialEq, Default)]
pub struct Lobby {
    /// Where the match is.
    pub phase: Phase,
    /// Whole seconds left in the match (rounded up; the full length while waiting).
    #[state(range = 0..=3600)]
    pub time_left: u16,
    /// Kills that win the match.
    #[state(range = 1..=999)]
    pub kill_limit: u16,
}

/// What only the ship's own player sees.
#[derive(State, Debug, Clone, Copy, PartialEq, Default)]
pub struct Private {
    /// Rounds left in the magazine.
    #[state(range = 0..=12)]
    pub ammo: u8,
    /// A reload is under way.
    pub reloading: bool,
}

/// One player's controls.
#[derive(State, Debug, Clone, Copy, PartialEq, Default)]
pub struct ShooterInput {
    /// Movement direction (longer than 1 counts as 1).
    #[state(range = -1.0..=1.0, precision = 0.01)]
    pub dir: Vec2,
    /// Aim, in radians.
    #[state(angle_bits = 12)]
    pub aim: f32,
    /// Fire: a press fires once (even released before the next tick); holding it
    /// fires at the gun's rate.
    pub fire: Button,
    /// Reload: a press starts a reload of a magazine that is not full.
    pub reload: Button,
}

/// What the shooter tells every player.
#[derive(Messages, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShooterEvent {
    /// The match began (scores reset).
    MatchStarted,
    /// A bullet hit a ship.
    Hit {
        /// Who fired.
        by: PlayerRef,
        /// Who was hit.
        target: PlayerRef,
        /// The target's health after the hit.
        #[state(range = 0..=100)]
        health: u8,
    },
    /// A ship died.
    Kill {
        /// Who fired the last bullet.
        killer: PlayerRef,
        /// Whose ship died.
        victim: PlayerRef,
    },
}

/// A match's settings, from the lobby's creation options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Length of the match, in seconds (1 to 3600).
    pub match_secs: u16,
    /// Kills that end the match (1 to 999).
    pub kill_limit: u16,
    /// Players needed for the match to start (1 to 250).
    pub min_players: u16,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            match_secs: 180,
            kill_limit: 20,
            min_players: 2,
        }
    }
}

impl Rules {
    /// The rules a lobby's options ask for: `match_secs`, `kill_limit` and `min_players`,
    /// each optional (the defaults otherwise). An unknown key or a value out of range is
    /// an error that says which.
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut rules = Rules::default();
        for (key, value) in options {
            let (slot, max) = match key {
                "match_secs" => (&mut rules.match_secs, 3600),
                "kill_limit" => (&mut rules.kill_limit, 999),
                "min_players" => (&mut rules.min_players, 250),
                _ => {
                    return Err(format!(
                        "unknown option {key:?} (the shooter takes match_secs, kill_limit, min_players)"
                    ));
                }
            };
            *slot = value
                .parse::<u16>()
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| format!("option {key} must be a whole number from 1 to {max}"))?;
        }
        Ok(rules)
    }
}

/// One player's ship and the state only the simulation keeps.
#[derive(Debug, Clone)]
struct Pilot {
    entity: EntityId,
    ship: Ship,
    private: Private,
    /// Tick from which the gun may fire again.
    next_shot: u32,
    /// Fire presses not yet shot.
    pending: u8,
    /// Tick the reload completes, while reloading.
    reload_done: Option<u32>,
    /// Tick the ship respawns, while dead.
    respawn_at: u32,
}

impl Pilot {
    /// Back to full health and a full magazine, still, at `pos`.
    fn refit(&mut self, pos: Vec2) {
        self.ship.pos = pos;
        self.ship.vel = Vec2::ZERO;
        self.ship.health = MAX_HEALTH;
        self.ship.alive = true;
        self.private = Private {
            ammo: MAGAZINE,
            reloading: false,
        };
        self.reload_done = None;
        self.pending = 0;
    }
}

/// A bullet and when it vanishes.
#[derive(Debug, Clone, Copy)]
struct Flying {
    entity: EntityId,
    bullet: Bullet,
    expires: u32,
}

/// The shooter's world (a [`Game`]: hand `factory(|spec| Shooter::for_lobby(spec))` to
/// the server, or step it in a [`crate::game::GameSim`]).
#[derive(Debug, Clone)]
pub struct Shooter {
    rules: Rules,
    phase: Phase,
    /// In ascending seat order.
    pilots: Vec<Pilot>,
    /// In ascending entity order (ids only grow).
    bullets: Vec<Flying>,
    /// The tick the match ends at, once it runs.
    end_tick: u32,
    /// The last tick stepped and its `dt` (for the time left).
    tick: u32,
    dt: f32,
    /// The final standings, once ended.
    results: Vec<Standing>,
}

/// Ticks of `dt` in `secs`, at least one.
pub fn ticks(secs: f32, dt: f32) -> u32 {
    ((secs / dt).round() as u32).max(1)
}

/// The movement rule the client predicts with: the velocity moves towards `dir` (capped
/// at length 1) times [`SPEED`] by at most [`ACCEL`]` × dt`, the ship moves by the new
/// velocity for `dt`, and a wall stops it (that axis's velocity becomes 0). Returns the
/// new position and velocity.
pub fn move_ship(pos: Vec2, vel: Vec2, dir: Vec2, dt: f32) -> (Vec2, Vec2) {
    let target = dir.clamp_length_max(1.0) * SPEED;
    let delta = target - vel;
    let step = ACCEL * dt;
    let dist = delta.length();
    let mut vel = if dist <= step {
        target
    } else {
        vel + delta * (step / dist)
    };
    let mut pos = pos + vel * dt;
    let (lo, hi) = (SHIP_RADIUS, WORLD_SIZE - SHIP_RADIUS);
    if pos.x < lo || pos.x > hi {
        pos.x = pos.x.clamp(lo, hi);
        vel.x = 0.0;
    }
    if pos.y < lo || pos.y > hi {
        pos.y = pos.y.clamp(lo, hi);
        vel.y = 0.0;
    }
    (pos, vel)
}

/// Spawn point `i` (modulo [`SPAWN_POINTS`]).
pub fn spawn_point(i: usize) -> Vec2 {
    let angle = (i % SPAWN_POINTS) as f32 * std::f32::consts::TAU / SPAWN_POINTS as f32;
    Vec2::splat(WORLD_SIZE / 2.0) + Vec2::new(angle.cos(), angle.sin()) * SPAWN_RING
}

/// Where along a bullet's move from `a` to `b` (0 to 1) it comes within `r` of `c`, if
/// it does.
fn segment_hits(a: Vec2, b: Vec2, c: Vec2, r: f32) -> Option<f32> {
    let ab = b - a;
    let len_sq = ab.length_squared();
    let t = if len_sq > 0.0 {
        ((c - a).dot(ab) / len_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((a + ab * t).distance_squared(c) <= r * r).then_some(t)
}

/// Standings by kills (more first), then deaths (fewer first), then seat; equal kills
/// and deaths share a place.
fn rank(ships: impl Iterator<Item = Ship>) -> Vec<Standing> {
    let mut ships: Vec<Ship> = ships.collect();
    ships.sort_by(|a, b| {
        b.kills
            .cmp(&a.kills)
            .then(a.deaths.cmp(&b.deaths))
            .then(a.owner.cmp(&b.owner))
    });
    let mut out: Vec<Standing> = Vec::with_capacity(ships.len());
    for (i, s) in ships.iter().enumerate() {
        let place = match i.checked_sub(1).map(|j| ships[j]) {
            Some(prev) if (prev.kills, prev.deaths) == (s.kills, s.deaths) => {
                out.last().map_or(1, |p| p.place)
            }
            _ => u16::try_from(i + 1).unwrap_or(u16::MAX),
        };
        out.push(Standing {
            player: s.owner,
            score: i32::from(s.kills),
            place,
        });
    }
    out
}

impl Shooter {
    /// An empty world with `rules`.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            phase: Phase::Waiting,
            pilots: Vec::new(),
            bullets: Vec::new(),
            end_tick: 0,
            tick: 0,
            dt: 1.0 / 30.0,
            results: Vec::new(),
        }
    }

    /// The game of a new lobby: its rules from the creation options
    /// ([`Rules::from_options`]; a bad option refuses the lobby with the reason).
    pub fn for_lobby(spec: &LobbySpec) -> Result<Self, String> {
        let rules =
            Rules::from_options(spec.options.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        Ok(Self::new(rules))
    }

    /// The rules.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Where the match is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The spawn point farthest from every other living ship (the lowest index on a tie).
    fn free_spawn_point(&self, except: PlayerRef) -> Vec2 {
        let mut best = (0, f32::NEG_INFINITY);
        for i in 0..SPAWN_POINTS {
            let at = spawn_point(i);
            let nearest = self
                .pilots
                .iter()
                .filter(|p| p.ship.alive && p.ship.owner != except)
                .map(|p| p.ship.pos.distance(at))
                .fold(f32::INFINITY, f32::min);
            if nearest > best.1 {
                best = (i, nearest);
            }
        }
        spawn_point(best.0)
    }

    /// Moves every bullet; a bullet that meets a ship (the first along its path, then
    /// the lowest seat) hits it and vanishes, as do bullets out of time or out of the
    /// world.
    fn move_bullets(&mut self, ctx: &mut Ctx<'_, ShooterEvent>, tick: u32, dt: f32) {
        let damage = self.phase == Phase::Playing;
        let mut i = 0;
        while i < self.bullets.len() {
            let b = self.bullets[i].bullet;
            let to = b.pos + b.vel * dt;
            let mut hit: Option<(usize, f32)> = None;
            for (k, p) in self.pilots.iter().enumerate() {
                if !p.ship.alive || p.ship.owner == b.owner {
                    continue;
                }
                if let Some(t) = segment_hits(b.pos, to, p.ship.pos, SHIP_RADIUS) {
                    if hit.is_none_or(|(_, best)| t < best) {
                        hit = Some((k, t));
                    }
                }
            }
            let gone = match hit {
                Some((k, _)) => {
                    if damage {
                        self.hit(ctx, k, b.owner, tick, dt);
                    }
                    true
                }
                None => {
                    let inside =
                        (0.0..=WORLD_SIZE).contains(&to.x) && (0.0..=WORLD_SIZE).contains(&to.y);
                    self.bullets[i].bullet.pos = to;
                    !inside || tick >= self.bullets[i].expires
                }
            };
            if gone {
                ctx.despawn(self.bullets.remove(i).entity);
            } else {
                i += 1;
            }
        }
    }

    /// Ship `k` takes a bullet from `by`.
    fn hit(
        &mut self,
        ctx: &mut Ctx<'_, ShooterEvent>,
        k: usize,
        by: PlayerRef,
        tick: u32,
        dt: f32,
    ) {
        let target = &mut self.pilots[k];
        target.ship.health = target.ship.health.saturating_sub(DAMAGE);
        let victim = target.ship.owner;
        ctx.broadcast(ShooterEvent::Hit {
            by,
            target: victim,
            health: target.ship.health,
        });
        if target.ship.health > 0 {
            return;
        }
        target.ship.alive = false;
        target.ship.vel = Vec2::ZERO;
        target.ship.deaths = target.ship.deaths.saturating_add(1);
        target.respawn_at = tick + ticks(RESPAWN_SECS, dt);
        target.pending = 0;
        if let Some(killer) = self.pilots.iter_mut().find(|p| p.ship.owner == by) {
            killer.ship.kills = killer.ship.kills.saturating_add(1);
        }
        ctx.broadcast(ShooterEvent::Kill { killer: by, victim });
    }

    fn start_match(&mut self, ctx: &mut Ctx<'_, ShooterEvent>, tick: u32, dt: f32) {
        self.phase = Phase::Playing;
        self.end_tick = tick + ticks(f32::from(self.rules.match_secs), dt);
        for b in self.bullets.drain(..) {
            ctx.despawn(b.entity);
        }
        let n = self.pilots.len().max(1);
        for (i, p) in self.pilots.iter_mut().enumerate() {
            p.refit(spawn_point(i * SPAWN_POINTS / n));
            p.ship.kills = 0;
            p.ship.deaths = 0;
            p.next_shot = tick;
        }
        ctx.broadcast(ShooterEvent::MatchStarted);
    }

    fn end_match(&mut self, ctx: &mut Ctx<'_, ShooterEvent>) {
        self.phase = Phase::Ended;
        for b in self.bullets.drain(..) {
            ctx.despawn(b.entity);
        }
        self.results = rank(self.pilots.iter().map(|p| p.ship));
        let summary = match self.results.first() {
            Some(best) => {
                let winners = self.results.iter().filter(|s| s.place == 1).count();
                if winners > 1 {
                    format!("a draw at {} kills", best.score)
                } else {
                    format!("seat {} wins with {} kills", best.player.0, best.score)
                }
            }
            None => "nobody played".to_owned(),
        };
        ctx.end_match(summary, self.results.clone());
        ctx.close_lobby("the match is over");
    }

    /// The final standings, best first, once the match has ended (empty before).
    pub fn results(&self) -> &[Standing] {
        &self.results
    }

    /// The ships, in ascending seat order.
    pub fn ships(&self) -> impl ExactSizeIterator<Item = &Ship> + '_ {
        self.pilots.iter().map(|p| &p.ship)
    }

    /// One player's ship.
    pub fn ship(&self, seat: PlayerRef) -> Option<&Ship> {
        self.ships().find(|s| s.owner == seat)
    }

    /// The bullets in flight with their entity ids (ascending; an id is never reused).
    pub fn bullets(&self) -> impl ExactSizeIterator<Item = (EntityId, &Bullet)> + '_ {
        self.bullets.iter().map(|b| (b.entity, &b.bullet))
    }

    /// What only `seat` sees.
    pub fn private(&self, seat: PlayerRef) -> Option<Private> {
        self.pilots
            .iter()
            .find(|p| p.ship.owner == seat)
            .map(|p| p.private)
    }

    /// The lobby-wide state.
    pub fn lobby(&self) -> Lobby {
        let time_left = match self.phase {
            Phase::Waiting => u32::from(self.rules.match_secs),
            Phase::Playing => {
                let left = self.end_tick.saturating_sub(self.tick) as f32 * self.dt;
                // Whole seconds, rounded up (tolerating the float error of `dt`).
                (left - 1e-3).ceil().max(0.0) as u32
            }
            Phase::Ended => 0,
        };
        Lobby {
            phase: self.phase,
            time_left: time_left.min(3600) as u16,
            kill_limit: self.rules.kill_limit,
        }
    }

    /// Puts a ship somewhere, still (tests and tools).
    pub fn place(&mut self, seat: PlayerRef, pos: Vec2, aim: f32) {
        if let Some(p) = self.pilots.iter_mut().find(|p| p.ship.owner == seat) {
            p.ship.pos = pos.clamp(
                Vec2::splat(SHIP_RADIUS),
                Vec2::splat(WORLD_SIZE - SHIP_RADIUS),
            );
            p.ship.vel = Vec2::ZERO;
            p.ship.aim = aim;
        }
    }
}

impl Game for Shooter {
    const NAME: &'static str = "shooter";
    type Entity = ShooterEntity;
    type Lobby = Lobby;
    type Private = Private;
    type Input = ShooterInput;
    type Message = NoMessages;
    type Event = ShooterEvent;

    /// Refused once the match has ended; otherwise the ship appears at the spawn point
    /// farthest from the others.
    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, ShooterEvent>,
        seat: PlayerRef,
        _name: &str,
        _options: &GameOptions,
    ) -> Result<(), String> {
        if self.phase == Phase::Ended {
            return Err("this match has ended".into());
        }
        let pos = self.free_spawn_point(seat);
        let at = self.pilots.partition_point(|p| p.ship.owner < seat);
        let mut pilot = Pilot {
            entity: ctx.spawn(),
            ship: Ship {
                owner: seat,
                pos,
                vel: Vec2::ZERO,
                aim: 0.0,
                health: MAX_HEALTH,
                alive: true,
                kills: 0,
                deaths: 0,
            },
            private: Private::default(),
            next_shot: 0,
            pending: 0,
            reload_done: None,
            respawn_at: 0,
        };
        pilot.refit(pos);
        self.pilots.insert(at, pilot);
        Ok(())
    }

    /// The ship and its bullets go.
    fn on_leave(&mut self, ctx: &mut Ctx<'_, ShooterEvent>, seat: PlayerRef, _: LeaveReason) {
        if let Some(at) = self.pilots.iter().position(|p| p.ship.owner == seat) {
            ctx.despawn(self.pilots.remove(at).entity);
        }
        self.bullets.retain(|b| {
            let mine = b.bullet.owner == seat;
            if mine {
                ctx.despawn(b.entity);
            }
            !mine
        });
    }

    fn step(
        &mut self,
        ctx: &mut Ctx<'_, ShooterEvent>,
        inputs: &[PlayerInput<ShooterInput>],
        tick: u32,
        dt: f32,
    ) {
        self.tick = tick;
        self.dt = dt;
        match self.phase {
            Phase::Ended => return,
            Phase::Waiting if self.pilots.len() >= usize::from(self.rules.min_players) => {
                self.start_match(ctx, tick, dt);
            }
            _ => {}
        }

        // Respawns.
        for i in 0..self.pilots.len() {
            let p = &self.pilots[i];
            if !p.ship.alive && tick >= p.respawn_at {
                let pos = self.free_spawn_point(p.ship.owner);
                self.pilots[i].refit(pos);
            }
        }

        // Ships: movement, aim, reloads; the shots they fire come out after the bullets
        // already in flight have moved.
        let mut shots = Vec::new();
        let mut next_input = inputs.iter().peekable();
        let idle = ShooterInput::default();
        for p in &mut self.pilots {
            while next_input.next_if(|i| i.player < p.ship.owner).is_some() {}
            let pi = next_input.next_if(|i| i.player == p.ship.owner);
            let (input, presses, reloads) = match pi {
                Some(pi) => (&pi.input, pi.presses(|i| i.fire), pi.presses(|i| i.reload)),
                None => (&idle, 0, 0),
            };
            if !p.ship.alive {
                continue;
            }
            (p.ship.pos, p.ship.vel) = move_ship(p.ship.pos, p.ship.vel, input.dir, dt);
            if input.aim.is_finite() {
                p.ship.aim = input.aim;
            }

            if p.reload_done.is_some_and(|done| tick >= done) {
                p.private = Private {
                    ammo: MAGAZINE,
                    reloading: false,
                };
                p.reload_done = None;
            }
            if reloads > 0 && p.reload_done.is_none() && p.private.ammo < MAGAZINE {
                p.reload_done = Some(tick + ticks(RELOAD_SECS, dt));
                p.private.reloading = true;
            }

            p.pending = (p.pending + presses).min(MAX_PENDING_SHOTS);
            if p.reload_done.is_some() {
                // Taps during a reload are dropped, not kept for after it.
                p.pending = 0;
                continue;
            }
            if tick >= p.next_shot && (p.pending > 0 || input.fire.held) {
                p.pending = p.pending.saturating_sub(1);
                p.next_shot = tick + ticks(FIRE_COOLDOWN_SECS, dt);
                p.private.ammo = p.private.ammo.saturating_sub(1);
                if p.private.ammo == 0 {
                    p.reload_done = Some(tick + ticks(RELOAD_SECS, dt));
                    p.private.reloading = true;
                    p.pending = 0;
                }
                let aim = Vec2::from_angle(p.ship.aim);
                shots.push(Bullet {
                    owner: p.ship.owner,
                    pos: p.ship.pos + aim * MUZZLE,
                    vel: aim * BULLET_SPEED,
                });
            }
        }

        self.move_bullets(ctx, tick, dt);

        let expires = tick + ticks(BULLET_SECS, dt);
        for bullet in shots {
            self.bullets.push(Flying {
                entity: ctx.spawn(),
                bullet,
                expires,
            });
        }

        if self.phase == Phase::Playing {
            let limit_reached = self
                .pilots
                .iter()
                .any(|p| p.ship.kills >= self.rules.kill_limit);
            if limit_reached || tick >= self.end_tick {
                self.end_match(ctx);
            }
        }
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        out.lobby(&self.lobby());
        for p in &self.pilots {
            out.private(p.ship.owner, &p.private);
            out.controlled(p.entity, p.ship.owner, &p.ship.entity());
        }
        for b in &self.bullets {
            out.entity(b.entity, &b.bullet.entity());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{Audience, GameSim, Sim};

    const DT: f32 = 1.0 / 30.0;
    const A: PlayerRef = PlayerRef(1);
    const B: PlayerRef = PlayerRef(2);

    /// A shooter in a `GameSim`, as the lobby drives it (inputs quantized by the schema).
    struct Run {
        sim: GameSim<Shooter>,
        seq: u32,
    }

    impl Run {
        fn new(rules: Rules, seats: u16) -> Self {
            let mut sim = GameSim::new(Shooter::new(rules), 8).expect("valid schema");
            for seat in 1..=seats {
                sim.join(PlayerRef(seat), "pilot", &GameOptions::none())
                    .expect("joins");
            }
            Self { sim, seq: 0 }
        }

        fn game(&self) -> &Shooter {
            self.sim.game()
        }

        fn place(&mut self, seat: PlayerRef, pos: Vec2, aim: f32) {
            self.sim.game_mut().place(seat, pos, aim);
        }

        /// Steps ticks `ticks`, each with `inputs` sent again (the same button counters:
        /// no new presses), returning the events.
        fn run(
            &mut self,
            inputs: &[(PlayerRef, ShooterInput)],
            ticks: std::ops::Range<u32>,
        ) -> Vec<ShooterEvent> {
            let mut events = Vec::new();
            for tick in ticks {
                for (seat, input) in inputs {
                    self.seq += 1;
                    self.sim.push_input(*seat, self.seq, tick, input);
                }
                self.sim.step(tick, DT);
                for (to, e) in self.sim.take_events() {
                    assert_eq!(to, Audience::Everyone);
                    events.push(e);
                }
            }
            events
        }

        fn ship(&self, seat: PlayerRef) -> Ship {
            *self.game().ship(seat).expect("ship")
        }

        fn ammo(&self, seat: PlayerRef) -> Private {
            self.game().private(seat).expect("private")
        }

        fn newest_bullet(&self) -> Option<EntityId> {
            self.game().bullets().map(|(id, _)| id).max()
        }
    }

    /// One player, the match started by its first step (ships on spawn points).
    fn solo() -> Run {
        let mut run = Run::new(
            Rules {
                min_players: 1,
                ..Rules::default()
            },
            1,
        );
        run.run(&[], 0..1);
        assert_eq!(run.game().phase(), Phase::Playing);
        run
    }

    fn aim_input(aim: f32) -> ShooterInput {
        ShooterInput {
            aim,
            ..ShooterInput::default()
        }
    }

    fn tap(mut input: ShooterInput) -> ShooterInput {
        input.fire.press();
        input.fire.release();
        input
    }

    #[test]
    fn ships_accelerate_to_speed_and_stop_at_walls() {
        let mut run = solo();
        run.place(A, Vec2::splat(600.0), 0.0);
        let right = ShooterInput {
            dir: Vec2::X,
            ..ShooterInput::default()
        };
        run.run(&[(A, right)], 1..2);
        let ship = run.ship(A);
        assert!((ship.vel.x - ACCEL * DT).abs() < 1e-3, "{}", ship.vel);
        run.run(&[(A, right)], 2..31);
        assert_eq!(run.ship(A).vel, Vec2::new(SPEED, 0.0));
        run.run(&[(A, right)], 31..200);
        let ship = run.ship(A);
        assert_eq!(ship.pos.x, WORLD_SIZE - SHIP_RADIUS);
        assert_eq!(ship.vel.x, 0.0, "the wall stops it");
        // A diagonal longer than 1 is capped at full speed.
        let mut run = solo();
        run.place(A, Vec2::splat(600.0), 0.0);
        let long = ShooterInput {
            dir: Vec2::new(1.0, 1.0),
            ..ShooterInput::default()
        };
        run.run(&[(A, long)], 1..31);
        let speed = run.ship(A).vel.length();
        assert!((speed - SPEED).abs() < 1e-3, "{speed}");
    }

    #[test]
    fn a_tap_between_ticks_fires_exactly_once() {
        let mut run = solo();
        run.place(A, Vec2::new(100.0, 600.0), 0.0);
        // Pressed and released before the tick: held is false, the counter moved.
        let input = tap(aim_input(0.0));
        run.run(&[(A, input)], 1..2);
        assert_eq!(run.game().bullets().len(), 1);
        // The same input again (no new press) fires nothing more.
        run.run(&[(A, input)], 2..10);
        assert_eq!(run.game().bullets().len(), 1);
        assert_eq!(run.ammo(A).ammo, MAGAZINE - 1);
    }

    #[test]
    fn two_taps_in_one_tick_fire_twice_a_cooldown_apart() {
        let mut run = solo();
        run.place(A, Vec2::new(100.0, 600.0), 0.0);
        let input = tap(tap(aim_input(0.0)));
        run.run(&[(A, input)], 1..2);
        assert_eq!(run.game().bullets().len(), 1, "one now");
        let cooldown = ticks(FIRE_COOLDOWN_SECS, DT);
        run.run(&[(A, input)], 2..1 + cooldown);
        assert_eq!(run.game().bullets().len(), 1, "not before the cooldown");
        run.run(&[(A, input)], 1 + cooldown..2 + cooldown);
        assert_eq!(run.game().bullets().len(), 2, "the second after it");
        run.run(&[(A, input)], 2 + cooldown..40);
        assert_eq!(run.ammo(A).ammo, MAGAZINE - 2);
    }

    #[test]
    fn holding_fire_shoots_at_the_gun_rate_and_reloads_when_empty() {
        let mut run = solo();
        let mut input = aim_input(std::f32::consts::FRAC_PI_2);
        input.fire.press();
        let cooldown = ticks(FIRE_COOLDOWN_SECS, DT);
        let mut fired = 0;
        let mut seen = None;
        let end = 1 + cooldown * u32::from(MAGAZINE);
        for tick in 1..end {
            run.run(&[(A, input)], tick..tick + 1);
            let newest = run.newest_bullet();
            if newest > seen {
                assert_eq!((tick - 1) % cooldown, 0, "tick {tick}");
                fired += 1;
                seen = newest;
            }
        }
        assert_eq!(fired, MAGAZINE);
        assert_eq!(
            run.ammo(A),
            Private {
                ammo: 0,
                reloading: true
            }
        );
        // Still held: nothing until the reload is done, then a full magazine.
        let last_shot = end - cooldown;
        let done = last_shot + ticks(RELOAD_SECS, DT);
        run.run(&[(A, input)], end..done);
        assert!(run.ammo(A).reloading);
        let before = run.newest_bullet();
        run.run(&[(A, input)], done..done + 1);
        assert!(run.newest_bullet() > before, "fires again");
        assert_eq!(
            run.ammo(A),
            Private {
                ammo: MAGAZINE - 1,
                reloading: false
            }
        );
    }

    #[test]
    fn the_reload_button_refills_a_partial_magazine() {
        let mut run = solo();
        let mut input = tap(aim_input(0.0));
        run.run(&[(A, input)], 1..2);
        input.reload.press();
        input.reload.release();
        run.run(&[(A, input)], 2..3);
        assert!(run.ammo(A).reloading);
        run.run(&[(A, input)], 3..3 + ticks(RELOAD_SECS, DT));
        assert_eq!(
            run.ammo(A),
            Private {
                ammo: MAGAZINE,
                reloading: false
            }
        );
    }

    #[test]
    fn bullets_fly_straight_spawn_and_vanish_as_entities() {
        let mut run = solo();
        run.place(A, Vec2::new(100.0, 600.0), 0.0);
        let input = tap(aim_input(0.0));
        run.run(&[(A, input)], 1..2);
        let (id, b) = run.game().bullets().next().expect("fired");
        let (id, b) = (id, *b);
        assert_eq!(b.pos, Vec2::new(100.0 + MUZZLE, 600.0));
        assert_eq!(b.owner, A);
        assert!(run.sim.live_entities().any(|e| e == id), "spawned");
        run.run(&[(A, input)], 2..12);
        let (_, b) = run.game().bullets().next().expect("flying");
        assert!((b.pos.x - (100.0 + MUZZLE + BULLET_SPEED * 10.0 * DT)).abs() < 1e-2);
        // In the state every player receives, with the ship.
        let state = run.sim.state(12).expect("state");
        assert_eq!(state.entities().len(), 2);
        // Aimed along the diagonal it stays inside for long; it still ends in time.
        let mut run = solo();
        run.place(A, Vec2::new(20.0, 20.0), std::f32::consts::FRAC_PI_4);
        run.run(&[(A, tap(aim_input(std::f32::consts::FRAC_PI_4)))], 1..2);
        let (id, _) = run.game().bullets().next().expect("fired");
        let life = ticks(BULLET_SECS, DT);
        run.run(&[], 2..1 + life);
        assert_eq!(run.game().bullets().len(), 1);
        run.run(&[], 1 + life..2 + life);
        assert_eq!(run.game().bullets().len(), 0);
        assert!(run.sim.live_entities().all(|e| e != id), "despawned");
    }

    #[test]
    fn a_bullet_reaches_a_ship_spawned_opposite() {
        let reach = BULLET_SPEED * BULLET_SECS + MUZZLE + SHIP_RADIUS;
        assert!(reach > spawn_point(0).distance(spawn_point(SPAWN_POINTS / 2)));
    }

    /// Ships A and B facing each other 200 apart, the match running.
    fn facing() -> Run {
        let mut run = Run::new(Rules::default(), 2);
        run.run(&[], 0..1);
        assert_eq!(run.game().phase(), Phase::Playing);
        run.place(A, Vec2::new(400.0, 600.0), 0.0);
        run.place(B, Vec2::new(600.0, 600.0), std::f32::consts::PI);
        run
    }

    #[test]
    fn hits_cost_health_and_the_fourth_kills_then_respawn() {
        let mut run = facing();
        let mut fire = aim_input(0.0);
        fire.fire.press();
        // Held for four shots, then released; the bullets take a few ticks to arrive.
        let mut events = run.run(&[(A, fire)], 1..2 + 3 * ticks(FIRE_COOLDOWN_SECS, DT));
        fire.fire.release();
        events.extend(run.run(&[(A, fire)], 17..40));
        let hits: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ShooterEvent::Hit { by, target, health } => Some((*by, *target, *health)),
                _ => None,
            })
            .collect();
        assert_eq!(hits, vec![(A, B, 75), (A, B, 50), (A, B, 25), (A, B, 0)]);
        assert_eq!(
            events.last(),
            Some(&ShooterEvent::Kill {
                killer: A,
                victim: B
            })
        );
        let dead = run.ship(B);
        assert!(!dead.alive);
        assert_eq!((dead.health, dead.deaths), (0, 1));
        assert_eq!(run.ship(A).kills, 1);
        // A dead ship neither moves nor shoots.
        let mut b_input = aim_input(std::f32::consts::PI);
        b_input.dir = Vec2::Y;
        b_input.fire.press();
        run.run(&[(A, fire), (B, b_input)], 40..41);
        assert_eq!(run.ship(B).pos, dead.pos);
        assert!(run.game().bullets().all(|(_, b)| b.owner != B));
        // Respawned after the delay, healthy, with a full magazine.
        b_input.fire.release();
        run.run(&[(B, b_input)], 41..41 + ticks(RESPAWN_SECS, DT));
        let ship = run.ship(B);
        assert!(ship.alive);
        assert_eq!(ship.health, MAX_HEALTH);
        assert_eq!(run.ammo(B).ammo, MAGAZINE);
    }

    #[test]
    fn own_bullets_do_not_hit_and_warm_up_does_no_damage() {
        let mut run = facing();
        // A's bullet starts at its muzzle and passes through nothing of A's own.
        let fire = tap(aim_input(0.0));
        let events = run.run(&[(A, fire)], 1..20);
        assert_eq!(run.ship(A).health, MAX_HEALTH);
        assert_eq!(
            events,
            vec![ShooterEvent::Hit {
                by: A,
                target: B,
                health: MAX_HEALTH - DAMAGE
            }]
        );

        // Waiting for a third player: bullets hit nothing.
        let mut run = Run::new(
            Rules {
                min_players: 3,
                ..Rules::default()
            },
            2,
        );
        run.run(&[], 0..1);
        assert_eq!(run.game().phase(), Phase::Waiting);
        run.place(A, Vec2::new(400.0, 600.0), 0.0);
        run.place(B, Vec2::new(600.0, 600.0), 0.0);
        let events = run.run(&[(A, fire)], 1..20);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(run.ship(B).health, MAX_HEALTH);
    }

    #[test]
    fn the_match_starts_with_enough_players_ends_on_time_and_closes() {
        let rules = Rules {
            match_secs: 2,
            kill_limit: 5,
            min_players: 2,
        };
        let mut run = Run::new(rules, 1);
        assert!(run.run(&[], 0..10).is_empty());
        assert_eq!(run.game().lobby().phase, Phase::Waiting);
        assert_eq!(run.game().lobby().time_left, 2);
        run.sim
            .join(B, "late", &GameOptions::none())
            .expect("joins");
        assert_eq!(run.run(&[], 10..11), vec![ShooterEvent::MatchStarted]);
        assert_eq!(
            run.game().lobby(),
            Lobby {
                phase: Phase::Playing,
                time_left: 2,
                kill_limit: 5
            }
        );
        run.run(&[], 11..41);
        assert_eq!(run.game().lobby().time_left, 1);
        assert!(run.sim.take_match_end().is_none());
        run.run(&[], 41..71);
        assert_eq!(run.game().phase(), Phase::Ended);
        assert_eq!(run.game().lobby().time_left, 0);
        let end = run.sim.take_match_end().expect("ended");
        assert_eq!(end.summary, "a draw at 0 kills");
        let places: Vec<_> = end
            .results
            .iter()
            .map(|s| (s.player, s.score, s.place))
            .collect();
        assert_eq!(places, vec![(A, 0, 1), (B, 0, 1)]);
        assert!(run.sim.close_requested().is_some());
        // Frozen, and closed to newcomers.
        let err = run
            .sim
            .join(PlayerRef(3), "too late", &GameOptions::none())
            .expect_err("refused");
        assert_eq!(err, "this match has ended");
        let before = run.ship(A);
        let right = ShooterInput {
            dir: Vec2::X,
            ..ShooterInput::default()
        };
        run.run(&[(A, right)], 71..80);
        assert_eq!(run.ship(A), before);
    }

    #[test]
    fn the_kill_limit_ends_the_match_with_standings() {
        let mut run = Run::new(
            Rules {
                kill_limit: 1,
                ..Rules::default()
            },
            3,
        );
        run.run(&[], 0..1);
        run.place(A, Vec2::new(400.0, 600.0), 0.0);
        run.place(B, Vec2::new(600.0, 600.0), 0.0);
        run.place(PlayerRef(3), Vec2::new(600.0, 1000.0), 0.0);
        let mut fire = aim_input(0.0);
        fire.fire.press();
        run.run(&[(A, fire)], 1..60);
        assert_eq!(run.game().phase(), Phase::Ended);
        let end = run.sim.take_match_end().expect("ended");
        assert_eq!(end.summary, "seat 1 wins with 1 kills");
        let places: Vec<_> = end
            .results
            .iter()
            .map(|s| (s.player, s.score, s.place))
            .collect();
        // Seat 3 (no deaths) above seat 2 (one death) at equal kills.
        assert_eq!(places, vec![(A, 1, 1), (PlayerRef(3), 0, 2), (B, 0, 3)]);
        assert_eq!(run.game().results(), &end.results[..]);
    }

    #[test]
    fn leaving_takes_the_ship_and_its_bullets() {
        let mut run = facing();
        let mut fire = aim_input(std::f32::consts::FRAC_PI_2);
        fire.fire.press();
        run.run(&[(A, fire), (B, fire)], 1..3);
        assert!(run.game().bullets().any(|(_, b)| b.owner == A));
        let live_before = run.sim.live_entities().count();
        let a_things = 1 + run.game().bullets().filter(|(_, b)| b.owner == A).count();
        run.sim.leave(A, LeaveReason::Left);
        assert!(run.game().ship(A).is_none());
        assert!(run.game().bullets().all(|(_, b)| b.owner == B));
        assert!(run.game().private(A).is_none());
        assert_eq!(run.sim.live_entities().count(), live_before - a_things);
    }

    #[test]
    fn ammo_is_private_to_its_player() {
        use ticksync_protocol::state::{ClientState, Encoder, write_snapshot};
        let mut run = facing();
        run.run(&[(A, tap(aim_input(0.0)))], 1..2);
        let state = run.sim.state(2).expect("state");
        let codec = run.sim.codec().clone();
        let mut enc = Encoder::new();
        let mut shared = Vec::new();
        enc.encode_shared(&codec, None, &state, &mut shared);
        let view = |seat: PlayerRef, enc: &mut Encoder| {
            let mut own = Vec::new();
            enc.encode_player(&codec, None, &state, seat, &mut own);
            let mut message = Vec::new();
            write_snapshot(0, &own, &shared, &mut message);
            let mut client = ClientState::new(codec.clone(), seat);
            client.apply(&message).expect("applies");
            client.private::<Private>()
        };
        assert_eq!(view(A, &mut enc).ammo, MAGAZINE - 1);
        assert_eq!(view(B, &mut enc).ammo, MAGAZINE);
    }

    #[test]
    fn options_choose_the_rules() {
        let rules = Rules::from_options([("match_secs", "60"), ("kill_limit", "5")]);
        assert_eq!(
            rules,
            Ok(Rules {
                match_secs: 60,
                kill_limit: 5,
                min_players: 2
            })
        );
        assert!(Rules::from_options([("kill_limit", "0")]).is_err());
        assert!(Rules::from_options([("match_secs", "3601")]).is_err());
        let err = Rules::from_options([("map", "dust")]).expect_err("unknown");
        assert!(err.contains("map"), "{err}");
        let spec = LobbySpec {
            options: GameOptions::none().with("min_players", "1"),
            ..LobbySpec::new("solo", 4)
        };
        assert_eq!(
            Shooter::for_lobby(&spec)
                .expect("valid")
                .rules()
                .min_players,
            1
        );
    }

    #[test]
    fn simulation_is_deterministic() {
        let play = || {
            let mut run = Run::new(Rules::default(), 6);
            let mut events = Vec::new();
            for tick in 0..600u32 {
                let inputs: Vec<_> = (1..=6u16)
                    .map(|seat| {
                        let a = (tick / 15 + u32::from(seat) * 7) as f32;
                        let fire = Button {
                            held: (tick / 10 + u32::from(seat)) % 3 == 0,
                            presses: (tick / 7) as u8 & 15,
                        };
                        (
                            PlayerRef(seat),
                            ShooterInput {
                                dir: Vec2::new(a.cos(), a.sin()),
                                aim: a * 1.3,
                                fire,
                                reload: Button::default(),
                            },
                        )
                    })
                    .collect();
                events.extend(run.run(&inputs, tick..tick + 1));
            }
            let ships: Vec<Ship> = run.game().ships().copied().collect();
            (ships, events, run.game().results().to_vec())
        };
        let (ships, events, results) = play();
        assert!(
            events.iter().any(|e| matches!(e, ShooterEvent::Hit { .. })),
            "the fight had hits"
        );
        assert_eq!((ships, events, results), play());
    }

    #[test]
    fn the_declarations_make_a_valid_schema() {
        let schema = crate::game::schema_of::<Shooter>().expect("valid");
        assert_eq!(schema.entities.len(), 2);
        ticksync_protocol::state::Codec::new(schema, 250).expect("compiles for the largest lobby");
    }
}
