//! A lobby's tick task: it owns the game world.
//!
//! It takes what its handle (`handle.rs`) collected at the start of each tick: joins from
//! the bounded queue, every seat's newest input and leave flag from the seat's mailbox,
//! an operator's close. Every tick it steps the game, encodes the snapshot body once (see
//! `wire/broadcast.rs`) and writes each player's snapshot to the player's socket itself,
//! through the connection's outbox (`wire/outbox.rs`): no session wakes up for it. Rare,
//! must-arrive messages (players joining and leaving, scores) take the same way, in order
//! with the snapshots; a player too far behind to take them is dropped from the lobby.
//!
//! A lobby with no player does not tick: it sleeps until a join, a close or the end of
//! its empty grace (`--empty-lobby-grace`, or the shorter `--abandoned-lobby-grace` if it
//! never had two players at once).
//!
//! A player whose connection drops without a goodbye (its outbox refuses the seat's
//! writes) keeps its seat, idle, for the resume grace; a resumed connection re-attaches to
//! the same entity.
//! A panic in the game's code ends only this lobby: its players are told, every other
//! lobby keeps ticking.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use glam::Vec2;
use ticksync_protocol::codec::{encode_delta_body, encode_server, encode_snapshot_body};
use ticksync_protocol::{
    EntityId, EntityState, ErrorCode, Joined, LeftReason, PlayerInfo, ScoreEntry, ServerMessage,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::handle::{Command, JoinRefused, JoinRequest, LobbyHandle, SeatBox, Seated};
use crate::game::legacy::{EntityView, Game, LobbySpec, PlayerInput, quantize_views};
use crate::stats::Stats;
use crate::wire::broadcast::{TickFrame, deliver};
use crate::wire::frame::{binary_frame, payload_len};
use crate::wire::outbox::{Delivery, Link};

/// What a lobby needs from the server: its timing and the server-wide counters.
#[derive(Debug, Clone)]
pub(crate) struct LobbyEnv {
    /// Time between ticks.
    pub(crate) tick_period: Duration,
    /// How long an empty lobby stays open.
    pub(crate) empty_grace: Duration,
    /// How long it stays open if it never had two players at once (created and left).
    pub(crate) abandoned_grace: Duration,
    /// How long a dropped player keeps its seat.
    pub(crate) resume_grace: Duration,
    /// Server-wide counters.
    pub(crate) stats: Arc<Stats>,
}

struct Seat {
    player_id: u32,
    /// Where the player's session puts inputs and its leave.
    mailbox: Arc<SeatBox>,
    name: String,
    /// The connection the seat belongs to now.
    conn: u64,
    presence: Presence,
    input: PlayerInput,
    /// Sequence of the input in `input`.
    applied_seq: u32,
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
    env: LobbyEnv,
    game: Box<dyn Game>,
    commands: mpsc::Receiver<Command>,
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
    /// Most players seated at once so far: a lobby that never had two is one its creator
    /// abandoned, and closes after the short grace.
    peak_players: usize,
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
        env: LobbyEnv,
    ) -> Self {
        let LobbySpec {
            name, max_players, ..
        } = spec;
        let (handle, commands) = LobbyHandle::new(id, name, max_players, code);
        Self {
            handle,
            env,
            game,
            commands,
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
            peak_players: 0,
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

    /// Runs the fixed tick until the lobby empties for its grace period, an operator
    /// closes it, or `cancel` fires.
    ///
    /// `MissedTickBehavior::Skip`: when the process falls behind (a stall, an overloaded
    /// core), missed ticks are dropped rather than run back to back. The schedule stays
    /// on its grid, clients never get a burst of snapshots, and an overloaded server
    /// degrades to a lower tick rate instead of a catch-up spiral. The tick number counts
    /// simulation steps, so it stays contiguous.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut interval = tokio::time::interval(self.env.tick_period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        info!(lobby = self.handle.id(), name = %self.handle.name(), "lobby opened");
        loop {
            if self.player_count() == 0 {
                // Nobody to simulate for: sleep until someone joins (or the grace ends).
                match self.idle(&cancel).await {
                    Idle::Woken => interval.reset_immediately(),
                    Idle::Cancelled => break,
                    Idle::Close(reason) => {
                        self.close(ErrorCode::LobbyClosed, &reason, LeftReason::LobbyClosed);
                        return;
                    }
                }
            }
            let scheduled = tokio::select! {
                () = cancel.cancelled() => break,
                at = interval.tick() => at,
            };
            let started = Instant::now();
            let late = started.saturating_duration_since(scheduled);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.run_tick()));
            let took = started.elapsed();
            // Simulation and encoding alone; the rest of the tick is the socket writes.
            let compute = match &outcome {
                Ok(Ok(compute)) => (*compute).min(took),
                _ => took,
            };
            let stats = &self.env.stats;
            stats.ticks.fetch_add(1, Ordering::Relaxed);
            stats.tick_time.observe(compute);
            stats.fanout_time.observe(took - compute);
            stats.tick_lateness.observe(late);
            self.handle.tick_ran(compute, late);
            if took > self.env.tick_period || late > self.env.tick_period {
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
                    error!(lobby = self.handle.id(), panic = %what, "the game panicked; closing this lobby");
                    self.env.stats.lobby_panics.fetch_add(1, Ordering::Relaxed);
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

    /// Waits, without ticking, for a join or re-attach, an operator's close, the end of
    /// the empty grace (a close) or `cancel`.
    async fn idle(&mut self, cancel: &CancellationToken) -> Idle {
        let since = *self.empty_since.get_or_insert_with(Instant::now);
        let grace = if self.peak_players >= 2 {
            self.env.empty_grace
        } else {
            self.env.abandoned_grace.min(self.env.empty_grace)
        };
        let deadline = tokio::time::sleep_until(since + grace);
        tokio::pin!(deadline);
        loop {
            if let Some(reason) = self.handle.close_requested() {
                return Idle::Close(reason);
            }
            let handle = Arc::clone(&self.handle);
            tokio::select! {
                () = cancel.cancelled() => return Idle::Cancelled,
                () = &mut deadline => {
                    debug!(lobby = self.handle.id(), "empty for its grace period");
                    return Idle::Close("the lobby was empty".into());
                }
                command = self.commands.recv() => match command {
                    Some(command) => {
                        self.handle_command(command);
                        if self.player_count() > 0 {
                            return Idle::Woken;
                        }
                    }
                    None => return Idle::Cancelled,
                },
                () = handle.woken() => {}
            }
        }
    }

    /// One tick. Returns its simulation and encoding time, or why the lobby should close.
    fn run_tick(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        if let Some(reason) = self.handle.close_requested() {
            return Err(reason);
        }
        // Leaves first: a seat its player left may be claimed by a join queued since.
        self.take_inputs();
        self.check_connections();
        while let Ok(command) = self.commands.try_recv() {
            self.handle_command(command);
        }
        if self.player_count() == 0 {
            // The next round of `run` sleeps; nothing to simulate or send.
            self.empty_since.get_or_insert_with(Instant::now);
            return Ok(started.elapsed());
        }
        self.empty_since = None;
        self.step();
        self.encode();
        let compute = started.elapsed();
        self.deliver();
        self.send_scores();
        self.tick = self.tick.wrapping_add(1);
        self.handle.set_tick(self.tick);
        Ok(compute)
    }

    fn player_count(&self) -> usize {
        self.seats.iter().filter(|s| s.is_some()).count()
    }

    fn update_count(&mut self) {
        let count = self.player_count();
        self.peak_players = self.peak_players.max(count);
        let n = u8::try_from(count).unwrap_or(u8::MAX);
        self.handle.set_players(n);
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Join { join, claim, reply } => {
                let result = self.join(join);
                if result.is_ok() {
                    claim.keep();
                }
                // The session may have given up waiting; then it never learns it joined,
                // ends the seat, and the seat expires like a dropped one.
                let _ = reply.send(result);
            }
            Command::Reattach {
                join,
                entity,
                reply,
            } => {
                let result = self.reattach(join, entity);
                let _ = reply.send(result);
            }
        }
    }

    fn join(&mut self, join: JoinRequest) -> Result<Seated, JoinRefused> {
        let JoinRequest {
            player_id,
            name,
            conn,
            link,
        } = join;
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
        let mailbox = SeatBox::new(conn);
        self.seats[free] = Some(Seat {
            player_id,
            mailbox: Arc::clone(&mailbox),
            name,
            conn,
            presence: Presence::Here(link),
            input: PlayerInput::default(),
            applied_seq: 0,
        });
        self.welcome(entity);
        self.update_count();
        debug!(lobby = self.handle.id(), player_id, entity, "player joined");
        Ok(Seated {
            entity,
            seat: mailbox,
        })
    }

    fn reattach(&mut self, join: JoinRequest, entity: EntityId) -> Result<Seated, JoinRefused> {
        let JoinRequest {
            player_id,
            conn,
            link,
            ..
        } = join;
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
        seat.mailbox.hand_over(conn);
        seat.input = PlayerInput::default();
        seat.applied_seq = 0;
        let mailbox = Arc::clone(&seat.mailbox);
        self.welcome(entity);
        debug!(
            lobby = self.handle.id(),
            player_id, entity, "player resumed"
        );
        Ok(Seated {
            entity,
            seat: mailbox,
        })
    }

    /// Queues `Joined` and the scoreboard for a player who (re-)enters.
    fn welcome(&mut self, entity: EntityId) {
        let size = self.game.world_size();
        let joined = ServerMessage::Joined(Joined {
            lobby_id: self.handle.id(),
            name: self.handle.name().to_owned(),
            code: self.handle.code().map(str::to_owned),
            max_players: self.handle.max_players(),
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
        let grace = self.env.resume_grace;
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
        if seat.mailbox.free() {
            self.handle.seat_freed();
        }
        self.broadcast_event(&ServerMessage::PlayerLeft {
            entity,
            player_id: seat.player_id,
        });
        self.update_count();
        debug!(
            lobby = self.handle.id(),
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
                self.env
                    .stats
                    .bytes_out
                    .fetch_add(payload_len(frame) as u64, Ordering::Relaxed);
            }
            Delivery::Stale => seat.detach(),
            Delivery::Overflow => {
                // The client is too far behind to follow the lobby; its session closes
                // with a clear reason.
                warn!(
                    lobby = self.handle.id(),
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

    /// Takes every seat's newest input and removes the seats whose player left.
    fn take_inputs(&mut self) {
        for i in 0..self.seats.len() {
            let Some(seat) = self.seats[i].as_mut() else {
                continue;
            };
            let taken = seat.mailbox.take();
            if taken.leave {
                self.remove(i);
                continue;
            }
            if let Some(input) = taken.input {
                seat.applied_seq = input.seq;
                seat.input = PlayerInput {
                    dir: Vec2::new(input.dir_x, input.dir_y),
                    buttons: input.buttons,
                };
            }
        }
    }

    fn step(&mut self) {
        self.step_inputs.clear();
        for (i, seat) in self.seats.iter_mut().enumerate() {
            if let (Some(seat), Ok(entity)) = (seat.as_mut(), EntityId::try_from(i)) {
                self.step_inputs.push((entity, seat.input));
            }
        }
        let dt = self.env.tick_period.as_secs_f32();
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
        let stats = &self.env.stats;
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
        self.handle.set_closed();
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            // A queued join's claim goes with it.
            let (Command::Join { reply, .. } | Command::Reattach { reply, .. }) = command;
            let _ = reply.send(Err(JoinRefused::Closed));
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
            lobby = self.handle.id(),
            ticks = self.tick,
            reason,
            "lobby closed"
        );
    }
}

/// How an idle lobby's wait ended.
enum Idle {
    /// A player is seated: tick again.
    Woken,
    /// The server is shutting down.
    Cancelled,
    /// Close the lobby, for this reason.
    Close(String),
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The tick task without sockets: a tiny game that records what it is given, players
/// whose connection is an in-memory pipe read by a WebSocket client, joins through the
/// handle's claims, inputs through the seat mailboxes, and tokio's paused clock (which
/// jumps to the next timer whenever every task waits), so that ticks and graces are
/// exact and take no wall time.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::StreamExt;
    use ticksync_protocol::{Input, decode_server};
    use tokio::io::{DuplexStream, ReadHalf};
    use tokio::task::JoinHandle;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::wire::outbox::{self, Conn, Outbox, Signal};

    const TICK: Duration = Duration::from_millis(50);
    /// Long enough for anything a test waits for (paused clock: it costs nothing).
    const PATIENCE: Duration = Duration::from_secs(120);

    /// What the game saw.
    #[derive(Debug, Default)]
    struct Log {
        /// Each step's tick and inputs.
        steps: Vec<(u32, Vec<(EntityId, PlayerInput)>)>,
        /// Spawns (true) and despawns (false), in order.
        seats: Vec<(EntityId, bool)>,
    }

    /// Entities stand at `50 + 10 * dir` of their current input. Panics at `panic_at`.
    struct Probe {
        log: Arc<Mutex<Log>>,
        here: Vec<(EntityId, Vec2)>,
        panic_at: Option<u32>,
    }

    impl Game for Probe {
        fn world_size(&self) -> Vec2 {
            Vec2::splat(100.0)
        }
        fn max_speed(&self) -> f32 {
            10.0
        }
        fn spawn(&mut self, entity: EntityId) {
            self.here.push((entity, Vec2::splat(50.0)));
            self.here.sort_by_key(|(id, _)| *id);
            self.log.lock().expect("log").seats.push((entity, true));
        }
        fn despawn(&mut self, entity: EntityId) {
            self.here.retain(|(id, _)| *id != entity);
            self.log.lock().expect("log").seats.push((entity, false));
        }
        fn step(&mut self, inputs: &[(EntityId, PlayerInput)], tick: u32, _dt: f32) {
            assert!(
                self.panic_at != Some(tick),
                "the probe game fails at tick {tick}"
            );
            for (entity, input) in inputs {
                if let Some((_, pos)) = self.here.iter_mut().find(|(id, _)| id == entity) {
                    *pos = Vec2::splat(50.0) + input.dir * 10.0;
                }
            }
            self.log
                .lock()
                .expect("log")
                .steps
                .push((tick, inputs.to_vec()));
        }
        fn view(&self, out: &mut Vec<EntityView>) {
            out.extend(self.here.iter().map(|&(id, pos)| EntityView {
                id,
                pos,
                ..EntityView::default()
            }));
        }
    }

    struct Running {
        handle: Arc<LobbyHandle>,
        log: Arc<Mutex<Log>>,
        stats: Arc<Stats>,
        task: JoinHandle<()>,
        cancel: CancellationToken,
    }

    fn start(max_players: u8, panic_at: Option<u32>) -> Running {
        start_with(
            max_players,
            panic_at,
            Duration::from_secs(30),
            Duration::from_secs(15),
        )
    }

    fn start_with(
        max_players: u8,
        panic_at: Option<u32>,
        empty_grace: Duration,
        resume_grace: Duration,
    ) -> Running {
        let log = Arc::new(Mutex::new(Log::default()));
        let stats = Arc::new(Stats::default());
        let game = Probe {
            log: Arc::clone(&log),
            here: Vec::new(),
            panic_at,
        };
        let spec = LobbySpec {
            name: "probe".into(),
            max_players,
            private: false,
        };
        let env = LobbyEnv {
            tick_period: TICK,
            empty_grace,
            abandoned_grace: empty_grace,
            resume_grace,
            stats: Arc::clone(&stats),
        };
        let lobby = Lobby::new(1, spec, None, Box::new(game), env);
        let handle = lobby.handle();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(lobby.run(cancel.clone()));
        Running {
            handle,
            log,
            stats,
            task,
            cancel,
        }
    }

    /// A player's connection: the lobby writes into `out`, the test reads `ws`.
    struct Player {
        conn: u64,
        out: Arc<Outbox>,
        epoch: u64,
        ws: WebSocketStream<DuplexStream>,
        _server: Conn<ReadHalf<DuplexStream>>,
    }

    impl Player {
        async fn connect(conn: u64) -> Player {
            // Roomy: nothing here finishes writes the pipe could not take (a session's job).
            let (server, client) = tokio::io::duplex(1 << 20);
            let server = outbox::any(server);
            let out = Arc::clone(server.outbox());
            let epoch = out.begin_seat();
            let ws = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
            Player {
                conn,
                out,
                epoch,
                ws,
                _server: server,
            }
        }

        fn request(&self, player_id: u32) -> JoinRequest {
            JoinRequest {
                player_id,
                name: format!("p{player_id}"),
                conn: self.conn,
                link: Link {
                    out: Arc::clone(&self.out),
                    epoch: self.epoch,
                },
            }
        }

        async fn recv(&mut self) -> ServerMessage {
            match tokio::time::timeout(PATIENCE, self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(bytes)))) => decode_server(&bytes).expect("decodes"),
                other => panic!("expected a message, got {other:?}"),
            }
        }

        async fn recv_until<T>(&mut self, mut pick: impl FnMut(&ServerMessage) -> Option<T>) -> T {
            loop {
                let message = self.recv().await;
                if let Some(found) = pick(&message) {
                    return found;
                }
            }
        }

        async fn snapshot(&mut self) -> ticksync_protocol::Snapshot {
            self.recv_until(|m| match m {
                ServerMessage::Snapshot(s) => Some(s.clone()),
                _ => None,
            })
            .await
        }
    }

    /// Joins through a claim, as a session does; returns the player and its seat.
    async fn join(lobby: &Arc<LobbyHandle>, player_id: u32) -> (Player, Seated) {
        let (player, seated, _) = join_told(lobby, player_id).await;
        (player, seated)
    }

    /// [`join`], also returning the `Joined` the player was sent.
    async fn join_told(lobby: &Arc<LobbyHandle>, player_id: u32) -> (Player, Seated, Joined) {
        let mut player = Player::connect(u64::from(player_id)).await;
        let claim = lobby.claim().expect("a free seat");
        let seated = claim.join(player.request(player_id)).await.expect("seated");
        let joined = player
            .recv_until(|m| match m {
                ServerMessage::Joined(j) => Some(j.clone()),
                _ => None,
            })
            .await;
        assert_eq!(joined.your_entity, seated.entity);
        (player, seated, joined)
    }

    fn input(seq: u32, dir_x: f32) -> Input {
        Input {
            seq,
            dir_x,
            ..Input::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_newest_input_is_applied_and_acked() {
        let lobby = start(4, None);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        ann.snapshot().await;
        // A burst between two ticks: 8 "right", then 4 "stop" (a stall's backlog).
        for seq in 1..=8 {
            lobby
                .handle
                .input(&ann_seat.seat, ann.conn, input(seq, 1.0));
        }
        for seq in 9..=12 {
            lobby
                .handle
                .input(&ann_seat.seat, ann.conn, input(seq, 0.0));
        }
        let acked = loop {
            let s = ann.snapshot().await;
            if s.ack_seq != 0 {
                break s;
            }
        };
        assert_eq!(
            acked.ack_seq, 12,
            "the ack is the newest input's, the one applied"
        );
        {
            let log = lobby.log.lock().expect("log");
            let ann_inputs = log
                .steps
                .iter()
                .flat_map(|(_, inputs)| inputs.iter().filter(|(e, _)| *e == ann_seat.entity));
            assert!(
                ann_inputs.clone().all(|(_, i)| i.dir == Vec2::ZERO),
                "no tick applied a superseded input"
            );
            assert!(ann_inputs.count() > 1);
        }
        assert_eq!(lobby.handle.figures().inputs_superseded, 11);
        // Each player's ack is its own: bob sent nothing.
        let s = bob.snapshot().await;
        assert_eq!(s.ack_seq, 0);
        // A later, older input never wins; the ack stays.
        lobby.handle.input(&ann_seat.seat, ann.conn, input(5, 1.0));
        for _ in 0..3 {
            let s = ann.snapshot().await;
            assert_eq!(s.ack_seq, 12);
            let me = s
                .entities
                .iter()
                .find(|e| e.id == ann_seat.entity)
                .expect("ann");
            assert_eq!(me.x, ticksync_protocol::quantize::position(50.0, 100.0));
        }
        lobby.cancel.cancel();
        tokio::time::timeout(PATIENCE, lobby.task)
            .await
            .expect("stops")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_leave_frees_the_seat_before_a_join_takes_it() {
        let lobby = start(1, None);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        ann.snapshot().await;
        assert!(lobby.handle.claim().is_none(), "one seat, taken");
        // Ann leaves and, before any tick, bob claims the seat she gave back.
        lobby.handle.leave(&ann_seat.seat, ann.conn);
        let (mut bob, bob_seat, joined) = join_told(&lobby.handle, 2).await;
        assert_eq!(bob_seat.entity, ann_seat.entity, "the same seat");
        let names: Vec<&str> = joined.players.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["p2"], "ann was gone when bob sat down");
        let s = bob.snapshot().await;
        assert_eq!(s.entities.len(), 1, "only bob is in the world");
        let seats = lobby.log.lock().expect("log").seats.clone();
        assert_eq!(
            seats,
            [(0, true), (0, false), (0, true)],
            "removed, then seated"
        );
        assert_eq!(lobby.handle.players(), 1);
        assert_eq!(lobby.handle.claimed(), 1);
        lobby.cancel.cancel();
        tokio::time::timeout(PATIENCE, lobby.task)
            .await
            .expect("stops")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_lobby_does_not_tick_and_closes_after_its_grace() {
        let grace = Duration::from_secs(30);
        let lobby = start_with(4, None, grace, Duration::from_secs(15));
        // Nobody yet: no tick.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(lobby.handle.figures().ticks, 0);
        // A join wakes it.
        let (mut ann, seat) = join(&lobby.handle, 1).await;
        for _ in 0..3 {
            ann.snapshot().await;
        }
        lobby.handle.leave(&seat.seat, ann.conn);
        let left_at = Instant::now();
        // The next tick, within one period, removes the seat (paused clock: no race).
        tokio::time::sleep(2 * TICK).await;
        assert_eq!(lobby.handle.players(), 0);
        let steps = lobby.log.lock().expect("log").steps.len();
        let ticks = lobby.handle.figures().ticks;
        tokio::time::sleep(grace / 2).await;
        assert_eq!(lobby.log.lock().expect("log").steps.len(), steps, "no step");
        assert!(
            lobby.handle.figures().ticks <= ticks + 1,
            "no tick while empty"
        );
        assert!(!lobby.handle.is_closed());
        tokio::time::timeout(PATIENCE, lobby.task)
            .await
            .expect("the lobby ends")
            .expect("no panic");
        let empty_for = left_at.elapsed();
        assert!(lobby.handle.is_closed());
        assert!(
            empty_for >= grace - TICK && empty_for <= grace + TICK,
            "closed after {empty_for:?} empty"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_game_closes_only_its_lobby_and_tells_its_players() {
        let failing = start(4, Some(3));
        let healthy = start(4, None);
        let (mut ann, _) = join(&failing.handle, 1).await;
        let (mut bob, _) = join(&healthy.handle, 2).await;
        let mut told = Vec::new();
        loop {
            match ann.recv().await {
                ServerMessage::Error { code, .. } => told.push(("error", code)),
                ServerMessage::Left { reason } => {
                    told.push(("left", u16::from(reason)));
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(
            told,
            [
                ("error", ErrorCode::LobbyClosed.as_u16()),
                ("left", LeftReason::LobbyCrashed as u16)
            ]
        );
        let signal = std::future::poll_fn(|cx| ann.out.poll_signal(cx)).await;
        assert_eq!(signal, Signal::Left, "the session learns it is in no lobby");
        tokio::time::timeout(PATIENCE, failing.task)
            .await
            .expect("the failed lobby ends")
            .expect("the panic stays inside the lobby");
        assert!(failing.handle.is_closed());
        assert!(failing.handle.claim().is_none());
        assert_eq!(failing.stats.lobby_panics.load(Ordering::Relaxed), 1);
        // The other lobby plays on, tick after tick.
        let mut last = bob.snapshot().await.tick;
        while last < 20 {
            let next = bob.snapshot().await.tick;
            assert_eq!(next, last + 1);
            last = next;
        }
        assert!(!healthy.handle.is_closed());
        healthy.cancel.cancel();
        tokio::time::timeout(PATIENCE, healthy.task)
            .await
            .expect("stops")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn an_away_seat_goes_when_the_resume_grace_ends() {
        let grace = Duration::from_secs(15);
        let lobby = start_with(4, None, Duration::from_secs(30), grace);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        ann.snapshot().await;
        // Ann's connection drops: her session ends the seat, so the lobby's next write
        // for her is refused and the seat goes idle, kept for the grace.
        ann.out.end_seat(Some(ann.epoch));
        let dropped = Instant::now();
        let left = bob
            .recv_until(|m| match m {
                ServerMessage::PlayerLeft { entity, .. } => Some(*entity),
                _ => None,
            })
            .await;
        let away = dropped.elapsed();
        assert_eq!(left, ann_seat.entity);
        assert!(
            away >= grace && away <= grace + 3 * TICK,
            "the seat went after {away:?}"
        );
        assert_eq!(lobby.handle.players(), 1);
        assert_eq!(lobby.handle.claimed(), 1, "its claim came back");
        lobby.cancel.cancel();
        tokio::time::timeout(PATIENCE, lobby.task)
            .await
            .expect("stops")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_connection_takes_its_seat_back_within_the_grace() {
        let lobby = start(4, None);
        let (ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        lobby.handle.input(&ann_seat.seat, ann.conn, input(40, 1.0));
        bob.snapshot().await;
        ann.out.end_seat(Some(ann.epoch));
        // Some ticks later a new connection of the same player re-attaches.
        for _ in 0..10 {
            bob.snapshot().await;
        }
        let mut again = Player::connect(9).await;
        let seated = lobby
            .handle
            .reattach(again.request(1), ann_seat.entity)
            .await
            .expect("re-attached");
        assert_eq!(seated.entity, ann_seat.entity);
        let joined = again
            .recv_until(|m| match m {
                ServerMessage::Joined(j) => Some(j.clone()),
                _ => None,
            })
            .await;
        assert_eq!(joined.players.len(), 2);
        // The new connection's inputs start from seq 1 again; the old one's are ignored.
        assert_eq!(
            lobby.handle.input(&seated.seat, ann.conn, input(41, 0.5)),
            crate::lobby::InputOutcome::NotYours
        );
        lobby.handle.input(&seated.seat, again.conn, input(1, -1.0));
        let s = loop {
            let s = again.snapshot().await;
            if s.ack_seq == 1 {
                break s;
            }
            assert_eq!(s.ack_seq, 0, "acks restart with the new connection");
        };
        let me = s
            .entities
            .iter()
            .find(|e| e.id == seated.entity)
            .expect("me");
        assert_eq!(me.x, ticksync_protocol::quantize::position(40.0, 100.0));
        // Nobody saw a leave or a join.
        let seats = lobby.log.lock().expect("log").seats.clone();
        assert_eq!(seats, [(0, true), (1, true)]);
        lobby.cancel.cancel();
        tokio::time::timeout(PATIENCE, lobby.task)
            .await
            .expect("stops")
            .expect("no panic");
    }
}
