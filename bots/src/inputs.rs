//! The bots' inputs, sent by a few timers rather than one per bot.
//!
//! Each bot's input period is divided into `--input-phases` phases (default
//! [`DEFAULT_PHASES`]); a bot is put in a random
//! one, so inputs still arrive spread over the period as real players' do. Each bucket is
//! one task with one timer: when it fires it sends the due input of every bot in it with
//! a non-blocking write ([`LeanWriter::try_send`]). Per input that saves a timer in the
//! wheel, a task wake-up and a `select!` over the bot's futures: one wake-up per bucket
//! instead of one per bot.
//!
//! A bot's reader and its bucket share a [`Link`]: when each input was sent (for the
//! latency), the bytes and inputs sent, why sending failed, if it did, and a shooter
//! bot's orders (aim, fire, reload) from what its reader saw.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ticksync_client::lean::LeanWriter;
use ticksync_protocol::schema::FieldType;
use ticksync_protocol::state::io::encode_input_values;
use ticksync_protocol::state::{Codec, Value};
use tokio::time::MissedTickBehavior;

use crate::bot::{Rng, error_kind};
use crate::options::Behavior;
use crate::shooter::{Hands, Orders};
use crate::swarm::{MEASURING, Swarm};

/// Default phases per input period: about a millisecond apart at 30 Hz, the timer
/// wheel's grain.
pub(crate) const DEFAULT_PHASES: u16 = 32;
/// Inputs remembered for latency: 64 inputs is 2 s at 30 Hz, far past any SLO.
pub(crate) const RING: usize = 64;
/// One turn of the circle behaviour, seconds.
const CIRCLE_PERIOD: f64 = 4.0;
/// Send times are kept as µs since the swarm's epoch in 40 bits (12 days), beside the
/// low 24 bits of the sequence.
const TIME_BITS: u32 = 40;

/// What a bot's reader and its bucket share.
#[derive(Debug)]
pub(crate) struct Link {
    /// Slot `seq % RING`: `(seq & 0xff_ffff) << 40 | sent_us`.
    sent: [AtomicU64; RING],
    /// Inputs sent in the measured window.
    pub(crate) inputs: AtomicU32,
    /// WebSocket bytes sent, all phases.
    pub(crate) bytes_out: AtomicU64,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// A shooter bot's aim and triggers, set by its reader.
    pub(crate) orders: Orders,
}

impl Link {
    pub(crate) fn new() -> Self {
        Self {
            sent: std::array::from_fn(|_| AtomicU64::new(0)),
            inputs: AtomicU32::new(0),
            bytes_out: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            orders: Orders::default(),
        }
    }

    fn record_sent(&self, seq: u32, at_us: u64) {
        let packed = (u64::from(seq & 0xff_ffff) << TIME_BITS) | (at_us & ((1 << TIME_BITS) - 1));
        self.sent[seq as usize % RING].store(packed, Ordering::Relaxed);
    }

    /// When input `seq` was sent (µs since the swarm's epoch), if the ring still has it.
    pub(crate) fn sent_at(&self, seq: u32) -> Option<u64> {
        let packed = self.sent[seq as usize % RING].load(Ordering::Relaxed);
        (packed >> TIME_BITS == u64::from(seq & 0xff_ffff) && packed != 0)
            .then_some(packed & ((1 << TIME_BITS) - 1))
    }

    fn fail(&self, kind: String) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(kind);
        self.failed.store(true, Ordering::Release);
    }

    /// Why sending failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        if self.failed.load(Ordering::Acquire) {
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        } else {
            None
        }
    }
}

/// One bot as its bucket sees it.
#[derive(Debug)]
pub(crate) struct Player {
    writer: LeanWriter,
    link: Arc<Link>,
    steer: Steer,
    /// The lobby's schema: inputs are encoded by it.
    codec: Arc<Codec>,
    /// The input's fields, reused: every `Vec2` steers, the rest stays at its default.
    values: Vec<Value>,
    /// The encoded input, reused.
    bytes: Vec<u8>,
    /// A shooter bot's aim and triggers (None: the direction only).
    hands: Option<Hands>,
}

/// Idle values for every input field of `codec`.
fn idle_values(codec: &Codec) -> Vec<Value> {
    codec
        .input_row()
        .fields()
        .iter()
        .map(|f| match &f.ty {
            FieldType::Bool => Value::Bool(false),
            FieldType::Int { min, max } => Value::Int(0.clamp(*min, *max)),
            FieldType::VarUint { .. } => Value::Int(0),
            FieldType::F32 { min, max, .. } => Value::F32(0.0f32.clamp(*min, *max)),
            FieldType::Vec2 { .. } => Value::Vec2([0.0, 0.0]),
            FieldType::Angle { .. } => Value::Angle(0.0),
            FieldType::Enum { .. } => Value::Enum(0),
            FieldType::Str { .. } => Value::Str(String::new()),
            FieldType::Player => Value::Player(0),
            FieldType::Button => Value::Button(Default::default()),
        })
        .collect()
}

impl Player {
    pub(crate) fn new(
        writer: LeanWriter,
        link: Arc<Link>,
        behavior: Behavior,
        input_hz: f64,
        rng: Rng,
        codec: Arc<Codec>,
        hands: Option<Hands>,
    ) -> Self {
        Self {
            hands,
            writer,
            link,
            steer: Steer::new(behavior, input_hz, rng),
            values: idle_values(&codec),
            codec,
            bytes: Vec::new(),
        }
    }

    /// Sends the next input; false when the connection is done for.
    fn send_input(&mut self, swarm: &Swarm, measuring: bool) -> bool {
        let (seq, dir_x, dir_y) = self.steer.next();
        for v in &mut self.values {
            if let Value::Vec2(xy) = v {
                *xy = [dir_x, dir_y];
            }
        }
        if let Some(hands) = &mut self.hands {
            hands.apply(&self.link.orders, &mut self.values);
        }
        self.bytes.clear();
        encode_input_values(&self.codec, seq, seq, &self.values, &mut self.bytes);
        self.link.record_sent(seq, swarm.micros(Instant::now()));
        let sent = self.writer.try_send_frame(&self.bytes);
        self.link
            .bytes_out
            .store(self.writer.bytes_out(), Ordering::Relaxed);
        match sent {
            Ok(()) => {
                if measuring {
                    // This bucket is the only writer: no read-modify-write needed.
                    let inputs = self.link.inputs.load(Ordering::Relaxed);
                    self.link.inputs.store(inputs + 1, Ordering::Relaxed);
                }
                true
            }
            Err(e) => {
                self.link.fail(error_kind("run", &e));
                false
            }
        }
    }
}

/// The buckets: where joined bots go to have their inputs sent.
#[derive(Debug)]
pub(crate) struct Buckets {
    incoming: Vec<Arc<Mutex<Vec<Player>>>>,
}

impl Buckets {
    /// Starts `phases` bucket tasks for inputs every `period`.
    pub(crate) fn start(swarm: &Arc<Swarm>, period: Duration, phases: u16) -> Self {
        let base = tokio::time::Instant::now() + Duration::from_millis(5);
        let phases = usize::from(phases.max(1));
        let incoming = (0..phases)
            .map(|b| {
                let incoming = Arc::new(Mutex::new(Vec::new()));
                let first = base + period.mul_f64(b as f64 / phases as f64);
                tokio::spawn(run_bucket(
                    Arc::clone(swarm),
                    Arc::clone(&incoming),
                    first,
                    period,
                ));
                incoming
            })
            .collect();
        Self { incoming }
    }

    /// Hands a bot to a bucket chosen by `pick` (any number: taken modulo the count).
    pub(crate) fn add(&self, pick: u64, player: Player) {
        let bucket = (pick % self.incoming.len() as u64) as usize;
        self.incoming[bucket]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(player);
    }
}

async fn run_bucket(
    swarm: Arc<Swarm>,
    incoming: Arc<Mutex<Vec<Player>>>,
    first: tokio::time::Instant,
    period: Duration,
) {
    let mut players: Vec<Player> = Vec::new();
    let mut timer = tokio::time::interval_at(first, period);
    // An overloaded process sends fewer inputs, never a burst; the report shows the rate.
    timer.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let stopped = swarm.stop.stopped();
    tokio::pin!(stopped);
    loop {
        let at = tokio::select! {
            biased;
            () = &mut stopped => break,
            at = timer.tick() => at,
        };
        {
            let mut new = incoming.lock().unwrap_or_else(PoisonError::into_inner);
            players.append(&mut new);
        }
        let measuring = swarm.phase.load(Ordering::Relaxed) == MEASURING;
        if measuring {
            swarm.record_loop_delay(Instant::now().saturating_duration_since(at.into_std()));
        }
        players.retain_mut(|p| p.send_input(&swarm, measuring));
    }
    for p in &mut players {
        let _ = p.writer.try_close();
    }
}

/// How one bot steers: its sequence numbers and directions.
#[derive(Debug)]
struct Steer {
    behavior: Behavior,
    input_hz: f64,
    rng: Rng,
    seq: u32,
    dir: (f32, f32),
    inputs_until_turn: u32,
    circle_phase: f64,
}

impl Steer {
    fn new(behavior: Behavior, input_hz: f64, mut rng: Rng) -> Self {
        let circle_phase = rng.unit() * std::f64::consts::TAU;
        Self {
            behavior,
            input_hz,
            rng,
            seq: 0,
            dir: (0.0, 0.0),
            inputs_until_turn: 0,
            circle_phase,
        }
    }

    /// The next input's sequence and direction.
    fn next(&mut self) -> (u32, f32, f32) {
        self.seq += 1;
        let (x, y) = match self.behavior {
            Behavior::Idle => (0.0, 0.0),
            Behavior::Circle => {
                let turns = f64::from(self.seq) / (self.input_hz * CIRCLE_PERIOD);
                let angle = self.circle_phase + turns * std::f64::consts::TAU;
                (angle.cos() as f32, angle.sin() as f32)
            }
            Behavior::RandomWalk => {
                if self.inputs_until_turn == 0 {
                    self.dir = (
                        (self.rng.unit() * 2.0 - 1.0) as f32,
                        (self.rng.unit() * 2.0 - 1.0) as f32,
                    );
                    let hold = self.input_hz * (1.0 + self.rng.unit());
                    self.inputs_until_turn = (hold.round() as u32).max(1);
                }
                self.inputs_until_turn -= 1;
                self.dir
            }
        };
        (self.seq, x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_recent_sends_only() {
        let link = Link::new();
        assert_eq!(link.sent_at(1), None);
        link.record_sent(1, 1_000);
        link.record_sent(2, 2_000);
        assert_eq!(
            (link.sent_at(1), link.sent_at(2)),
            (Some(1_000), Some(2_000))
        );
        link.record_sent(1 + RING as u32, 9_000);
        assert_eq!(link.sent_at(1), None);
        assert_eq!(link.sent_at(1 + RING as u32), Some(9_000));
    }

    #[test]
    fn random_walk_holds_a_direction_for_one_to_two_seconds() {
        let mut steer = Steer::new(Behavior::RandomWalk, 30.0, Rng::new(3));
        let dirs: Vec<(f32, f32)> = (0..300)
            .map(|_| steer.next())
            .map(|(_, x, y)| (x, y))
            .collect();
        let mut changes = 0;
        for w in dirs.windows(2) {
            if w[0] != w[1] {
                changes += 1;
            }
        }
        // 10 s at 30 Hz, a new direction every 1-2 s: 5 to 10 changes.
        assert!((4..=10).contains(&changes), "{changes}");
        assert!(dirs.iter().all(|(x, y)| x.abs() <= 1.0 && y.abs() <= 1.0));
    }
}
