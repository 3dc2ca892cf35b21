//! One bot: connect, say Hello, create or join its group's lobby, then send inputs at
//! the input rate and read snapshots until the run stops.
//!
//! The hot loop is what makes one core of bots enough for thousands of players: one task
//! per bot on a single-threaded runtime waits on its socket only, one `read` per snapshot
//! into a buffer that is never reallocated, only the snapshot's head parsed
//! ([`peek_snapshot_head`]). Inputs are not sent from here: the connection is split and
//! its writer handed to an input bucket (`inputs.rs`), one timer for many bots.
//!
//! Latency: input `N` is sent at a time kept in the bot's [`Link`] ring, indexed by `N`; a
//! snapshot with `ack_seq >= N` is the first to acknowledge every input up to `ack_seq`
//! not yet acknowledged, and each of them records `now - sent(N)`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ticksync_client::lean::{LeanClient, LeanReader};
use ticksync_client::{ClientError, SnapshotHead, peek_snapshot_head};
use ticksync_protocol::state::Codec;
use ticksync_protocol::{ClientMessage, GameOptions, JoinTarget, ServerMessage, decode_server};
use tokio::sync::watch;

use crate::inputs::{Link, Player, RING};
use crate::options::{GameChoice, JoinMode};
use crate::shooter::{Counts, Eyes, Hands};
use crate::swarm::{MEASURING, Swarm};

/// Connecting, saying Hello and joining must finish within this.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// Each answer during setup must come within this.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// `--join quick`: how long after their leader joined the others quick-join: a cluster
/// node publishes a new lobby within its publication gap (50 ms) and a Redis round trip.
const QUICK_FOLLOW_DELAY: Duration = Duration::from_millis(200);

/// The lobby of a group of bots, as its leader tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Not created yet.
    Pending,
    /// Created: join this id.
    Ready(u32),
    /// The leader failed; the group has no lobby.
    Failed,
}

/// A bot's part in its group.
#[derive(Debug)]
pub(crate) enum Role {
    /// The first bot of a group creates the lobby and publishes its id.
    Leader {
        group: u32,
        size: u8,
        lobby: watch::Sender<Slot>,
    },
    /// The others wait for the id and join.
    Follower(watch::Receiver<Slot>),
}

/// What one bot saw. Counts are of the measured window.
#[derive(Debug, Clone, Default)]
pub(crate) struct BotResult {
    /// It joined its lobby.
    pub(crate) joined: bool,
    /// Why it never joined.
    pub(crate) failure: Option<String>,
    /// Why it lost its connection or lobby after joining (the run stopping is not one).
    pub(crate) disconnect: Option<String>,
    /// Snapshots received.
    pub(crate) snapshots: u32,
    /// Of which delta snapshots.
    pub(crate) deltas: u32,
    /// Ticks the snapshots skipped (a gap in tick numbers).
    pub(crate) skipped: u32,
    /// First and last tick received.
    pub(crate) ticks: Option<(u32, u32)>,
    /// WebSocket bytes received and sent.
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// Inputs sent.
    pub(crate) inputs: u32,
    /// Inputs acknowledged so late that the ring had forgotten them.
    pub(crate) acks_beyond_ring: u32,
    /// Messages other than snapshots.
    pub(crate) other_messages: u32,
    /// The lobby it joined.
    pub(crate) lobby: Option<u32>,
    /// A shooter bot's shots, hits and kills.
    pub(crate) shooter: Option<Counts>,
}

/// A bot ready to play: joined, with what it learnt on the way.
struct Ready {
    client: LeanClient,
    tick_rate: u16,
    codec: Arc<Codec>,
    lobby: u32,
    /// A shooter bot's view of the state (None: snapshot heads are enough).
    eyes: Option<Eyes>,
    /// A shooter bot's aim and triggers.
    hands: Option<Hands>,
}

/// Runs one bot to the end of the run.
pub(crate) async fn run(swarm: Arc<Swarm>, index: u32, mut role: Role) -> BotResult {
    tokio::time::sleep_until(swarm.start_slot(index).into()).await;
    let mut result = BotResult::default();
    let setup = tokio::time::timeout(SETUP_LIMIT, setup(&swarm, index, &mut role)).await;
    let Ready {
        client,
        tick_rate,
        codec,
        lobby,
        eyes,
        hands,
    } = match setup {
        Ok(Ok(ready)) => ready,
        Ok(Err(kind)) => {
            return fail(&swarm, role, result, kind);
        }
        Err(_) => return fail(&swarm, role, result, "setup: timed out".into()),
    };
    result.joined = true;
    result.lobby = Some(lobby);
    swarm.joined.fetch_add(1, Ordering::Relaxed);
    swarm.settled.fetch_add(1, Ordering::Release);
    // Followers wait on the leader only during setup; the leader keeps its sender.
    drop(role);
    let mut rng = Rng::new(swarm.seed ^ (u64::from(index) << 20) ^ 0x9e37_79b9);
    let input_hz = swarm.input_hz.unwrap_or(f64::from(tick_rate));
    let (reader, writer) = client.into_split();
    let link = Arc::new(Link::new());
    // Without inputs the writer stays here: dropping it would end the connection.
    let mut idle_writer = None;
    if input_hz > 0.0 && input_hz.is_finite() {
        let period = Duration::from_secs_f64(1.0 / input_hz.min(10_000.0));
        let pick = rng.next_u64();
        let player = Player::new(
            writer,
            Arc::clone(&link),
            swarm.behavior,
            input_hz,
            rng,
            codec,
            hands,
        );
        swarm.buckets(period).add(pick, player);
    } else {
        idle_writer = Some(writer);
    }
    let mut bot = Bot::new(&swarm, link, tick_rate, eyes);
    bot.play(reader, &mut result).await;
    drop(idle_writer);
    result
}

fn fail(swarm: &Swarm, role: Role, mut result: BotResult, kind: String) -> BotResult {
    if let Role::Leader { lobby, .. } = role {
        lobby.send_replace(Slot::Failed);
    }
    result.failure = Some(kind);
    swarm.settled.fetch_add(1, Ordering::Release);
    result
}

async fn setup(swarm: &Swarm, index: u32, role: &mut Role) -> Result<Ready, String> {
    // Join latency: connect to Welcome, plus the lobby request to Joined (a redirect
    // included); not a follower's wait for its leader's lobby.
    let started = Instant::now();
    let mut client = LeanClient::connect(&swarm.target, swarm.read_buffer)
        .await
        .map_err(|e| error_kind("connect", &e))?;
    let welcome = client
        .hello(&format!("bot-{index}"), ANSWER_LIMIT)
        .await
        .map_err(|e| error_kind("hello", &e))?;
    // Deltas are the server's default; without --delta the bots ask for full snapshots,
    // so that the figures compare with the earlier full-snapshot runs.
    if !swarm.delta {
        client
            .send(&ClientMessage::Options {
                delta_snapshots: false,
            })
            .await
            .map_err(|e| error_kind("options", &e))?;
    }
    let hello_time = started.elapsed();
    let quick = ClientMessage::QuickJoin {
        options: swarm.lobby_options.clone(),
    };
    let request = match role {
        // `--join quick`: the leader quick-joins at once; the others wait until it has
        // joined and its lobby is listed before they look for one. (A crowd of
        // quick-joins arriving together would each make a lobby of their own: a cluster
        // lists a new lobby only once its node has published it.)
        Role::Leader { .. } if swarm.join == JoinMode::Quick => quick,
        Role::Follower(slot) if swarm.join == JoinMode::Quick => {
            let _ = slot.wait_for(|s| *s != Slot::Pending).await;
            tokio::time::sleep(QUICK_FOLLOW_DELAY).await;
            quick
        }
        Role::Leader { group, size, .. } => ClientMessage::CreateLobby {
            name: format!("bots-{group}"),
            max_players: u16::from(*size),
            private: false,
            options: swarm.lobby_options.clone(),
        },
        Role::Follower(slot) => match slot.wait_for(|s| *s != Slot::Pending).await {
            Ok(s) => match *s {
                Slot::Ready(id) => ClientMessage::JoinLobby {
                    target: JoinTarget::Id(id),
                    options: GameOptions::none(),
                },
                _ => return Err("join: the group's lobby was not created".into()),
            },
            Err(_) => return Err("join: the group's lobby was not created".into()),
        },
    };
    let join_started = Instant::now();
    let joined = client
        .join(&request, ANSWER_LIMIT)
        .await
        .map_err(|e| error_kind("join", &e))?;
    let latency = hello_time + join_started.elapsed();
    if let Role::Leader { lobby, .. } = role {
        lobby.send_replace(Slot::Ready(joined.lobby_id));
    }
    swarm.note_tick_rate(welcome.tick_rate);
    let state = ticksync_client::state_for(&joined).map_err(|e| error_kind("join", &e))?;
    let game = state.codec().schema().game.clone();
    if let Some(want) = swarm.game
        && game != want.schema_name()
    {
        return Err(format!(
            "join: the lobby plays {game}, not {} (--game)",
            want.schema_name()
        ));
    }
    swarm.note_game(&game);
    swarm.record_join(latency, client.redirects() > 0);
    let codec = Arc::new(state.codec().clone());
    // Only the shooter's bots need the state; the others read snapshot heads only.
    let eyes = if game == GameChoice::Shooter.schema_name() {
        Some(Eyes::new(state).map_err(|e| format!("join: {e}"))?)
    } else {
        None
    };
    let hands = eyes
        .as_ref()
        .map(|_| Hands::find(&codec))
        .transpose()
        .map_err(|e| format!("join: {e}"))?;
    Ok(Ready {
        client,
        tick_rate: welcome.tick_rate,
        codec,
        lobby: joined.lobby_id,
        eyes,
        hands,
    })
}

/// A short, countable description of an error: the stage and the kind, not the details
/// that differ from bot to bot.
pub(crate) fn error_kind(stage: &str, e: &ClientError) -> String {
    let what = match e {
        ClientError::Closed { code, reason } => format!("closed by the server ({code} {reason})"),
        ClientError::Server { code, message } => format!("server error {code} ({message})"),
        ClientError::Io(e) => format!("io error ({:?})", e.kind()),
        ClientError::Timeout => "timed out".into(),
        ClientError::Handshake(why) => format!("handshake failed ({why})"),
        ClientError::Protocol(why) => format!("websocket protocol ({why})"),
        ClientError::Codec(_) => "undecodable message".into(),
        ClientError::Frame(_) => "undecodable game frame".into(),
        ClientError::Unexpected(_) => "unexpected message".into(),
        ClientError::Ws(_) => "websocket error".into(),
    };
    format!("{stage}: {what}")
}

/// What woke the bot.
enum Event {
    Stop,
    Snapshot(SnapshotHead),
    Left(u8),
    Other,
    Failed(String),
}

/// A bot's state in its hot loop.
struct Bot<'a> {
    swarm: &'a Swarm,
    link: Arc<Link>,
    tick_period_us: f64,
    last_ack: u32,
    last_tick: Option<u32>,
    /// Smallest `arrival - tick * period` seen: the lobby's tick grid as this bot sees it.
    grid_offset_us: Option<i64>,
    window: WindowState,
    /// A shooter bot's view of the state.
    eyes: Option<Eyes>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum WindowState {
    Before,
    Open { bytes_in: u64, bytes_out: u64 },
    Closed,
}

impl<'a> Bot<'a> {
    fn new(swarm: &'a Swarm, link: Arc<Link>, tick_rate: u16, eyes: Option<Eyes>) -> Self {
        Self {
            swarm,
            link,
            tick_period_us: 1e6 / f64::from(tick_rate.max(1)),
            last_ack: 0,
            last_tick: None,
            grid_offset_us: None,
            window: WindowState::Before,
            eyes,
        }
    }

    async fn play(&mut self, mut reader: LeanReader, result: &mut BotResult) {
        let stopped = self.swarm.stop.stopped();
        tokio::pin!(stopped);
        loop {
            let event = tokio::select! {
                biased;
                () = &mut stopped => Event::Stop,
                message = reader.next_binary() => match message {
                    Ok(bytes) => self.classify(bytes),
                    Err(e) => Event::Failed(error_kind("run", &e)),
                },
            };
            let phase = self.swarm.phase.load(Ordering::Relaxed);
            self.track_window(phase, &reader, result);
            match event {
                Event::Stop => break,
                Event::Snapshot(head) => self.on_snapshot(head, phase, result),
                Event::Left(reason) => {
                    result.disconnect = Some(format!("run: left the lobby (reason {reason})"));
                    break;
                }
                Event::Other => result.other_messages += 1,
                Event::Failed(kind) => {
                    // The writer may know better (it failed first, the read saw the end).
                    result.disconnect = Some(self.link.failure().unwrap_or(kind));
                    break;
                }
            }
        }
        self.close_window(&reader, result);
        result.inputs = self.link.inputs.load(Ordering::Relaxed);
        result.shooter = self.eyes.as_ref().map(|e| e.counts);
        if result.disconnect.is_none() {
            result.disconnect = self.link.failure();
        }
        if result.disconnect.is_some() {
            self.swarm.disconnected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What a message is; a shooter bot also applies its snapshots and counts its
    /// events here.
    fn classify(&mut self, bytes: &[u8]) -> Event {
        let head = peek_snapshot_head(bytes);
        let game_frame = ticksync_protocol::codec::is_game_frame(bytes);
        if let Some(eyes) = &mut self.eyes
            && game_frame
        {
            let measuring = self.swarm.phase.load(Ordering::Relaxed) == MEASURING;
            let seen = if head.is_some() {
                eyes.on_snapshot(bytes, &self.link.orders, measuring)
            } else {
                eyes.on_event(bytes, measuring)
            };
            if let Err(kind) = seen {
                return Event::Failed(kind);
            }
        }
        match head {
            Some(head) => Event::Snapshot(head),
            // Game events: counted (and decoded by shooter bots only).
            None if game_frame => Event::Other,
            None => match decode_server(bytes) {
                Ok(ServerMessage::Left { reason }) => Event::Left(reason),
                Ok(_) => Event::Other,
                Err(_) => Event::Failed("run: undecodable message".into()),
            },
        }
    }

    fn track_window(&mut self, phase: u8, reader: &LeanReader, result: &mut BotResult) {
        if phase == MEASURING && self.window == WindowState::Before {
            self.window = WindowState::Open {
                bytes_in: reader.bytes_in(),
                bytes_out: self.link.bytes_out.load(Ordering::Relaxed),
            };
        } else if phase > MEASURING {
            self.close_window(reader, result);
        }
    }

    fn close_window(&mut self, reader: &LeanReader, result: &mut BotResult) {
        if let WindowState::Open {
            bytes_in,
            bytes_out,
        } = self.window
        {
            result.bytes_in = reader.bytes_in() - bytes_in;
            result.bytes_out = self.link.bytes_out.load(Ordering::Relaxed) - bytes_out;
            self.window = WindowState::Closed;
        }
    }

    fn on_snapshot(&mut self, head: SnapshotHead, phase: u8, result: &mut BotResult) {
        let now_us = self.swarm.micros(Instant::now());
        self.swarm.snapshots.fetch_add(1, Ordering::Relaxed);
        let measuring = phase == MEASURING;

        let offset = now_us as i64 - (f64::from(head.tick) * self.tick_period_us) as i64;
        let grid = self.grid_offset_us.map_or(offset, |g| g.min(offset));
        self.grid_offset_us = Some(grid);

        if measuring {
            result.snapshots += 1;
            result.deltas += u32::from(head.delta);
            if let Some(last) = self.last_tick {
                result.skipped += head.tick.saturating_sub(last).saturating_sub(1);
            }
            result.ticks = Some(match result.ticks {
                Some((first, _)) => (first, head.tick),
                None => (head.tick, head.tick),
            });
        }
        self.last_tick = Some(head.tick);

        let ack = head.ack_seq;
        let acked = ack > self.last_ack;
        if !(acked || measuring) {
            return;
        }
        // Straight into the histograms, under one lock: no buffer of samples.
        let recent = self.swarm.recent.load(Ordering::Relaxed);
        let mut h = self.swarm.hists();
        if acked {
            let oldest_kept = ack.saturating_sub(RING as u32 - 1).max(1);
            let from = (self.last_ack + 1).max(oldest_kept);
            if measuring {
                result.acks_beyond_ring += from - (self.last_ack + 1);
            }
            for seq in from..=ack {
                if let Some(sent_us) = self.link.sent_at(seq) {
                    h.record_latency(now_us.saturating_sub(sent_us), measuring, recent);
                }
            }
            self.last_ack = ack;
        }
        if measuring {
            let lateness = u64::try_from(offset - grid).unwrap_or(0);
            h.lateness.saturating_record(lateness);
        }
    }
}

/// SplitMix64: small, fast, and good enough for directions and phases.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_uniform_enough() {
        let mut rng = Rng::new(7);
        let n = 100_000;
        let mean = (0..n).map(|_| rng.unit()).sum::<f64>() / f64::from(n);
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!(
            (0..1000)
                .map(|_| rng.unit())
                .all(|u| (0.0..1.0).contains(&u))
        );
    }
}
