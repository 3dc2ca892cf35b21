//! A lobby: its handle (what sessions and the registry see) and its tick task (which owns
//! the game world).
//!
//! Sessions reach the task only through two bounded channels: `commands` (join, awaited
//! with a deadline) and `inputs` (`try_send`; a full queue drops the input and counts it).
//! The task never waits on either: it drains both at the start of each tick, so a flood of
//! inputs costs no extra wake-ups. Every tick it steps the game, encodes the snapshot body
//! once (see `broadcast.rs`) and writes each player's snapshot to the player's socket
//! itself, through the connection's outbox (`outbox.rs`): no session wakes up for it.
//! Rare, must-arrive messages (players joining and leaving, scores) take the same way, in
//! order with the snapshots; a player too far behind to take them is dropped from the
//! lobby.
//!
//! A player whose connection drops without a goodbye (its outbox refuses the seat's
//! writes) keeps its seat, idle, for the resume grace; a resumed connection re-attaches to
//! the same entity.
//! A panic in the game's code ends only this lobby: its players are told, every other
//! lobby keeps ticking.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use glam::Vec2;
use ticksync_protocol::codec::{encode_delta_body, encode_server, encode_snapshot_body};
use ticksync_protocol::{
    EntityId, EntityState, ErrorCode, Input, Joined, LeftReason, PlayerInfo, ScoreEntry,
    ServerMessage,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::Shared;
use crate::broadcast::{TickFrame, deliver};
use crate::game::{EntityView, Game, LobbySpec, PlayerInput, quantize_views};
use crate::metrics::AtomicHistogram;
use crate::outbox::{Delivery, Link, binary_frame, payload_len};

/// Capacity of a lobby's join queue.
const COMMAND_QUEUE: usize = 64;
/// Per-player room in a lobby's input queue: a player sending at twice the tick rate
/// never fills its share between two ticks.
const INPUTS_PER_PLAYER: usize = 4;

/// What the registry and sessions know of a lobby.
#[derive(Debug)]
pub(crate) struct LobbyHandle {
    /// Unique id.
    pub(crate) id: u32,
    /// Display name.
    pub(crate) name: String,
    /// Player cap.
    pub(crate) max_players: u8,
    /// Private lobbies are not listed.
    pub(crate) private: bool,
    /// Join code (private lobbies).
    pub(crate) code: Option<String>,
    /// Players in the lobby, updated by the tick task.
    pub(crate) players: AtomicU8,
    /// Set once the tick task stops accepting players.
    pub(crate) closed: AtomicBool,
    /// Joins, awaited by the session.
    pub(crate) commands: mpsc::Sender<LobbyCommand>,
    /// Inputs, `try_send` only.
    pub(crate) inputs: mpsc::Sender<InputMsg>,
    /// The tick the lobby is at.
    pub(crate) tick: AtomicU32,
    /// Counters for operators.
    pub(crate) stats: LobbyStats,
}

/// Counters of one lobby, written by its tick task and sessions, read by anyone.
#[derive(Debug, Default)]
pub(crate) struct LobbyStats {
    /// Ticks run.
    pub(crate) ticks: AtomicU64,
    /// Inputs dropped because the lobby's input queue was full.
    pub(crate) inputs_dropped_full: AtomicU64,
    /// Inputs replaced by a newer one of the same player before a tick applied them.
    pub(crate) inputs_superseded: AtomicU64,
    /// Inputs older than one already applied.
    pub(crate) inputs_stale: AtomicU64,
    /// Inputs over the connection's rate limit (dropped by the session).
    pub(crate) inputs_rate_limited: AtomicU64,
    /// How late this lobby's ticks started against their schedule.
    pub(crate) tick_lateness: AtomicHistogram,
    /// Simulation + encode time of this lobby's ticks.
    pub(crate) tick_time: AtomicHistogram,
}

impl LobbyHandle {
    /// Whether a new player could join now (the tick task has the final word).
    pub(crate) fn has_room(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
            && self.players.load(Ordering::Acquire) < self.max_players
    }
}

/// A request to the tick task.
#[derive(Debug)]
pub(crate) enum LobbyCommand {
    /// Add a player.
    Join {
        /// Server-wide player id.
        player_id: u32,
        /// Display name.
        name: String,
        /// The connection asking (a stale connection cannot act for its successor).
        conn: u64,
        /// The player's connection.
        link: Link,
        /// The answer.
        reply: oneshot::Sender<Result<Seated, JoinRefused>>,
    },
    /// A resumed connection takes its player's seat back.
    Reattach {
        /// The player.
        player_id: u32,
        /// Its entity.
        entity: EntityId,
        /// The new connection.
        conn: u64,
        /// Its connection.
        link: Link,
        /// The answer.
        reply: oneshot::Sender<Result<Seated, JoinRefused>>,
    },
    /// The player leaves for good.
    Leave {
        /// The player.
        player_id: u32,
        /// Its entity.
        entity: EntityId,
        /// The connection asking.
        conn: u64,
    },
    /// An operator closes the lobby.
    Close {
        /// What the players are told.
        reason: String,
    },
}

/// A successful join: the `Joined` message is already on its way to the player.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seated {
    /// The player's entity.
    pub(crate) entity: EntityId,
}

/// Why a join failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinRefused {
    /// The lobby is at its cap.
    Full,
    /// The lobby is closing, or (re-attach) the seat is gone.
    Closed,
}

/// One player's input on its way to the tick task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputMsg {
    /// The sender's entity.
    pub(crate) entity: EntityId,
    /// The sender's player id: an input still queued when its player left must not steer
    /// the next player to get the same entity.
    pub(crate) player_id: u32,
    /// The input, validated by the session (finite, direction length at most 1).
    pub(crate) input: Input,
}

struct Seat {
    player_id: u32,
    name: String,
    /// The connection the seat belongs to now.
    conn: u64,
    presence: Presence,
    input: PlayerInput,
    /// Sequence of the input in `input`.
    applied_seq: u32,
    /// Sequence of the newest input received (applied at the next tick).
    newest_seq: u32,
}

/// Whether a seat's player is connected.
#[derive(Debug)]
enum Presence {
    /// Connected: the way to its connection.
    Here(Link),
    /// The connection dropped at this instant; the seat goes after the resume grace.
    Away(Instant),
}

impl Seat {
    fn link(&self) -> Option<&Link> {
        match &self.presence {
            Presence::Here(link) => Some(link),
            Presence::Away(_) => None,
        }
    }

    /// The connection dropped (or left the seat): keep the seat, idle, for the resume
    /// grace.
    fn detach(&mut self) {
        if let Presence::Here(_) = self.presence {
            self.presence = Presence::Away(Instant::now());
            // Idle while away: others see it stand still.
            self.input = PlayerInput::default();
        }
    }
}

/// The tick task's state. Owned by the task; nothing else can reach the game.
pub(crate) struct Lobby {
    handle: Arc<LobbyHandle>,
    shared: Arc<Shared>,
    game: Box<dyn Game>,
    tick_period: Duration,
    commands: mpsc::Receiver<LobbyCommand>,
    inputs: mpsc::Receiver<InputMsg>,
    /// This tick's snapshot, its buffers reused from tick to tick.
    frame: TickFrame,
    /// Where each player's snapshot message is built.
    scratch: Vec<u8>,
    /// Players whose connection turned out gone during delivery.
    gone: Vec<EntityId>,
    /// Indexed by entity id.
    seats: Vec<Option<Seat>>,
    tick: u32,
    empty_since: Option<Instant>,
    // Scratch buffers reused every tick.
    step_inputs: Vec<(EntityId, PlayerInput)>,
    views: Vec<EntityView>,
    states: Vec<EntityState>,
    /// Last tick's entities, the baseline of this tick's delta.
    previous: Vec<EntityState>,
    scores: Vec<ScoreEntry>,
    last_scores: Vec<ScoreEntry>,
}

impl Lobby {
    /// Creates a lobby and its handle. The caller spawns [`Lobby::run`].
    pub(crate) fn new(
        id: u32,
        spec: LobbySpec,
        code: Option<String>,
        game: Box<dyn Game>,
        shared: Arc<Shared>,
    ) -> Self {
        let LobbySpec {
            name, max_players, ..
        } = spec;
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (inputs_tx, inputs) =
            mpsc::channel(usize::from(max_players).max(1) * INPUTS_PER_PLAYER);
        let handle = Arc::new(LobbyHandle {
            id,
            name,
            max_players,
            private: code.is_some(),
            code,
            players: AtomicU8::new(0),
            closed: AtomicBool::new(false),
            commands: commands_tx,
            inputs: inputs_tx,
            tick: AtomicU32::new(0),
            stats: LobbyStats::default(),
        });
        Self {
            handle,
            tick_period: shared.config.tick_period(),
            shared,
            game,
            commands,
            inputs,
            frame: TickFrame {
                tick: 0,
                body: Vec::new(),
                delta: Vec::new(),
                acks: Vec::new(),
            },
            scratch: Vec::new(),
            gone: Vec::new(),
            seats: (0..max_players).map(|_| None).collect(),
            tick: 0,
            empty_since: Some(Instant::now()),
            step_inputs: Vec::new(),
            views: Vec::new(),
            states: Vec::new(),
            previous: Vec::new(),
            scores: Vec::new(),
            last_scores: Vec::new(),
        }
    }

    /// The handle to register.
    pub(crate) fn handle(&self) -> Arc<LobbyHandle> {
        Arc::clone(&self.handle)
    }

    /// Runs the fixed tick until the lobby empties for its grace period or `cancel` fires.
    ///
    /// `MissedTickBehavior::Skip`: when the process falls behind (a stall, an overloaded
    /// core), missed ticks are dropped rather than run back to back. The schedule stays
    /// on its grid, clients never get a burst of snapshots, and an overloaded server
    /// degrades to a lower tick rate instead of a catch-up spiral. The tick number counts
    /// simulation steps, so it stays contiguous.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut interval = tokio::time::interval(self.tick_period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        info!(lobby = self.handle.id, name = %self.handle.name, "lobby opened");
        loop {
            let scheduled = tokio::select! {
                () = cancel.cancelled() => break,
                at = interval.tick() => at,
            };
            let started = Instant::now();
            let late = started.saturating_duration_since(scheduled);
            self.handle.stats.tick_lateness.observe(late);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.run_tick()));
            let took = started.elapsed();
            // Simulation and encoding alone; the rest of the tick is the socket writes.
            let compute = match &outcome {
                Ok(Ok(compute)) => (*compute).min(took),
                _ => took,
            };
            let stats = &self.shared.stats;
            stats.ticks.fetch_add(1, Ordering::Relaxed);
            stats.tick_time.observe(compute);
            stats.fanout_time.observe(took - compute);
            stats.tick_lateness.observe(late);
            self.handle.stats.tick_time.observe(compute);
            if took > self.tick_period || late > self.tick_period {
                stats.ticks_overrun.fetch_add(1, Ordering::Relaxed);
            }
            match outcome {
                Ok(Err(reason)) => {
                    self.close(ErrorCode::LobbyClosed, &reason, LeftReason::LobbyClosed);
                    return;
                }
                Ok(Ok(_)) => {}
                Err(panic) => {
                    let what = panic_message(panic.as_ref());
                    error!(lobby = self.handle.id, panic = %what, "the game panicked; closing this lobby");
                    self.shared
                        .stats
                        .lobby_panics
                        .fetch_add(1, Ordering::Relaxed);
                    self.close(
                        ErrorCode::LobbyClosed,
                        "the game crashed; the lobby is closed",
                        LeftReason::LobbyCrashed,
                    );
                    return;
                }
            }
        }
        self.close(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
            LeftReason::LobbyClosed,
        );
    }

    /// One tick. Returns its simulation and encoding time, or why the lobby should close.
    fn run_tick(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        if let Some(reason) = self.handle_commands() {
            return Err(reason);
        }
        self.check_connections();
        if self.player_count() == 0 {
            let since = *self.empty_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.shared.config.empty_lobby_grace {
                debug!(lobby = self.handle.id, "empty for its grace period");
                return Err("the lobby was empty".into());
            }
        } else {
            self.empty_since = None;
        }
        self.take_inputs();
        self.step();
        self.encode();
        let compute = started.elapsed();
        self.deliver();
        self.send_scores();
        self.tick = self.tick.wrapping_add(1);
        self.handle.tick.store(self.tick, Ordering::Relaxed);
        self.handle.stats.ticks.fetch_add(1, Ordering::Relaxed);
        Ok(compute)
    }

    fn player_count(&self) -> usize {
        self.seats.iter().filter(|s| s.is_some()).count()
    }

    fn update_count(&self) {
        let n = u8::try_from(self.player_count()).unwrap_or(u8::MAX);
        self.handle.players.store(n, Ordering::Release);
    }

    /// Applies queued commands; returns a reason if an operator closed the lobby.
    fn handle_commands(&mut self) -> Option<String> {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                LobbyCommand::Join {
                    player_id,
                    name,
                    conn,
                    link,
                    reply,
                } => {
                    let result = self.join(player_id, name, conn, link);
                    // The session may have given up waiting; then it never learns it
                    // joined, ends the seat, and the seat expires like a dropped one.
                    let _ = reply.send(result);
                }
                LobbyCommand::Reattach {
                    player_id,
                    entity,
                    conn,
                    link,
                    reply,
                } => {
                    let result = self.reattach(player_id, entity, conn, link);
                    let _ = reply.send(result);
                }
                LobbyCommand::Leave {
                    player_id,
                    entity,
                    conn,
                } => {
                    let index = usize::from(entity);
                    let owned = self
                        .seats
                        .get(index)
                        .and_then(Option::as_ref)
                        .is_some_and(|s| s.player_id == player_id && s.conn == conn);
                    if owned {
                        self.remove(index);
                    }
                }
                LobbyCommand::Close { reason } => return Some(reason),
            }
        }
        None
    }

    fn join(
        &mut self,
        player_id: u32,
        name: String,
        conn: u64,
        link: Link,
    ) -> Result<Seated, JoinRefused> {
        let Some(free) = self.seats.iter().position(Option::is_none) else {
            return Err(JoinRefused::Full);
        };
        // Seats are at most 250 (the protocol's cap), so the index fits an entity id.
        let entity = EntityId::try_from(free).map_err(|_| JoinRefused::Full)?;
        self.game.spawn(entity);
        let me = PlayerInfo {
            entity,
            player_id,
            name: name.clone(),
        };
        self.broadcast_event(&ServerMessage::PlayerJoined(me));
        self.seats[free] = Some(Seat {
            player_id,
            name,
            conn,
            presence: Presence::Here(link),
            input: PlayerInput::default(),
            applied_seq: 0,
            newest_seq: 0,
        });
        self.welcome(entity);
        self.update_count();
        debug!(lobby = self.handle.id, player_id, entity, "player joined");
        Ok(Seated { entity })
    }

    fn reattach(
        &mut self,
        player_id: u32,
        entity: EntityId,
        conn: u64,
        link: Link,
    ) -> Result<Seated, JoinRefused> {
        let Some(seat) = self
            .seats
            .get_mut(usize::from(entity))
            .and_then(Option::as_mut)
            .filter(|s| s.player_id == player_id)
        else {
            return Err(JoinRefused::Closed);
        };
        seat.conn = conn;
        seat.presence = Presence::Here(link);
        // The client restarts its input sequence with the new connection's inputs.
        seat.input = PlayerInput::default();
        seat.newest_seq = 0;
        seat.applied_seq = 0;
        self.welcome(entity);
        debug!(lobby = self.handle.id, player_id, entity, "player resumed");
        Ok(Seated { entity })
    }

    /// Queues `Joined` and the scoreboard for a player who (re-)enters.
    fn welcome(&mut self, entity: EntityId) {
        let size = self.game.world_size();
        let joined = ServerMessage::Joined(Joined {
            lobby_id: self.handle.id,
            name: self.handle.name.clone(),
            code: self.handle.code.clone(),
            max_players: self.handle.max_players,
            your_entity: entity,
            tick: self.tick,
            world_width: size.x,
            world_height: size.y,
            max_speed: self.game.max_speed(),
            players: self.player_list(),
        });
        self.send_event(entity, &binary_frame(&encode_server(&joined)));
        self.scores.clear();
        self.game.scores(&mut self.scores);
        let board = ServerMessage::Scoreboard {
            entries: self.scores.clone(),
        };
        // Everyone else gets the new scoreboard when this tick publishes.
        self.send_event(entity, &binary_frame(&encode_server(&board)));
    }

    fn player_list(&self) -> Vec<PlayerInfo> {
        self.seats
            .iter()
            .enumerate()
            .filter_map(|(i, seat)| {
                let seat = seat.as_ref()?;
                Some(PlayerInfo {
                    entity: EntityId::try_from(i).ok()?,
                    player_id: seat.player_id,
                    name: seat.name.clone(),
                })
            })
            .collect()
    }

    /// Removes players detached (see [`Seat::detach`]) for longer than the resume grace.
    fn check_connections(&mut self) {
        let grace = self.shared.config.resume_grace;
        for i in 0..self.seats.len() {
            let expired = self.seats[i].as_ref().is_some_and(
                |seat| matches!(seat.presence, Presence::Away(at) if at.elapsed() >= grace),
            );
            if expired {
                self.remove(i);
            }
        }
    }

    fn remove(&mut self, index: usize) {
        let Some(seat) = self.seats[index].take() else {
            return;
        };
        let Ok(entity) = EntityId::try_from(index) else {
            return;
        };
        self.game.despawn(entity);
        self.broadcast_event(&ServerMessage::PlayerLeft {
            entity,
            player_id: seat.player_id,
        });
        self.update_count();
        debug!(
            lobby = self.handle.id,
            player_id = seat.player_id,
            entity,
            "player left"
        );
    }

    /// Sends one must-arrive frame to a player.
    fn send_event(&mut self, entity: EntityId, frame: &Bytes) {
        let index = usize::from(entity);
        let Some(seat) = self.seats.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(link) = seat.link() else {
            return;
        };
        match link.out.send_event(link.epoch, frame) {
            Delivery::Written | Delivery::Kept | Delivery::Replaced => {
                self.shared
                    .stats
                    .bytes_out
                    .fetch_add(payload_len(frame) as u64, Ordering::Relaxed);
            }
            Delivery::Stale => seat.detach(),
            Delivery::Overflow => {
                // The client is too far behind to follow the lobby; its session closes
                // with a clear reason.
                warn!(
                    lobby = self.handle.id,
                    player_id = seat.player_id,
                    "too much waiting for a slow client; dropping player"
                );
                self.remove(index);
            }
        }
    }

    fn broadcast_event(&mut self, message: &ServerMessage) {
        let frame = binary_frame(&encode_server(message));
        for i in 0..self.seats.len() {
            if let Ok(entity) = EntityId::try_from(i) {
                self.send_event(entity, &frame);
            }
        }
    }

    fn take_inputs(&mut self) {
        let stats = &self.handle.stats;
        let server = &self.shared.stats;
        while let Ok(msg) = self.inputs.try_recv() {
            let Some(seat) = self
                .seats
                .get_mut(usize::from(msg.entity))
                .and_then(Option::as_mut)
                .filter(|s| s.player_id == msg.player_id)
            else {
                continue;
            };
            if msg.input.seq <= seat.newest_seq {
                stats.inputs_stale.fetch_add(1, Ordering::Relaxed);
                server.inputs_stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if seat.newest_seq > seat.applied_seq {
                stats.inputs_superseded.fetch_add(1, Ordering::Relaxed);
                server.inputs_superseded.fetch_add(1, Ordering::Relaxed);
            }
            seat.newest_seq = msg.input.seq;
            seat.input = PlayerInput {
                dir: Vec2::new(msg.input.dir_x, msg.input.dir_y),
                buttons: msg.input.buttons,
            };
        }
    }

    fn step(&mut self) {
        self.step_inputs.clear();
        for (i, seat) in self.seats.iter_mut().enumerate() {
            if let (Some(seat), Ok(entity)) = (seat.as_mut(), EntityId::try_from(i)) {
                seat.applied_seq = seat.newest_seq;
                self.step_inputs.push((entity, seat.input));
            }
        }
        let dt = self.tick_period.as_secs_f32();
        self.game.step(&self.step_inputs, self.tick, dt);
    }

    /// Views, quantizes and encodes this tick's snapshot into `frame`, once for everyone.
    fn encode(&mut self) {
        self.views.clear();
        self.game.view(&mut self.views);
        let size = self.game.world_size();
        let max_speed = self.game.max_speed();
        self.states.clear();
        quantize_views(&self.views, size, max_speed, &mut self.states);
        let frame = &mut self.frame;
        frame.tick = self.tick;
        frame.body.clear();
        encode_snapshot_body(self.tick, 0, &self.states, &mut frame.body);
        frame.delta.clear();
        let delta_ok = self.tick.checked_sub(1).is_some_and(|baseline| {
            encode_delta_body(
                self.tick,
                baseline,
                &self.previous,
                &self.states,
                &mut frame.delta,
            )
        });
        if !delta_ok || frame.delta.len() >= frame.body.len() {
            frame.delta.clear();
        }
        std::mem::swap(&mut self.previous, &mut self.states);
        frame.acks.clear();
        frame.acks.extend(
            self.seats
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| s.applied_seq)),
        );
    }

    /// Writes each player's snapshot to its connection.
    fn deliver(&mut self) {
        let links =
            self.seats.iter().enumerate().filter_map(|(i, seat)| {
                Some((EntityId::try_from(i).ok()?, seat.as_ref()?.link()?))
            });
        let done = deliver(&self.frame, links, &mut self.scratch, &mut self.gone);
        for entity in self.gone.drain(..) {
            if let Some(seat) = self
                .seats
                .get_mut(usize::from(entity))
                .and_then(Option::as_mut)
            {
                seat.detach();
            }
        }
        let stats = &self.shared.stats;
        stats.snapshots_sent.fetch_add(done.sent, Ordering::Relaxed);
        stats.bytes_out.fetch_add(done.bytes, Ordering::Relaxed);
        if done.skipped > 0 {
            stats
                .snapshots_skipped
                .fetch_add(done.skipped, Ordering::Relaxed);
        }
    }

    /// Tells everyone the scores when they changed.
    fn send_scores(&mut self) {
        self.scores.clear();
        self.game.scores(&mut self.scores);
        if self.scores != self.last_scores {
            let board = ServerMessage::Scoreboard {
                entries: self.scores.clone(),
            };
            self.broadcast_event(&board);
            std::mem::swap(&mut self.scores, &mut self.last_scores);
        }
    }

    /// Stops taking players, leaves the registry and tells everyone still here.
    fn close(mut self, code: ErrorCode, reason: &str, left: LeftReason) {
        self.handle.closed.store(true, Ordering::Release);
        self.shared.registry.remove(&self.handle);
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            if let LobbyCommand::Join { reply, .. } | LobbyCommand::Reattach { reply, .. } = command
            {
                let _ = reply.send(Err(JoinRefused::Closed));
            }
        }
        // Straight to the outboxes: after a panic the game must not be called again.
        let error = binary_frame(&encode_server(&ServerMessage::error(code, reason)));
        let left = binary_frame(&encode_server(&ServerMessage::Left { reason: left as u8 }));
        for seat in self.seats.iter().flatten() {
            if let Some(link) = seat.link() {
                let _ = link.out.send_event(link.epoch, &error);
                let _ = link.out.send_event(link.epoch, &left);
                link.out.lobby_left(link.epoch);
            }
        }
        info!(
            lobby = self.handle.id,
            ticks = self.tick,
            reason,
            "lobby closed"
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
