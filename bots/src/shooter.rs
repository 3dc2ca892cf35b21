//! What a shooter bot sees and does.
//!
//! Arena and hill bots read only each snapshot's head; a shooter bot must know where the
//! ships are, so its reader applies every snapshot to a [`ClientState`] decoded by the
//! lobby's schema ([`Eyes`]). After each snapshot it picks the nearest other ship that is
//! alive, leads it by the bullet's flight time, and leaves the aim and whether to fire or
//! reload in its [`Orders`], which the input bucket reads when it sends the bot's next
//! input ([`Hands`]). Movement stays the random walk of the other games.
//!
//! Everything is found by name in the schema (`Ship` with `owner`, `pos`, `alive`;
//! `Bullet` with `owner`; the `Hit` and `Kill` events; the private `ammo`), once at
//! join, so a shooter whose schema lacks one fails that bot clearly instead of playing
//! blind. What the bot saw is counted in [`Counts`]: the bullets it fired (its own
//! bullets appearing in snapshots), the hits and kills it scored and took (events).

use std::sync::atomic::{AtomicU32, Ordering};

use ticksync_client::{ClientState, Value};
use ticksync_protocol::schema::{Field, FieldType};
use ticksync_protocol::state::io::decode_event;
use ticksync_protocol::state::{Button, ClientEntity, Codec, RowCodec, RowReader};

/// The shooter's bullet speed, units per second, for leading a target (not in the
/// schema; a wrong value only makes the bots miss more).
const BULLET_SPEED: f32 = 700.0;
/// Farther than this a target is out of range (bullets fly 1,050 units).
const RANGE: f32 = 1_000.0;

/// The aim and the triggers, from a bot's reader to its input bucket.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    /// The aim in radians, as `f32` bits.
    aim: AtomicU32,
    /// [`FIRE`] and [`RELOAD`].
    flags: AtomicU32,
}

const FIRE: u32 = 1;
const RELOAD: u32 = 2;

impl Orders {
    fn set(&self, aim: f32, fire: bool, reload: bool) {
        self.aim.store(aim.to_bits(), Ordering::Relaxed);
        let flags = if fire { FIRE } else { 0 } | if reload { RELOAD } else { 0 };
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// The aim, whether to fire and whether to reload.
    fn get(&self) -> (f32, bool, bool) {
        let flags = self.flags.load(Ordering::Relaxed);
        (
            f32::from_bits(self.aim.load(Ordering::Relaxed)),
            flags & FIRE != 0,
            flags & RELOAD != 0,
        )
    }
}

/// The input fields a shooter bot sets beyond the direction, and its buttons' state.
#[derive(Debug, Clone)]
pub(crate) struct Hands {
    aim: usize,
    fire: usize,
    reload: Option<usize>,
    fire_button: Button,
    reload_button: Button,
}

impl Hands {
    /// Finds the `aim` (angle) and `fire` (button) inputs, and `reload` if there is one.
    pub(crate) fn find(codec: &Codec) -> Result<Self, String> {
        let fields = codec.input_row().fields();
        let aim = index(fields, "aim", |t| matches!(t, FieldType::Angle { .. }))
            .ok_or("the shooter's input has no angle `aim`")?;
        let fire = index(fields, "fire", |t| matches!(t, FieldType::Button))
            .ok_or("the shooter's input has no button `fire`")?;
        let reload = index(fields, "reload", |t| matches!(t, FieldType::Button));
        Ok(Self {
            aim,
            fire,
            reload,
            fire_button: Button::default(),
            reload_button: Button::default(),
        })
    }

    /// Puts the reader's orders into the next input's values. Fire is held while there
    /// is a target (the gun fires at its own rate), with a press when it goes down;
    /// reload is pressed once per order.
    pub(crate) fn apply(&mut self, orders: &Orders, values: &mut [Value]) {
        let (aim, fire, reload) = orders.get();
        if fire {
            if !self.fire_button.held {
                self.fire_button.press();
            }
        } else {
            self.fire_button.release();
        }
        if reload && !self.reload_button.held {
            self.reload_button.press();
        } else {
            self.reload_button.release();
        }
        if let Some(v) = values.get_mut(self.aim) {
            *v = Value::Angle(aim);
        }
        if let Some(v) = values.get_mut(self.fire) {
            *v = Value::Button(self.fire_button);
        }
        if let Some(v) = self.reload.and_then(|i| values.get_mut(i)) {
            *v = Value::Button(self.reload_button);
        }
    }
}

fn index(fields: &[Field], name: &str, ty: impl Fn(&FieldType) -> bool) -> Option<usize> {
    fields.iter().position(|f| f.name == name && ty(&f.ty))
}

/// Where the fields a shooter bot reads are in the lobby's schema.
#[derive(Debug, Clone)]
struct Layout {
    ship: u16,
    ship_owner: usize,
    ship_pos: usize,
    ship_vel: Option<usize>,
    ship_alive: usize,
    /// The last of the ship's fields read.
    ship_last: usize,
    bullet: u16,
    bullet_owner: usize,
    ammo: Option<(usize, i64)>,
    reloading: Option<usize>,
    hit: usize,
    hit_by: usize,
    hit_target: usize,
    kill: usize,
    kill_killer: usize,
    kill_victim: usize,
}

fn kind<'c>(codec: &'c Codec, name: &str) -> Option<(u16, &'c RowCodec)> {
    (0..=u16::MAX)
        .map_while(|i| codec.kind_row(i).map(|row| (i, row)))
        .find(|(_, row)| row.name() == name)
}

fn event<'c>(codec: &'c Codec, name: &str) -> Option<(usize, &'c RowCodec)> {
    (0..)
        .map_while(|i| codec.event_row(i).map(|row| (i, row)))
        .find(|(_, row)| row.name() == name)
}

fn is_player(t: &FieldType) -> bool {
    matches!(t, FieldType::Player)
}

impl Layout {
    fn find(codec: &Codec) -> Result<Self, String> {
        let missing = |what: &str| format!("the shooter's schema has no {what}");
        let (ship, ship_row) = kind(codec, "Ship").ok_or_else(|| missing("entity Ship"))?;
        let sf = ship_row.fields();
        let ship_owner = index(sf, "owner", is_player).ok_or_else(|| missing("Ship.owner"))?;
        let vec2 = |t: &FieldType| matches!(t, FieldType::Vec2 { .. });
        let ship_pos = index(sf, "pos", vec2).ok_or_else(|| missing("Ship.pos"))?;
        let ship_vel = index(sf, "vel", vec2);
        let ship_alive = index(sf, "alive", |t| matches!(t, FieldType::Bool))
            .ok_or_else(|| missing("Ship.alive"))?;
        let (bullet, bullet_row) = kind(codec, "Bullet").ok_or_else(|| missing("entity Bullet"))?;
        let bullet_owner = index(bullet_row.fields(), "owner", is_player)
            .ok_or_else(|| missing("Bullet.owner"))?;
        let pf = codec.private_row().fields();
        let ammo = pf
            .iter()
            .position(|f| f.name == "ammo")
            .and_then(|i| match pf[i].ty {
                FieldType::Int { max, .. } => Some((i, max)),
                _ => None,
            });
        let reloading = index(pf, "reloading", |t| matches!(t, FieldType::Bool));
        let (hit, hit_row) = event(codec, "Hit").ok_or_else(|| missing("event Hit"))?;
        let hit_by = index(hit_row.fields(), "by", is_player).ok_or_else(|| missing("Hit.by"))?;
        let hit_target =
            index(hit_row.fields(), "target", is_player).ok_or_else(|| missing("Hit.target"))?;
        let (kill, kill_row) = event(codec, "Kill").ok_or_else(|| missing("event Kill"))?;
        let kill_killer =
            index(kill_row.fields(), "killer", is_player).ok_or_else(|| missing("Kill.killer"))?;
        let kill_victim =
            index(kill_row.fields(), "victim", is_player).ok_or_else(|| missing("Kill.victim"))?;
        Ok(Self {
            ship,
            ship_owner,
            ship_pos,
            ship_vel,
            ship_alive,
            ship_last: ship_owner
                .max(ship_pos)
                .max(ship_alive)
                .max(ship_vel.unwrap_or(0)),
            bullet,
            bullet_owner,
            ammo,
            reloading,
            hit,
            hit_by,
            hit_target,
            kill,
            kill_killer,
            kill_victim,
        })
    }
}

/// What a shooter bot counted in the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Its own bullets that appeared in its snapshots.
    pub(crate) shots: u32,
    /// Bullets of anyone that appeared.
    pub(crate) bullets_seen: u32,
    /// `Hit` events it scored.
    pub(crate) hits: u32,
    /// `Kill` events it scored.
    pub(crate) kills: u32,
    /// `Kill` events of which it was the victim.
    pub(crate) deaths: u32,
    /// `Hit` and `Kill` events of anyone.
    pub(crate) hits_seen: u32,
    pub(crate) kills_seen: u32,
}

/// One ship as a bot reads it.
#[derive(Debug, Clone, Copy, Default)]
struct Ship {
    owner: u16,
    pos: [f32; 2],
    vel: [f32; 2],
    alive: bool,
}

/// A shooter bot's view of its lobby.
#[derive(Debug)]
pub(crate) struct Eyes {
    state: ClientState,
    layout: Layout,
    me: u16,
    /// Entities the last snapshot created (reused).
    created: Vec<u32>,
    pub(crate) counts: Counts,
}

impl Eyes {
    /// Eyes on `state` (fresh from the lobby's `Joined`), if its schema is a shooter's.
    pub(crate) fn new(state: ClientState) -> Result<Self, String> {
        let layout = Layout::find(state.codec())?;
        Ok(Self {
            me: state.me().0,
            state,
            layout,
            created: Vec::new(),
            counts: Counts::default(),
        })
    }

    /// Applies a snapshot, counts the bullets it created and sets the orders.
    pub(crate) fn on_snapshot(
        &mut self,
        bytes: &[u8],
        orders: &Orders,
        measuring: bool,
    ) -> Result<(), String> {
        let applied = self
            .state
            .apply(bytes)
            .map_err(|e| format!("run: a snapshot did not decode ({e})"))?;
        self.created.clear();
        self.created.extend_from_slice(applied.created);
        if measuring {
            for &id in &self.created {
                let Some(e) = self.state.entity(id) else {
                    continue;
                };
                if e.kind != self.layout.bullet {
                    continue;
                }
                self.counts.bullets_seen += 1;
                if self.bullet_owner(e) == Some(self.me) {
                    self.counts.shots += 1;
                }
            }
        }
        let (aim, fire) = self.target();
        let reload = self.wants_reload(fire);
        orders.set(aim, fire, reload);
        Ok(())
    }

    /// Counts a game event.
    pub(crate) fn on_event(&mut self, bytes: &[u8], measuring: bool) -> Result<(), String> {
        let codec = self.state.codec();
        let event = decode_event(codec, bytes)
            .map_err(|e| format!("run: an event did not decode ({e})"))?;
        if !measuring {
            return Ok(());
        }
        let Some(row) = codec.event_row(event.index) else {
            return Ok(());
        };
        let player = |i: usize| match event.row.values(row).get(i) {
            Some(Value::Player(p)) => Some(*p),
            _ => None,
        };
        let l = &self.layout;
        if event.index == l.hit {
            self.counts.hits_seen += 1;
            if player(l.hit_by) == Some(self.me) && player(l.hit_target) != Some(self.me) {
                self.counts.hits += 1;
            }
        } else if event.index == l.kill {
            self.counts.kills_seen += 1;
            let victim = player(l.kill_victim);
            if player(l.kill_killer) == Some(self.me) && victim != Some(self.me) {
                self.counts.kills += 1;
            }
            if victim == Some(self.me) {
                self.counts.deaths += 1;
            }
        }
        Ok(())
    }

    fn bullet_owner(&self, e: &ClientEntity) -> Option<u16> {
        let row = self.state.codec().kind_row(e.kind)?;
        let mut r = RowReader::new(row, &e.row.words, &e.row.text);
        for _ in 0..self.layout.bullet_owner {
            r.value();
        }
        match r.value() {
            Value::Player(p) => Some(p),
            _ => None,
        }
    }

    fn ship(&self, e: &ClientEntity) -> Option<Ship> {
        if e.kind != self.layout.ship {
            return None;
        }
        let row = self.state.codec().kind_row(e.kind)?;
        let mut r = RowReader::new(row, &e.row.words, &e.row.text);
        let l = &self.layout;
        let mut ship = Ship::default();
        for i in 0..=l.ship_last {
            match r.value() {
                Value::Player(p) if i == l.ship_owner => ship.owner = p,
                Value::Vec2(v) if i == l.ship_pos => ship.pos = v,
                Value::Vec2(v) if Some(i) == l.ship_vel => ship.vel = v,
                Value::Bool(b) if i == l.ship_alive => ship.alive = b,
                _ => {}
            }
        }
        Some(ship)
    }

    /// The aim at the nearest other live ship (led by the bullet's flight time), and
    /// whether it is worth firing.
    fn target(&self) -> (f32, bool) {
        let me = self.me;
        let ships = || self.state.entities().filter_map(|e| self.ship(e));
        let Some(mine) = ships().find(|s| s.owner == me).filter(|s| s.alive) else {
            return (0.0, false);
        };
        let mut nearest: Option<(f32, Ship)> = None;
        for s in ships().filter(|s| s.alive && s.owner != me) {
            let d = dist(mine.pos, s.pos);
            if nearest.is_none_or(|(best, _)| d < best) {
                nearest = Some((d, s));
            }
        }
        match nearest {
            Some((d, s)) => {
                let t = d / BULLET_SPEED;
                let x = s.pos[0] + s.vel[0] * t - mine.pos[0];
                let y = s.pos[1] + s.vel[1] * t - mine.pos[1];
                (y.atan2(x).rem_euclid(std::f32::consts::TAU), d <= RANGE)
            }
            None => (0.0, false),
        }
    }

    /// Reload when the magazine is empty, or below half with nothing to shoot at.
    fn wants_reload(&self, firing: bool) -> bool {
        let Some((ammo_at, full)) = self.layout.ammo else {
            return false;
        };
        let private = self.state.private_values();
        let reloading = self
            .layout
            .reloading
            .and_then(|i| private.get(i))
            .is_some_and(|v| *v == Value::Bool(true));
        let ammo = match private.get(ammo_at) {
            Some(Value::Int(a)) => *a,
            _ => return false,
        };
        !reloading && (ammo == 0 || (!firing && ammo * 2 < full))
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_is_held_with_one_press_and_reload_pressed_once() {
        let orders = Orders::default();
        let mut hands = Hands {
            aim: 0,
            fire: 1,
            reload: Some(2),
            fire_button: Button::default(),
            reload_button: Button::default(),
        };
        let mut values = vec![
            Value::Angle(0.0),
            Value::Button(Button::default()),
            Value::Button(Button::default()),
        ];
        orders.set(1.5, true, true);
        hands.apply(&orders, &mut values);
        hands.apply(&orders, &mut values);
        assert_eq!(values[0], Value::Angle(1.5));
        // Held since the first input, pressed once.
        assert_eq!(
            values[1],
            Value::Button(Button {
                held: true,
                presses: 1
            })
        );
        // Pressed on the first input, released on the second.
        assert_eq!(
            values[2],
            Value::Button(Button {
                held: false,
                presses: 1
            })
        );
        orders.set(0.5, false, false);
        hands.apply(&orders, &mut values);
        assert_eq!(
            values[1],
            Value::Button(Button {
                held: false,
                presses: 1
            })
        );
    }
}
