//! "shooter": a top-down shooter, the built-in game that needs what arena cannot. Ships
//! fly with momentum towards their input direction and aim freely; the fire button shoots
//! bullets (entities the game spawns and removes), a hit costs [`DAMAGE`] health, a ship at
//! 0 dies (a [`ShooterEvent::Kill`] to everyone) and respawns [`RESPAWN_SECS`] later. Ammo
//! is private to its player: a magazine of [`MAGAZINE`] rounds, reloaded when empty or on
//! the reload button. The match starts once `min_players` are in, runs `match_secs`
//! (its time left is lobby state) and ends when time is up or someone reaches
//! `kill_limit`, with the standings as its results.
//!
//! [`Shooter`] is the whole simulation: deterministic, no clock and no I/O (durations are
//! counted in ticks of the `dt` that [`Shooter::step`] receives), unit-tested below
//! without a runtime. The server's game adapter turns its view into entities, the lobby
//! row and private rows, and its events into game events.
//!
//! Client prediction replays [`move_ship`] (the only rule that moves the controlled ship);
//! `server/golden/shooter-prediction.json` holds cases generated from it.

use glam::Vec2;
use ticksync_protocol::state::{Button, PlayerRef};
use ticksync_protocol::{Messages, State, StateEnum};

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
/// Seconds a bullet flies before it vanishes.
pub const BULLET_SECS: f32 = 1.2;
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
        /// Kills this match (the score).
        #[state(range = 0..=999)]
        kills: u16,
        /// Deaths this match.
        #[state(range = 0..=999)]
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

/// One line of the results: a player's kills and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The player.
    pub seat: PlayerRef,
    /// Kills (the score).
    pub kills: u16,
    /// Deaths.
    pub deaths: u16,
    /// 1 for the best; players with equal kills and deaths share a place.
    pub place: u16,
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
    /// The buttons as the last step saw them, to count presses since.
    last_fire: Button,
    last_reload: Button,
}

/// A bullet and when it vanishes.
#[derive(Debug, Clone, Copy)]
struct Flying {
    id: u32,
    bullet: Bullet,
    expires: u32,
}

/// The shooter's world.
#[derive(Debug, Clone)]
pub struct Shooter {
    rules: Rules,
    phase: Phase,
    /// In ascending seat order.
    pilots: Vec<Pilot>,
    /// In ascending id order (ids only grow).
    bullets: Vec<Flying>,
    next_bullet: u32,
    /// The tick the match ends at, once it runs.
    end_tick: u32,
    /// The last tick stepped and its `dt` (for the time left).
    tick: u32,
    dt: f32,
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

/// Whether a bullet moving from `a` to `b` passes within `r` of `c`.
fn segment_hits(a: Vec2, b: Vec2, c: Vec2, r: f32) -> Option<f32> {
    let ab = b - a;
    let len_sq = ab.length_squared();
    let t = if len_sq > 0.0 {
        ((c - a).dot(ab) / len_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a + ab * t).distance_squared(c).le(&(r * r)).then_some(t)
}

impl Shooter {
    /// An empty world with `rules`.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            phase: Phase::Waiting,
            pilots: Vec::new(),
            bullets: Vec::new(),
            next_bullet: 1,
            end_tick: 0,
            tick: 0,
            dt: 1.0 / 30.0,
            results: Vec::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Where the match is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether a new player may come in: not once the match has ended.
    pub fn can_join(&self) -> Result<(), String> {
        match self.phase {
            Phase::Ended => Err("this match has ended".into()),
            _ => Ok(()),
        }
    }

    /// A player joined: its ship appears at the spawn point farthest from the others.
    pub fn join(&mut self, seat: PlayerRef) {
        let at = self.pilots.partition_point(|p| p.ship.owner < seat);
        if self.pilots.get(at).is_some_and(|p| p.ship.owner == seat) {
            return;
        }
        let pos = self.free_spawn_point(seat);
        self.pilots.insert(
            at,
            Pilot {
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
                private: Private {
                    ammo: MAGAZINE,
                    reloading: false,
                },
                next_shot: 0,
                pending: 0,
                reload_done: None,
                respawn_at: 0,
                last_fire: Button::default(),
                last_reload: Button::default(),
            },
        );
    }

    /// A player left: its ship and its bullets go.
    pub fn leave(&mut self, seat: PlayerRef) {
        self.pilots.retain(|p| p.ship.owner != seat);
        self.bullets.retain(|b| b.bullet.owner != seat);
    }

    /// The spawn point farthest from every other living ship (the lowest index on a tie).
    fn free_spawn_point(&self, except: PlayerRef) -> Vec2 {
        let others: Vec<Vec2> = self
            .pilots
            .iter()
            .filter(|p| p.ship.alive && p.ship.owner != except)
            .map(|p| p.ship.pos)
            .collect();
        let mut best = (0, f32::NEG_INFINITY);
        for i in 0..SPAWN_POINTS {
            let at = spawn_point(i);
            let nearest = others
                .iter()
                .map(|o| o.distance(at))
                .fold(f32::INFINITY, f32::min);
            if nearest > best.1 {
                best = (i, nearest);
            }
        }
        spawn_point(best.0)
    }

    /// Advances the world by one tick of `dt` seconds and appends the events of that
    /// tick (all for every player) to `events`. `inputs` holds each player's current
    /// controls (a player keeps its last input until a newer one arrives); players not
    /// in it hold still.
    pub fn step(
        &mut self,
        inputs: &[(PlayerRef, ShooterInput)],
        tick: u32,
        dt: f32,
        events: &mut Vec<ShooterEvent>,
    ) {
        self.tick = tick;
        self.dt = dt;
        match self.phase {
            Phase::Ended => return,
            Phase::Waiting if self.pilots.len() >= usize::from(self.rules.min_players) => {
                self.start_match(tick, dt, events);
            }
            _ => {}
        }

        // Respawns.
        for i in 0..self.pilots.len() {
            let p = &self.pilots[i];
            if !p.ship.alive && tick >= p.respawn_at {
                let pos = self.free_spawn_point(p.ship.owner);
                let p = &mut self.pilots[i];
                p.ship.alive = true;
                p.ship.health = MAX_HEALTH;
                p.ship.pos = pos;
                p.ship.vel = Vec2::ZERO;
                p.private = Private {
                    ammo: MAGAZINE,
                    reloading: false,
                };
                p.reload_done = None;
                p.pending = 0;
            }
        }

        // Ships: movement, aim, reloads; the shots they fire come out after the bullets
        // already in flight have moved.
        let mut shots = Vec::new();
        let mut next_input = inputs.iter().peekable();
        for p in &mut self.pilots {
            while next_input.next_if(|(s, _)| *s < p.ship.owner).is_some() {}
            let input = next_input.next_if(|(s, _)| *s == p.ship.owner).map_or_else(
                || ShooterInput {
                    fire: Button {
                        held: false,
                        presses: p.last_fire.presses,
                    },
                    reload: Button {
                        held: false,
                        presses: p.last_reload.presses,
                    },
                    ..ShooterInput::default()
                },
                |(_, i)| *i,
            );
            let presses = input.fire.presses_since(p.last_fire);
            let reload_presses = input.reload.presses_since(p.last_reload);
            p.last_fire = input.fire;
            p.last_reload = input.reload;
            if !p.ship.alive {
                continue;
            }
            let (pos, vel) = move_ship(p.ship.pos, p.ship.vel, input.dir, dt);
            p.ship.pos = pos;
            p.ship.vel = vel;
            if input.aim.is_finite() {
                p.ship.aim = input.aim;
            }

            if let Some(done) = p.reload_done {
                if tick >= done {
                    p.private.ammo = MAGAZINE;
                    p.private.reloading = false;
                    p.reload_done = None;
                }
            }
            if reload_presses > 0 && p.reload_done.is_none() && p.private.ammo < MAGAZINE {
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
                p.private.ammo -= 1;
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

        self.move_bullets(tick, dt, events);

        let expires = tick + ticks(BULLET_SECS, dt);
        for bullet in shots {
            self.bullets.push(Flying {
                id: self.next_bullet,
                bullet,
                expires,
            });
            self.next_bullet += 1;
        }

        if self.phase == Phase::Playing {
            let limit_reached = self
                .pilots
                .iter()
                .any(|p| p.ship.kills >= self.rules.kill_limit);
            if limit_reached || tick >= self.end_tick {
                self.end_match();
            }
        }
    }

    /// Moves every bullet; a bullet that meets a ship (its nearest along its path, then
    /// the lowest seat) hits it and vanishes, as do bullets out of time or out of the
    /// world.
    fn move_bullets(&mut self, tick: u32, dt: f32, events: &mut Vec<ShooterEvent>) {
        let damage = self.phase == Phase::Playing;
        let mut i = 0;
        while i < self.bullets.len() {
            let b = self.bullets[i].bullet;
            let to = b.pos + b.vel * dt;
            let hit = self
                .pilots
                .iter()
                .enumerate()
                .filter(|(_, p)| p.ship.alive && p.ship.owner != b.owner)
                .filter_map(|(k, p)| {
                    segment_hits(b.pos, to, p.ship.pos, SHIP_RADIUS).map(|t| (k, t))
                })
                .fold(None, |best: Option<(usize, f32)>, (k, t)| match best {
                    Some((_, bt)) if bt <= t => best,
                    _ => Some((k, t)),
                });
            let gone = match hit {
                Some((k, _)) => {
                    if damage {
                        self.hit(k, b.owner, tick, dt, events);
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
                self.bullets.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Ship `k` takes a bullet from `by`.
    fn hit(&mut self, k: usize, by: PlayerRef, tick: u32, dt: f32, events: &mut Vec<ShooterEvent>) {
        let target = &mut self.pilots[k];
        target.ship.health = target.ship.health.saturating_sub(DAMAGE);
        let victim = target.ship.owner;
        events.push(ShooterEvent::Hit {
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
        events.push(ShooterEvent::Kill { killer: by, victim });
    }

    fn start_match(&mut self, tick: u32, dt: f32, events: &mut Vec<ShooterEvent>) {
        self.phase = Phase::Playing;
        self.end_tick = tick + ticks(f32::from(self.rules.match_secs), dt);
        self.bullets.clear();
        for i in 0..self.pilots.len() {
            let pos = spawn_point(i * SPAWN_POINTS / self.pilots.len().max(1));
            let p = &mut self.pilots[i];
            p.ship.pos = pos;
            p.ship.vel = Vec2::ZERO;
            p.ship.health = MAX_HEALTH;
            p.ship.alive = true;
            p.ship.kills = 0;
            p.ship.deaths = 0;
            p.private = Private {
                ammo: MAGAZINE,
                reloading: false,
            };
            p.reload_done = None;
            p.pending = 0;
            p.next_shot = tick;
        }
        events.push(ShooterEvent::MatchStarted);
    }

    fn end_match(&mut self) {
        self.phase = Phase::Ended;
        self.bullets.clear();
        let mut standings: Vec<Standing> = self
            .pilots
            .iter()
            .map(|p| Standing {
                seat: p.ship.owner,
                kills: p.ship.kills,
                deaths: p.ship.deaths,
                place: 0,
            })
            .collect();
        standings.sort_by(|a, b| {
            b.kills
                .cmp(&a.kills)
                .then(a.deaths.cmp(&b.deaths))
                .then(a.seat.cmp(&b.seat))
        });
        for i in 0..standings.len() {
            standings[i].place = match i.checked_sub(1).map(|j| standings[j]) {
                Some(prev)
                    if (prev.kills, prev.deaths) == (standings[i].kills, standings[i].deaths) =>
                {
                    prev.place
                }
                _ => i as u16 + 1,
            };
        }
        self.results = standings;
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
        self.pilots
            .iter()
            .map(|p| &p.ship)
            .find(|s| s.owner == seat)
    }

    /// The bullets in flight with their ids (ascending; an id is never reused).
    pub fn bullets(&self) -> impl ExactSizeIterator<Item = (u32, &Bullet)> + '_ {
        self.bullets.iter().map(|b| (b.id, &b.bullet))
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

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f32 = 1.0 / 30.0;
    const A: PlayerRef = PlayerRef(1);
    const B: PlayerRef = PlayerRef(2);

    fn solo() -> Shooter {
        let mut game = Shooter::new(Rules {
            min_players: 1,
            ..Rules::default()
        });
        game.join(A);
        // The match starts on the first step (and puts ships on spawn points).
        game.step(&[], 0, DT, &mut Vec::new());
        assert_eq!(game.phase(), Phase::Playing);
        game
    }

    fn duel(rules: Rules) -> Shooter {
        let mut game = Shooter::new(rules);
        game.join(A);
        game.join(B);
        game
    }

    fn aim_input(aim: f32) -> ShooterInput {
        ShooterInput {
            aim,
            ..ShooterInput::default()
        }
    }

    /// Runs ticks `from..to` with fixed inputs, collecting events.
    fn run(
        game: &mut Shooter,
        inputs: &[(PlayerRef, ShooterInput)],
        ticks: std::ops::Range<u32>,
    ) -> Vec<ShooterEvent> {
        let mut events = Vec::new();
        for tick in ticks {
            game.step(inputs, tick, DT, &mut events);
        }
        events
    }

    #[test]
    fn ships_accelerate_to_speed_and_stop_at_walls() {
        let mut game = solo();
        game.place(A, Vec2::splat(600.0), 0.0);
        let right = ShooterInput {
            dir: Vec2::X,
            ..ShooterInput::default()
        };
        run(&mut game, &[(A, right)], 0..1);
        let ship = *game.ship(A).expect("ship");
        assert!((ship.vel.x - ACCEL * DT).abs() < 1e-3, "{}", ship.vel);
        run(&mut game, &[(A, right)], 1..30);
        assert_eq!(game.ship(A).expect("ship").vel, Vec2::new(SPEED, 0.0));
        run(&mut game, &[(A, right)], 30..200);
        let ship = *game.ship(A).expect("ship");
        assert_eq!(ship.pos.x, WORLD_SIZE - SHIP_RADIUS);
        assert_eq!(ship.vel.x, 0.0, "the wall stops it");
        // A diagonal longer than 1 is capped at full speed.
        let mut game = solo();
        game.place(A, Vec2::splat(600.0), 0.0);
        let long = ShooterInput {
            dir: Vec2::new(1.0, 1.0),
            ..ShooterInput::default()
        };
        run(&mut game, &[(A, long)], 0..30);
        let speed = game.ship(A).expect("ship").vel.length();
        assert!((speed - SPEED).abs() < 1e-3, "{speed}");
    }

    #[test]
    fn a_tap_between_ticks_fires_exactly_once() {
        let mut game = solo();
        game.place(A, Vec2::new(100.0, 600.0), 0.0);
        let mut input = aim_input(0.0);
        // Pressed and released before the tick: held is false, the counter moved.
        input.fire.press();
        input.fire.release();
        run(&mut game, &[(A, input)], 0..1);
        assert_eq!(game.bullets().len(), 1);
        // The same input again (no new input arrived) fires nothing more.
        run(&mut game, &[(A, input)], 1..10);
        assert_eq!(game.bullets().len(), 1);
        assert_eq!(game.private(A).expect("private").ammo, MAGAZINE - 1);
    }

    #[test]
    fn two_taps_in_one_tick_fire_twice_a_cooldown_apart() {
        let mut game = solo();
        let mut input = aim_input(0.0);
        for _ in 0..2 {
            input.fire.press();
            input.fire.release();
        }
        run(&mut game, &[(A, input)], 0..1);
        assert_eq!(game.bullets().len(), 1, "one now");
        let cooldown = ticks(FIRE_COOLDOWN_SECS, DT);
        run(&mut game, &[(A, input)], 1..cooldown);
        assert_eq!(game.bullets().len(), 1, "not before the cooldown");
        run(&mut game, &[(A, input)], cooldown..cooldown + 1);
        assert_eq!(game.bullets().len(), 2, "the second after it");
        run(&mut game, &[(A, input)], cooldown + 1..40);
        assert_eq!(game.private(A).expect("private").ammo, MAGAZINE - 2);
    }

    #[test]
    fn holding_fire_shoots_at_the_gun_rate_and_reloads_when_empty() {
        let mut game = solo();
        let mut input = aim_input(std::f32::consts::FRAC_PI_2);
        input.fire.press();
        let cooldown = ticks(FIRE_COOLDOWN_SECS, DT);
        let mut fired = 0;
        let mut seen = 0;
        for tick in 0..cooldown * u32::from(MAGAZINE) {
            run(&mut game, &[(A, input)], tick..tick + 1);
            let newest = game.bullets().map(|(id, _)| id).max().unwrap_or(0);
            if newest > seen {
                assert_eq!(tick % cooldown, 0, "tick {tick}");
                fired += 1;
                seen = newest;
            }
        }
        assert_eq!(fired, MAGAZINE);
        let private = game.private(A).expect("private");
        assert_eq!(private.ammo, 0);
        assert!(private.reloading);
        // Still held: nothing until the reload is done, then a full magazine.
        let start = cooldown * u32::from(MAGAZINE);
        let last_shot = start - cooldown;
        let done = last_shot + ticks(RELOAD_SECS, DT);
        run(&mut game, &[(A, input)], start..done);
        assert!(game.private(A).expect("private").reloading);
        let before = game.bullets().map(|(id, _)| id).max();
        run(&mut game, &[(A, input)], done..done + 1);
        assert!(!game.private(A).expect("private").reloading);
        assert!(
            game.bullets().map(|(id, _)| id).max() > before,
            "fires again"
        );
        assert_eq!(game.private(A).expect("private").ammo, MAGAZINE - 1);
    }

    #[test]
    fn the_reload_button_refills_a_partial_magazine() {
        let mut game = solo();
        let mut input = aim_input(0.0);
        input.fire.press();
        input.fire.release();
        run(&mut game, &[(A, input)], 0..1);
        input.reload.press();
        input.reload.release();
        run(&mut game, &[(A, input)], 1..2);
        assert!(game.private(A).expect("private").reloading);
        run(&mut game, &[(A, input)], 2..1 + ticks(RELOAD_SECS, DT) + 1);
        assert_eq!(
            game.private(A).expect("private"),
            Private {
                ammo: MAGAZINE,
                reloading: false
            }
        );
    }

    #[test]
    fn bullets_fly_straight_and_vanish_after_their_lifetime() {
        let mut game = solo();
        game.place(A, Vec2::new(100.0, 600.0), 0.0);
        let mut input = aim_input(0.0);
        input.fire.press();
        input.fire.release();
        run(&mut game, &[(A, input)], 0..1);
        let (_, b) = game.bullets().next().expect("fired");
        assert_eq!(b.pos, Vec2::new(100.0 + MUZZLE, 600.0));
        assert_eq!(b.owner, A);
        run(&mut game, &[(A, input)], 1..11);
        let (_, b) = game.bullets().next().expect("flying");
        assert!((b.pos.x - (100.0 + MUZZLE + BULLET_SPEED * 10.0 * DT)).abs() < 1e-2);
        // Aimed along the wall it would stay inside for long; it still ends in time.
        let mut game = solo();
        game.place(A, Vec2::new(20.0, 20.0), std::f32::consts::FRAC_PI_4);
        run(&mut game, &[(A, input)], 0..1);
        let life = ticks(BULLET_SECS, DT);
        run(&mut game, &[(A, input)], 1..life);
        assert_eq!(game.bullets().len(), 1);
        run(&mut game, &[(A, input)], life..life + 1);
        assert_eq!(game.bullets().len(), 0);
    }

    /// Ships A and B facing each other 200 apart, the match running.
    fn facing() -> Shooter {
        let mut game = duel(Rules::default());
        run(&mut game, &[], 0..1);
        assert_eq!(game.phase(), Phase::Playing);
        game.place(A, Vec2::new(400.0, 600.0), 0.0);
        game.place(B, Vec2::new(600.0, 600.0), std::f32::consts::PI);
        game
    }

    #[test]
    fn hits_cost_health_and_the_fourth_kills_then_respawn() {
        let mut game = facing();
        let mut fire = aim_input(0.0);
        fire.fire.press();
        // Held for four shots, then released; the bullets take a few ticks to arrive.
        let mut events = run(
            &mut game,
            &[(A, fire)],
            1..2 + 3 * ticks(FIRE_COOLDOWN_SECS, DT),
        );
        fire.fire.release();
        events.extend(run(&mut game, &[(A, fire)], 17..40));
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
        let dead = *game.ship(B).expect("ship");
        assert!(!dead.alive);
        assert_eq!((dead.health, dead.deaths), (0, 1));
        assert_eq!(game.ship(A).expect("ship").kills, 1);
        // A dead ship neither moves nor shoots, and bullets pass it.
        let mut b_input = aim_input(std::f32::consts::PI);
        b_input.dir = Vec2::Y;
        b_input.fire.press();
        run(&mut game, &[(A, fire), (B, b_input)], 40..41);
        assert_eq!(game.ship(B).expect("ship").pos, dead.pos);
        assert!(game.bullets().all(|(_, b)| b.owner != B));
        // Respawned after the delay, healthy, full magazine.
        run(&mut game, &[], 41..41 + ticks(RESPAWN_SECS, DT));
        let ship = *game.ship(B).expect("ship");
        assert!(ship.alive);
        assert_eq!(ship.health, MAX_HEALTH);
        assert_eq!(game.private(B).expect("private").ammo, MAGAZINE);
    }

    #[test]
    fn own_bullets_do_not_hit_and_warm_up_does_no_damage() {
        let mut game = facing();
        // A's bullet starts at its muzzle and passes through nothing of A's own.
        let mut fire = aim_input(0.0);
        fire.fire.press();
        fire.fire.release();
        let events = run(&mut game, &[(A, fire)], 1..20);
        assert_eq!(game.ship(A).expect("ship").health, MAX_HEALTH);
        assert_eq!(
            events,
            vec![ShooterEvent::Hit {
                by: A,
                target: B,
                health: MAX_HEALTH - DAMAGE
            }]
        );

        // Waiting for a second player: bullets hit nothing.
        let mut game = duel(Rules {
            min_players: 3,
            ..Rules::default()
        });
        run(&mut game, &[], 0..1);
        assert_eq!(game.phase(), Phase::Waiting);
        game.place(A, Vec2::new(400.0, 600.0), 0.0);
        game.place(B, Vec2::new(600.0, 600.0), 0.0);
        let events = run(&mut game, &[(A, fire)], 1..20);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(game.ship(B).expect("ship").health, MAX_HEALTH);
    }

    #[test]
    fn the_match_starts_with_enough_players_and_ends_on_time() {
        let mut game = Shooter::new(Rules {
            match_secs: 2,
            kill_limit: 5,
            min_players: 2,
        });
        game.join(A);
        let events = run(&mut game, &[], 0..10);
        assert!(events.is_empty());
        assert_eq!(game.lobby().phase, Phase::Waiting);
        assert_eq!(game.lobby().time_left, 2);
        game.join(B);
        let events = run(&mut game, &[], 10..11);
        assert_eq!(events, vec![ShooterEvent::MatchStarted]);
        assert_eq!(
            game.lobby(),
            Lobby {
                phase: Phase::Playing,
                time_left: 2,
                kill_limit: 5
            }
        );
        run(&mut game, &[], 11..41);
        assert_eq!(game.lobby().time_left, 1);
        assert!(game.results().is_empty());
        run(&mut game, &[], 41..71);
        assert_eq!(game.phase(), Phase::Ended);
        assert_eq!(game.lobby().time_left, 0);
        assert_eq!(
            game.results(),
            &[
                Standing {
                    seat: A,
                    kills: 0,
                    deaths: 0,
                    place: 1
                },
                Standing {
                    seat: B,
                    kills: 0,
                    deaths: 0,
                    place: 1
                }
            ]
        );
        assert!(game.can_join().is_err());
        // Frozen: nothing moves any more.
        let before = *game.ship(A).expect("ship");
        run(
            &mut game,
            &[(
                A,
                ShooterInput {
                    dir: Vec2::X,
                    ..ShooterInput::default()
                },
            )],
            71..80,
        );
        assert_eq!(*game.ship(A).expect("ship"), before);
    }

    #[test]
    fn the_kill_limit_ends_the_match_with_standings() {
        let mut game = Shooter::new(Rules {
            kill_limit: 1,
            ..Rules::default()
        });
        game.join(A);
        game.join(B);
        game.join(PlayerRef(3));
        run(&mut game, &[], 0..1);
        game.place(A, Vec2::new(400.0, 600.0), 0.0);
        game.place(B, Vec2::new(600.0, 600.0), 0.0);
        game.place(PlayerRef(3), Vec2::new(600.0, 1000.0), 0.0);
        let mut fire = aim_input(0.0);
        fire.fire.press();
        run(&mut game, &[(A, fire)], 1..60);
        assert_eq!(game.phase(), Phase::Ended);
        let places: Vec<_> = game
            .results()
            .iter()
            .map(|s| (s.seat, s.kills, s.deaths, s.place))
            .collect();
        assert_eq!(
            places,
            vec![(A, 1, 0, 1), (PlayerRef(3), 0, 0, 2), (B, 0, 1, 3)]
        );
    }

    #[test]
    fn leaving_takes_the_ship_and_its_bullets() {
        let mut game = facing();
        let mut fire = aim_input(std::f32::consts::FRAC_PI_2);
        fire.fire.press();
        run(&mut game, &[(A, fire), (B, fire)], 1..3);
        assert!(game.bullets().any(|(_, b)| b.owner == A));
        game.leave(A);
        assert!(game.ship(A).is_none());
        assert!(game.bullets().all(|(_, b)| b.owner == B));
        assert!(game.private(A).is_none());
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
    }

    #[test]
    fn simulation_is_deterministic() {
        let play = || {
            let mut game = Shooter::new(Rules::default());
            for seat in 1..=6 {
                game.join(PlayerRef(seat));
            }
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
                game.step(&inputs, tick, DT, &mut events);
            }
            let ships: Vec<Ship> = game.ships().copied().collect();
            (ships, events, game.results().to_vec())
        };
        let (ships, events, results) = play();
        assert!(
            events.iter().any(|e| matches!(e, ShooterEvent::Hit { .. })),
            "the bots' fight had hits"
        );
        assert_eq!((ships, events, results), play());
    }

    #[test]
    fn the_declarations_make_a_valid_schema() {
        use ticksync_protocol::schema::{Messages as _, Schema};
        use ticksync_protocol::state::Codec;
        let mut builder = Schema::builder("shooter");
        for kind in ShooterEntity::types().expect("entity kinds") {
            builder = builder.entity_fields(kind.name, kind.fields);
        }
        let schema = builder
            .lobby::<Lobby>()
            .private::<Private>()
            .input::<ShooterInput>()
            .events::<ShooterEvent>()
            .build()
            .expect("valid");
        assert_eq!(schema.entities.len(), 2);
        Codec::new(schema, 250).expect("compiles for the largest lobby");
    }
}
