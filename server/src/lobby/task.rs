//! A lobby's tick task: it owns the game world.
//!
//! It takes what its handle (`handle.rs`) collected at the start of each tick: joins from
//! the bounded queue, every seat's newest input, game messages and leave flag from the
//! seat's mailbox, an operator's close. Every tick it steps the game (a `Box<dyn Sim>`,
//! see `game/`), has it write the tick's `State`, encodes what everyone sees once (as a
//! delta and in full, each only when a player needs it, see `wire/broadcast.rs`) and
//! writes each player's snapshot (its own small part, then the shared bytes) to the
//! player's socket itself, through the
//! connection's outbox (`wire/outbox.rs`): no session wakes up for it. Must-arrive
//! messages (the game's events, players joining and leaving, the match's end) take the
//! same way, in order with the snapshots: a tick's events before its snapshot, its
//! `MatchEnded` after. A player too far behind to take them is dropped from the lobby
//! (its session closes with 4004, `SLOW_CONSUMER`); nobody else waits for it.
//!
//! A lobby with no player does not tick: it sleeps until a join, a close or the end of
//! its empty grace (`--empty-lobby-grace`, or the shorter `--abandoned-lobby-grace` if it
//! never had two players at once).
//!
//! A player whose connection drops without a goodbye (its outbox refuses the seat's
//! writes) keeps its seat, idle, for the resume grace; a resumed connection re-attaches to
//! the same seat.
//! A panic in the game's code ends only this lobby: its players are told, every other
//! lobby keeps ticking.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use ticksync_protocol::codec::encode_server;
use ticksync_protocol::state::io::Decoded;
use ticksync_protocol::state::{Encoder, PlayerRef, State};
use ticksync_protocol::{ErrorCode, Joined, LeftReason, MatchResult, PlayerInfo, ServerMessage};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::handle::{Command, JoinRefused, JoinRequest, LobbyHandle, SeatBox, Seated};
use crate::game::{Audience, LeaveReason, LobbySpec, MatchEnd, Output, Sim};
use crate::stats::Stats;
use crate::wire::broadcast::{Parts, TickFrame, deliver};
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
    /// Where the player's session puts inputs, messages and its leave.
    mailbox: Arc<SeatBox>,
    name: String,
    /// The connection the seat belongs to now.
    conn: u64,
    presence: Presence,
    /// Sequence of the newest input applied (the snapshots' ack).
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
}

/// Seat numbers are 1 to the cap; `seats[i]` is seat `i + 1`.
fn seat_of(index: usize) -> PlayerRef {
    PlayerRef(u16::try_from(index + 1).unwrap_or(u16::MAX))
}

/// How a tick ended, if it ends the lobby.
enum Closing {
    /// An operator's close, or the game's state could not be built.
    Closed(String),
    /// The game closed its lobby after its match.
    MatchOver(String),
}

/// The tick task's state. Owned by the task; nothing else can reach the game.
pub(crate) struct Lobby {
    handle: Arc<LobbyHandle>,
    env: LobbyEnv,
    sim: Box<dyn Sim>,
    /// The schema's bytes and hash, for every `Joined`.
    schema: Vec<u8>,
    schema_hash: [u8; 8],
    commands: mpsc::Receiver<Command>,
    /// This tick's shared snapshot parts, their buffers reused from tick to tick.
    frame: TickFrame,
    /// The state of this tick and of the previous one (the deltas' baseline).
    state: State,
    previous: State,
    /// Whether `previous` holds the state of the tick before `state`.
    has_previous: bool,
    encoder: Encoder,
    /// Where each player's own part and snapshot message are built.
    own: Vec<u8>,
    scratch: Vec<u8>,
    /// Players whose connection turned out gone during delivery.
    gone: Vec<PlayerRef>,
    /// What the game produced this tick.
    output: Output,
    /// Messages taken from a seat's mailbox, reused.
    messages: Vec<Decoded>,
    /// Indexed by seat - 1.
    seats: Vec<Option<Seat>>,
    tick: u32,
    empty_since: Option<Instant>,
    /// Most players seated at once so far: a lobby that never had two is one its creator
    /// abandoned, and closes after the short grace.
    peak_players: usize,
}

impl Lobby {
    /// Creates a lobby and its handle around its game. The caller spawns [`Lobby::run`].
    pub(crate) fn new(
        id: u32,
        spec: LobbySpec,
        code: Option<String>,
        sim: Box<dyn Sim>,
        env: LobbyEnv,
    ) -> Self {
        let LobbySpec {
            name, max_players, ..
        } = spec;
        let (handle, commands) = LobbyHandle::new(id, name, max_players, code);
        let codec = Arc::clone(sim.codec());
        Self {
            handle,
            env,
            schema: codec.schema().encode(),
            schema_hash: codec.hash().to_le_bytes(),
            sim,
            commands,
            frame: TickFrame::default(),
            state: State::new(&codec),
            previous: State::new(&codec),
            has_previous: false,
            encoder: Encoder::new(),
            own: Vec::new(),
            scratch: Vec::new(),
            gone: Vec::new(),
            output: Output::default(),
            messages: Vec::new(),
            seats: (0..max_players).map(|_| None).collect(),
            tick: 0,
            empty_since: Some(Instant::now()),
            peak_players: 0,
        }
    }

    /// The handle to register.
    pub(crate) fn handle(&self) -> Arc<LobbyHandle> {
        Arc::clone(&self.handle)
    }

    /// Runs the fixed tick until the lobby empties for its grace period, an operator or
    /// the game closes it, or `cancel` fires.
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
                    Idle::Crashed => {
                        self.crashed();
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
            // Simulation alone; the rest of the tick is the delivery (encoding on first
            // need, socket writes).
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
                Ok(Err(Closing::Closed(reason))) => {
                    self.close(ErrorCode::LobbyClosed, &reason, LeftReason::LobbyClosed);
                    return;
                }
                Ok(Err(Closing::MatchOver(reason))) => {
                    self.close(ErrorCode::LobbyClosed, &reason, LeftReason::MatchEnded);
                    return;
                }
                Ok(Ok(_)) => {}
                Err(panic) => {
                    let what = panic_message(panic.as_ref());
                    error!(lobby = self.handle.id(), panic = %what, "the game panicked; closing this lobby");
                    self.crashed();
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

    /// The game panicked: close, telling the players, without calling it again.
    fn crashed(self) {
        self.env.stats.lobby_panics.fetch_add(1, Ordering::Relaxed);
        self.close(
            ErrorCode::LobbyClosed,
            "the game crashed; the lobby is closed",
            LeftReason::LobbyCrashed,
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
                        // A join runs the game's on_join: a panic there ends the lobby too.
                        let done = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            self.handle_command(command);
                        }));
                        if let Err(panic) = done {
                            let what = panic_message(panic.as_ref());
                            error!(lobby = self.handle.id(), panic = %what, "the game panicked; closing this lobby");
                            return Idle::Crashed;
                        }
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

    /// One tick. Returns its simulation and encoding time, or why the lobby closes.
    fn run_tick(&mut self) -> Result<Duration, Closing> {
        let started = Instant::now();
        if let Some(reason) = self.handle.close_requested() {
            return Err(Closing::Closed(reason));
        }
        // Leaves first: a seat its player left may be claimed by a join queued since.
        self.take_inputs();
        self.check_connections();
        while let Ok(command) = self.commands.try_recv() {
            self.handle_command(command);
        }
        if self.player_count() == 0 {
            // The next round of `run` sleeps; nothing to simulate or send. The next
            // snapshot is full for everyone (there is nobody to have the baseline).
            self.has_previous = false;
            self.empty_since.get_or_insert_with(Instant::now);
            return Ok(started.elapsed());
        }
        self.empty_since = None;
        let dt = self.env.tick_period.as_secs_f32();
        self.sim.step(self.tick, dt);
        std::mem::swap(&mut self.state, &mut self.previous);
        if let Err(e) = self.sim.write(self.tick, &mut self.state) {
            error!(lobby = self.handle.id(), error = %e, "the game wrote an invalid state; closing this lobby");
            return Err(Closing::Closed(format!("the game failed: {e}")));
        }
        self.sim.take_output(&mut self.output);
        self.begin_frame();
        let compute = started.elapsed();
        // The tick's events go before its snapshot, the match's end after it.
        self.send_events();
        self.deliver();
        self.has_previous = true;
        let ended = self.output.ended.take();
        if let Some(end) = ended {
            self.match_ended(end);
        }
        self.tick = self.tick.wrapping_add(1);
        self.handle.set_tick(self.tick);
        if let Some(reason) = self.output.close.take() {
            return Err(Closing::MatchOver(reason));
        }
        Ok(compute)
    }

    fn player_count(&self) -> usize {
        self.seats.iter().filter(|s| s.is_some()).count()
    }

    fn update_count(&mut self) {
        let count = self.player_count();
        self.peak_players = self.peak_players.max(count);
        self.handle
            .set_players(u16::try_from(count).unwrap_or(u16::MAX));
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
            Command::Reattach { join, seat, reply } => {
                let result = self.reattach(join, seat);
                let _ = reply.send(result);
            }
        }
    }

    fn join(&mut self, join: JoinRequest) -> Result<Seated, JoinRefused> {
        let JoinRequest {
            player_id,
            name,
            options,
            conn,
            link,
        } = join;
        let Some(free) = self.seats.iter().position(Option::is_none) else {
            return Err(JoinRefused::Full);
        };
        let seat = seat_of(free);
        self.sim
            .join(seat, &name, &options)
            .map_err(JoinRefused::Game)?;
        let me = PlayerInfo {
            seat: seat.0,
            player_id,
            name: name.clone(),
        };
        self.broadcast_message(&ServerMessage::PlayerJoined(me));
        let mailbox = SeatBox::new(conn);
        self.seats[free] = Some(Seat {
            player_id,
            mailbox: Arc::clone(&mailbox),
            name,
            conn,
            presence: Presence::Here(link),
            applied_seq: 0,
        });
        self.welcome(seat);
        self.update_count();
        debug!(
            lobby = self.handle.id(),
            player_id,
            seat = seat.0,
            "player joined"
        );
        Ok(Seated {
            seat: seat.0,
            mailbox,
            codec: Arc::clone(self.sim.codec()),
        })
    }

    fn reattach(&mut self, join: JoinRequest, seat: u16) -> Result<Seated, JoinRefused> {
        let JoinRequest {
            player_id,
            conn,
            link,
            ..
        } = join;
        let Some(slot) = usize::from(seat)
            .checked_sub(1)
            .and_then(|i| self.seats.get_mut(i))
            .and_then(Option::as_mut)
            .filter(|s| s.player_id == player_id)
        else {
            return Err(JoinRefused::Closed);
        };
        slot.conn = conn;
        slot.presence = Presence::Here(link);
        // The client restarts its input sequence with the new connection's inputs.
        slot.mailbox.hand_over(conn);
        slot.applied_seq = 0;
        let mailbox = Arc::clone(&slot.mailbox);
        self.sim.resume(PlayerRef(seat));
        self.welcome(PlayerRef(seat));
        debug!(lobby = self.handle.id(), player_id, seat, "player resumed");
        Ok(Seated {
            seat,
            mailbox,
            codec: Arc::clone(self.sim.codec()),
        })
    }

    /// Queues `Joined` (with the game's schema) for a player who (re-)enters.
    fn welcome(&mut self, seat: PlayerRef) {
        let joined = ServerMessage::Joined(Joined {
            lobby_id: self.handle.id(),
            name: self.handle.name().to_owned(),
            code: self.handle.code().map(str::to_owned),
            max_players: self.handle.max_players(),
            seat: seat.0,
            tick: self.tick,
            schema: self.schema.clone(),
            schema_hash: self.schema_hash,
            players: self.player_list(),
        });
        self.send_frame(seat, &binary_frame(&encode_server(&joined)));
    }

    fn player_list(&self) -> Vec<PlayerInfo> {
        self.seats
            .iter()
            .enumerate()
            .filter_map(|(i, seat)| {
                let seat_info = seat.as_ref()?;
                Some(PlayerInfo {
                    seat: seat_of(i).0,
                    player_id: seat_info.player_id,
                    name: seat_info.name.clone(),
                })
            })
            .collect()
    }

    /// The connection dropped (or left the seat): keep the seat, idle, for the resume
    /// grace.
    fn detach(&mut self, index: usize) {
        let Some(seat) = self.seats.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if let Presence::Here(_) = seat.presence {
            seat.presence = Presence::Away(Instant::now());
            // Idle while away: others see it stand still.
            self.sim.away(seat_of(index));
        }
    }

    /// Removes players detached for longer than the resume grace.
    fn check_connections(&mut self) {
        let grace = self.env.resume_grace;
        for i in 0..self.seats.len() {
            let expired = self.seats[i].as_ref().is_some_and(
                |seat| matches!(seat.presence, Presence::Away(at) if at.elapsed() >= grace),
            );
            if expired {
                self.remove(i, LeaveReason::Dropped);
            }
        }
    }

    fn remove(&mut self, index: usize, reason: LeaveReason) {
        let Some(seat) = self.seats[index].take() else {
            return;
        };
        let me = seat_of(index);
        self.sim.leave(me, reason);
        if seat.mailbox.free() {
            self.handle.seat_freed();
        }
        self.broadcast_message(&ServerMessage::PlayerLeft {
            seat: me.0,
            player_id: seat.player_id,
        });
        self.update_count();
        debug!(
            lobby = self.handle.id(),
            player_id = seat.player_id,
            seat = me.0,
            ?reason,
            "player left"
        );
    }

    /// Sends one must-arrive frame to a player.
    fn send_frame(&mut self, seat: PlayerRef, frame: &Bytes) {
        let Some(index) = usize::from(seat.0).checked_sub(1) else {
            return;
        };
        let Some(slot) = self.seats.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(link) = slot.link() else {
            return;
        };
        match link.out.send_event(link.epoch, frame) {
            Delivery::Written | Delivery::Kept | Delivery::Replaced => {
                self.env
                    .stats
                    .bytes_out
                    .fetch_add(payload_len(frame) as u64, Ordering::Relaxed);
            }
            Delivery::Stale => self.detach(index),
            Delivery::Overflow => {
                // The client is too far behind to follow the lobby; its session closes
                // with a clear reason (close 4004), and nobody else waits for it.
                warn!(
                    lobby = self.handle.id(),
                    player_id = slot.player_id,
                    "too much waiting for a slow client; dropping player"
                );
                self.env
                    .stats
                    .events_overflowed
                    .fetch_add(1, Ordering::Relaxed);
                self.remove(index, LeaveReason::Kicked);
            }
        }
    }

    fn broadcast_frame(&mut self, frame: &Bytes) {
        for i in 0..self.seats.len() {
            self.send_frame(seat_of(i), frame);
        }
    }

    fn broadcast_message(&mut self, message: &ServerMessage) {
        self.broadcast_frame(&binary_frame(&encode_server(message)));
    }

    /// Takes every seat's newest input and messages, and removes the seats whose player
    /// left.
    fn take_inputs(&mut self) {
        for i in 0..self.seats.len() {
            let Some(seat) = self.seats[i].as_mut() else {
                continue;
            };
            self.messages.clear();
            let taken = seat.mailbox.take(&mut self.messages);
            if taken.leave {
                self.remove(i, LeaveReason::Left);
                continue;
            }
            let me = seat_of(i);
            if let Some(input) = taken.input {
                seat.applied_seq = input.seq;
                self.sim.input(me, &input);
            }
            for message in &self.messages {
                self.sim.message(me, message);
            }
        }
    }

    /// Starts this tick's frame: its acks now, its shared parts once for everyone while it
    /// is delivered, each on the first player who needs it (`TickFrame::write_message`).
    fn begin_frame(&mut self) {
        let frame = &mut self.frame;
        frame.begin(self.tick);
        frame.acks.clear();
        frame.acks.extend(
            self.seats
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| s.applied_seq)),
        );
    }

    /// Sends this tick's events, each encoded once.
    fn send_events(&mut self) {
        let events = std::mem::take(&mut self.output.events);
        for (audience, event) in &events {
            let frame = binary_frame(event);
            match audience {
                Audience::Everyone => self.broadcast_frame(&frame),
                Audience::Player(seat) => self.send_frame(*seat, &frame),
            }
        }
        self.env
            .stats
            .events_sent
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.output.events = events;
        self.output.events.clear();
    }

    /// Tells everyone the match's results, with the players' names.
    fn match_ended(&mut self, end: MatchEnd) {
        let results = end
            .results
            .iter()
            .map(|s| MatchResult {
                seat: s.player.0,
                name: usize::from(s.player.0)
                    .checked_sub(1)
                    .and_then(|i| self.seats.get(i))
                    .and_then(Option::as_ref)
                    .map_or_else(String::new, |seat| seat.name.clone()),
                score: s.score,
                place: s.place,
            })
            .collect();
        self.broadcast_message(&ServerMessage::MatchEnded {
            summary: end.summary,
            results,
        });
    }

    /// Writes each player's snapshot to its connection.
    fn deliver(&mut self) {
        let codec = Arc::clone(self.sim.codec());
        let from = (self.has_previous && self.previous.tick().wrapping_add(1) == self.tick)
            .then_some(&self.previous);
        let mut parts = Parts {
            codec: &codec,
            from,
            to: &self.state,
            encoder: &mut self.encoder,
            own: &mut self.own,
        };
        let links = self
            .seats
            .iter()
            .enumerate()
            .filter_map(|(i, seat)| Some((seat_of(i), seat.as_ref()?.link()?)));
        let done = deliver(
            &mut self.frame,
            &mut parts,
            links,
            &mut self.scratch,
            &mut self.gone,
        );
        for seat in std::mem::take(&mut self.gone) {
            if let Some(i) = usize::from(seat.0).checked_sub(1) {
                self.detach(i);
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
    /// The game panicked in a join.
    Crashed,
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
    use ticksync_protocol::schema::Schema;
    use ticksync_protocol::state::io::{EVENT_TAG, decode_event, decode_input, encode_input};
    use ticksync_protocol::state::{Button, ClientState, Codec, SNAPSHOT_TAG};
    use ticksync_protocol::{GameOptions, Messages, State as DeriveState, decode_server};
    use tokio::io::{DuplexStream, ReadHalf};
    use tokio::task::JoinHandle;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::game::{Ctx, EntityId, Game, GameSim, PlayerInput, Writer, rank_by_score};
    use crate::wire::outbox::{self, Conn, Outbox, Signal};

    const TICK: Duration = Duration::from_millis(50);
    /// Long enough for anything a test waits for (paused clock: it costs nothing).
    const PATIENCE: Duration = Duration::from_secs(120);

    #[derive(Messages, Debug, Clone, PartialEq)]
    enum Thing {
        Dot {
            #[state(range = -100..=100)]
            x: i16,
        },
    }

    #[derive(DeriveState, Debug, Clone, Default, PartialEq)]
    struct ProbeInput {
        #[state(range = -100..=100)]
        x: i16,
        fire: Button,
    }

    #[derive(Messages, Debug, Clone, PartialEq)]
    enum ProbeEvent {
        Fired { by: PlayerRef, count: u8 },
    }

    /// One input as a step saw it: (seat, seq, x).
    type Seen = (u16, u32, i16);

    /// What the game saw.
    #[derive(Debug, Default)]
    struct Log {
        /// Each step's tick and (seat, seq, x) inputs.
        steps: Vec<(u32, Vec<Seen>)>,
        /// Joins (true) and leaves (false), in order.
        seats: Vec<(u16, bool)>,
        /// Leave reasons, in order.
        reasons: Vec<LeaveReason>,
        /// Presses counted.
        presses: u32,
    }

    /// Dots stand at their player's input `x`. Refuses the name "nobody"; panics at
    /// `panic_at`; ends its match and closes at `end_at`.
    struct Probe {
        log: Arc<Mutex<Log>>,
        dots: Vec<(PlayerRef, EntityId, i16)>,
        panic_at: Option<u32>,
        end_at: Option<u32>,
    }

    impl Game for Probe {
        const NAME: &'static str = "probe";
        type Entity = Thing;
        type Lobby = ();
        type Private = ();
        type Input = ProbeInput;
        type Message = crate::game::NoMessages;
        type Event = ProbeEvent;

        fn on_join(
            &mut self,
            ctx: &mut Ctx<'_, ProbeEvent>,
            player: PlayerRef,
            name: &str,
            _: &GameOptions,
        ) -> Result<(), String> {
            if name == "nobody" {
                return Err("nobody may play".into());
            }
            let id = ctx.spawn();
            self.dots.push((player, id, 0));
            self.log.lock().expect("log").seats.push((player.0, true));
            Ok(())
        }

        fn on_leave(&mut self, ctx: &mut Ctx<'_, ProbeEvent>, player: PlayerRef, why: LeaveReason) {
            for (_, id, _) in self.dots.iter().filter(|d| d.0 == player) {
                ctx.despawn(*id);
            }
            self.dots.retain(|d| d.0 != player);
            let mut log = self.log.lock().expect("log");
            log.seats.push((player.0, false));
            log.reasons.push(why);
        }

        fn step(
            &mut self,
            ctx: &mut Ctx<'_, ProbeEvent>,
            inputs: &[PlayerInput<ProbeInput>],
            tick: u32,
            _: f32,
        ) {
            assert!(
                self.panic_at != Some(tick),
                "the probe game fails at tick {tick}"
            );
            let mut log = self.log.lock().expect("log");
            for i in inputs {
                if let Some(dot) = self.dots.iter_mut().find(|d| d.0 == i.player) {
                    dot.2 = i.input.x;
                }
                let presses = i.presses(|i| i.fire);
                if presses > 0 {
                    log.presses += u32::from(presses);
                    ctx.broadcast(ProbeEvent::Fired {
                        by: i.player,
                        count: presses,
                    });
                }
            }
            log.steps.push((
                tick,
                inputs
                    .iter()
                    .map(|i| (i.player.0, i.seq, i.input.x))
                    .collect(),
            ));
            if self.end_at == Some(tick) {
                let scores = self.dots.iter().map(|d| (d.0, i32::from(d.2)));
                ctx.end_match("the probe is done", rank_by_score(scores));
                ctx.close_lobby("the match is over");
            }
        }

        fn write(&self, out: &mut Writer<'_, Self>) {
            for &(player, id, x) in &self.dots {
                out.controlled(id, player, &Thing::Dot { x });
            }
        }
    }

    struct Running {
        handle: Arc<LobbyHandle>,
        log: Arc<Mutex<Log>>,
        stats: Arc<Stats>,
        task: JoinHandle<()>,
        cancel: CancellationToken,
    }

    fn start(max_players: u16, panic_at: Option<u32>) -> Running {
        start_with(
            max_players,
            panic_at,
            None,
            Duration::from_secs(30),
            Duration::from_secs(15),
        )
    }

    fn start_with(
        max_players: u16,
        panic_at: Option<u32>,
        end_at: Option<u32>,
        empty_grace: Duration,
        resume_grace: Duration,
    ) -> Running {
        let log = Arc::new(Mutex::new(Log::default()));
        let stats = Arc::new(Stats::default());
        let game = Probe {
            log: Arc::clone(&log),
            dots: Vec::new(),
            panic_at,
            end_at,
        };
        let sim = GameSim::new(game, max_players).expect("valid schema");
        let env = LobbyEnv {
            tick_period: TICK,
            empty_grace,
            abandoned_grace: empty_grace,
            resume_grace,
            stats: Arc::clone(&stats),
        };
        let lobby = Lobby::new(
            1,
            LobbySpec::new("probe", max_players),
            None,
            Box::new(sim),
            env,
        );
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

    /// What a player received.
    #[derive(Debug)]
    enum Got {
        Control(ServerMessage),
        /// A snapshot, applied: (tick, ack, full, every dot's (id, x)).
        Snapshot(u32, u32, bool, Vec<(u32, i64)>),
        /// An event: (tick, the event).
        Event(u32, ProbeEvent),
    }

    /// A player's connection: the lobby writes into `out`, the test reads `ws`.
    struct Player {
        conn: u64,
        out: Arc<Outbox>,
        epoch: u64,
        ws: WebSocketStream<DuplexStream>,
        _server: Conn<ReadHalf<DuplexStream>>,
        /// The state, from the `Joined` on.
        client: Option<ClientState>,
        seq: u32,
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
                client: None,
                seq: 0,
            }
        }

        fn request_as(&self, player_id: u32, name: &str) -> JoinRequest {
            JoinRequest {
                player_id,
                name: name.into(),
                options: GameOptions::none(),
                conn: self.conn,
                link: Link {
                    out: Arc::clone(&self.out),
                    epoch: self.epoch,
                },
            }
        }

        fn request(&self, player_id: u32) -> JoinRequest {
            self.request_as(player_id, &format!("p{player_id}"))
        }

        async fn recv(&mut self) -> Got {
            let bytes = match tokio::time::timeout(PATIENCE, self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
                other => panic!("expected a message, got {other:?}"),
            };
            match bytes.first() {
                Some(&SNAPSHOT_TAG) => {
                    let client = self.client.as_mut().expect("a snapshot after Joined");
                    let a = client.apply(&bytes).expect("every snapshot applies");
                    let (tick, ack, full) = (a.tick, a.ack_seq, a.full);
                    let dots = client
                        .entities()
                        .map(|e| {
                            let x = match e
                                .row
                                .values(client.codec().kind_row(e.kind).expect("kind"))[0]
                            {
                                ticksync_protocol::state::Value::Int(x) => x,
                                _ => panic!("not an int"),
                            };
                            (e.id, x)
                        })
                        .collect();
                    Got::Snapshot(tick, ack, full, dots)
                }
                Some(&EVENT_TAG) => {
                    let codec = self.client.as_ref().expect("joined").codec();
                    let e = decode_event(codec, &bytes).expect("decodes");
                    let row = codec.event_row(e.index).expect("type");
                    Got::Event(e.tick, e.get::<ProbeEvent>(row).expect("typed"))
                }
                _ => {
                    let message = decode_server(&bytes).expect("decodes");
                    if let ServerMessage::Joined(j) = &message {
                        let schema = Schema::decode(&j.schema).expect("schema");
                        assert_eq!(schema.hash().to_le_bytes(), j.schema_hash);
                        let codec = Codec::new(schema, j.max_players).expect("codec");
                        self.client = Some(ClientState::new(Arc::new(codec), PlayerRef(j.seat)));
                    }
                    Got::Control(message)
                }
            }
        }

        async fn recv_until<T>(&mut self, mut pick: impl FnMut(&Got) -> Option<T>) -> T {
            loop {
                let got = self.recv().await;
                if let Some(found) = pick(&got) {
                    return found;
                }
            }
        }

        /// The next snapshot: (tick, ack, full, dots).
        async fn snapshot(&mut self) -> (u32, u32, bool, Vec<(u32, i64)>) {
            self.recv_until(|g| match g {
                Got::Snapshot(t, a, f, d) => Some((*t, *a, *f, d.clone())),
                _ => None,
            })
            .await
        }

        /// An input with `x` and the fire button's press counter, through the schema's
        /// bytes as a session decodes them.
        fn input(&mut self, lobby: &LobbyHandle, seated: &Seated, seq: u32, x: i16, presses: u8) {
            let mut bytes = Vec::new();
            let input = ProbeInput {
                x,
                fire: Button {
                    held: false,
                    presses,
                },
            };
            encode_input(&seated.codec, seq, 0, &input, &mut bytes);
            let decoded = decode_input(&seated.codec, &bytes).expect("decodes");
            self.seq = seq;
            lobby.input(&seated.mailbox, self.conn, decoded);
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
            .recv_until(|g| match g {
                Got::Control(ServerMessage::Joined(j)) => Some(j.clone()),
                _ => None,
            })
            .await;
        assert_eq!(joined.seat, seated.seat);
        (player, seated, joined)
    }

    async fn stop(running: Running) {
        running.cancel.cancel();
        tokio::time::timeout(PATIENCE, running.task)
            .await
            .expect("stops")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn the_newest_input_is_applied_and_acked() {
        let lobby = start(4, None);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        let (_, _, full, _) = ann.snapshot().await;
        assert!(full, "a new seat's first snapshot is full");
        // A burst between two ticks: 8 "right", then 4 "stop" (a stall's backlog).
        for seq in 1..=8 {
            ann.input(&lobby.handle, &ann_seat, seq, 50, 0);
        }
        for seq in 9..=12 {
            ann.input(&lobby.handle, &ann_seat, seq, 0, 0);
        }
        let acked = loop {
            let s = ann.snapshot().await;
            if s.1 != 0 {
                break s;
            }
        };
        assert_eq!(
            acked.1, 12,
            "the ack is the newest input's, the one applied"
        );
        assert!(!acked.2, "deltas by default");
        {
            let log = lobby.log.lock().expect("log");
            let ann_inputs = log
                .steps
                .iter()
                .flat_map(|(_, inputs)| inputs.iter().filter(|(s, _, _)| *s == ann_seat.seat));
            assert!(
                ann_inputs.clone().all(|&(_, _, x)| x == 0),
                "no tick applied a superseded input"
            );
            assert!(ann_inputs.clone().any(|&(_, seq, _)| seq == 12));
        }
        assert_eq!(lobby.handle.figures().inputs_superseded, 11);
        // Each player's ack is its own: bob sent nothing.
        assert_eq!(bob.snapshot().await.1, 0);
        // A later, older input never wins; the ack stays.
        ann.input(&lobby.handle, &ann_seat, 5, 50, 0);
        for _ in 0..3 {
            let (_, ack, _, dots) = ann.snapshot().await;
            assert_eq!(ack, 12);
            assert!(dots.iter().all(|&(_, x)| x == 0), "{dots:?}");
        }
        stop(lobby).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_press_between_two_ticks_reaches_the_game_once_and_its_event_precedes_the_snapshot() {
        let lobby = start(4, None);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        ann.snapshot().await;
        // Pressed and released (counter 1, not held), then two more inputs without
        // presses, all before the next tick.
        ann.input(&lobby.handle, &ann_seat, 1, 0, 1);
        ann.input(&lobby.handle, &ann_seat, 2, 0, 1);
        ann.input(&lobby.handle, &ann_seat, 3, 0, 1);
        // Bob sees the event, then the snapshot of the same tick.
        let (event_tick, event) = bob
            .recv_until(|g| match g {
                Got::Event(t, e) => Some((*t, e.clone())),
                _ => None,
            })
            .await;
        assert_eq!(
            event,
            ProbeEvent::Fired {
                by: PlayerRef(ann_seat.seat),
                count: 1
            }
        );
        let (tick, ..) = bob.snapshot().await;
        assert_eq!(
            tick, event_tick,
            "the event comes before its tick's snapshot"
        );
        for _ in 0..5 {
            ann.snapshot().await;
        }
        assert_eq!(lobby.log.lock().expect("log").presses, 1, "exactly once");
        stop(lobby).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_join_gets_the_games_reason_and_gives_the_seat_back() {
        let lobby = start(1, None);
        let player = Player::connect(5).await;
        let claim = lobby.handle.claim().expect("a free seat");
        let refused = claim
            .join(player.request_as(5, "nobody"))
            .await
            .expect_err("refused");
        assert_eq!(refused, JoinRefused::Game("nobody may play".into()));
        assert_eq!(lobby.handle.claimed(), 0, "the claim came back");
        let (_ann, _) = join(&lobby.handle, 1).await;
        stop(lobby).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_match_reports_results_and_closes_the_lobby() {
        let lobby = start_with(
            4,
            None,
            Some(5),
            Duration::from_secs(30),
            Duration::from_secs(15),
        );
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        ann.input(&lobby.handle, &ann_seat, 1, 42, 0);
        let mut told = Vec::new();
        loop {
            match ann.recv().await {
                Got::Control(ServerMessage::MatchEnded { summary, results }) => {
                    assert_eq!(summary, "the probe is done");
                    assert_eq!(results.len(), 1);
                    assert_eq!(
                        (
                            results[0].seat,
                            results[0].name.as_str(),
                            results[0].score,
                            results[0].place
                        ),
                        (ann_seat.seat, "p1", 42, 1)
                    );
                    told.push("match_ended");
                }
                Got::Control(ServerMessage::Error { code, .. }) => {
                    assert_eq!(code, ErrorCode::LobbyClosed.as_u16());
                    told.push("error");
                }
                Got::Control(ServerMessage::Left { reason }) => {
                    assert_eq!(reason, LeftReason::MatchEnded.as_u8());
                    told.push("left");
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(told, ["match_ended", "error", "left"]);
        tokio::time::timeout(PATIENCE, lobby.task)
            .await
            .expect("the lobby ends")
            .expect("no panic");
        assert!(lobby.handle.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leave_frees_the_seat_before_a_join_takes_it() {
        let lobby = start(1, None);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        ann.snapshot().await;
        assert!(lobby.handle.claim().is_none(), "one seat, taken");
        // Ann leaves and, before any tick, bob claims the seat she gave back.
        lobby.handle.leave(&ann_seat.mailbox, ann.conn);
        let (mut bob, bob_seat, joined) = join_told(&lobby.handle, 2).await;
        assert_eq!(bob_seat.seat, ann_seat.seat, "the same seat");
        let names: Vec<&str> = joined.players.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["p2"], "ann was gone when bob sat down");
        let (_, _, _, dots) = bob.snapshot().await;
        assert_eq!(dots.len(), 1, "only bob is in the world");
        assert_eq!(dots[0].0, 2, "a new entity id: ids are never reused");
        let (seats, reasons) = {
            let log = lobby.log.lock().expect("log");
            (log.seats.clone(), log.reasons.clone())
        };
        assert_eq!(
            seats,
            [(1, true), (1, false), (1, true)],
            "removed, then seated"
        );
        assert_eq!(reasons, [LeaveReason::Left]);
        assert_eq!(lobby.handle.players(), 1);
        assert_eq!(lobby.handle.claimed(), 1);
        stop(lobby).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_lobby_does_not_tick_and_closes_after_its_grace() {
        let grace = Duration::from_secs(30);
        let lobby = start_with(4, None, None, grace, Duration::from_secs(15));
        // Nobody yet: no tick.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(lobby.handle.figures().ticks, 0);
        // A join wakes it.
        let (mut ann, seat) = join(&lobby.handle, 1).await;
        for _ in 0..3 {
            ann.snapshot().await;
        }
        lobby.handle.leave(&seat.mailbox, ann.conn);
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
                Got::Control(ServerMessage::Error { code, .. }) => told.push(("error", code)),
                Got::Control(ServerMessage::Left { reason }) => {
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
        // The other lobby plays on, tick after tick, in deltas.
        let mut last = bob.snapshot().await.0;
        while last < 20 {
            let (next, _, full, _) = bob.snapshot().await;
            assert_eq!(next, last + 1);
            assert!(!full);
            last = next;
        }
        assert!(!healthy.handle.is_closed());
        stop(healthy).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_away_seat_goes_when_the_resume_grace_ends() {
        let grace = Duration::from_secs(15);
        let lobby = start_with(4, None, None, Duration::from_secs(30), grace);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        ann.snapshot().await;
        // Ann's connection drops: her session ends the seat, so the lobby's next write
        // for her is refused and the seat goes idle, kept for the grace.
        ann.out.end_seat(Some(ann.epoch));
        let dropped = Instant::now();
        let left = bob
            .recv_until(|g| match g {
                Got::Control(ServerMessage::PlayerLeft { seat, .. }) => Some(*seat),
                _ => None,
            })
            .await;
        let away = dropped.elapsed();
        assert_eq!(left, ann_seat.seat);
        assert!(
            away >= grace && away <= grace + 3 * TICK,
            "the seat went after {away:?}"
        );
        assert_eq!(
            lobby.log.lock().expect("log").reasons,
            [LeaveReason::Dropped]
        );
        assert_eq!(lobby.handle.players(), 1);
        assert_eq!(lobby.handle.claimed(), 1, "its claim came back");
        stop(lobby).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_connection_takes_its_seat_back_within_the_grace() {
        let lobby = start(4, None);
        let (mut ann, ann_seat) = join(&lobby.handle, 1).await;
        let (mut bob, _) = join(&lobby.handle, 2).await;
        ann.input(&lobby.handle, &ann_seat, 40, 40, 0);
        bob.snapshot().await;
        ann.out.end_seat(Some(ann.epoch));
        // Some ticks later a new connection of the same player re-attaches.
        for _ in 0..10 {
            bob.snapshot().await;
        }
        let mut again = Player::connect(9).await;
        let seated = lobby
            .handle
            .reattach(again.request(1), ann_seat.seat)
            .await
            .expect("re-attached");
        assert_eq!(seated.seat, ann_seat.seat);
        let joined = again
            .recv_until(|g| match g {
                Got::Control(ServerMessage::Joined(j)) => Some(j.clone()),
                _ => None,
            })
            .await;
        assert_eq!(joined.players.len(), 2);
        // The new connection's inputs start from seq 1 again; the old one's are ignored.
        let mut bytes = Vec::new();
        encode_input(&seated.codec, 41, 0, &ProbeInput::default(), &mut bytes);
        let old = decode_input(&seated.codec, &bytes).expect("decodes");
        assert_eq!(
            lobby.handle.input(&seated.mailbox, ann.conn, old),
            crate::lobby::InputOutcome::NotYours
        );
        let (_, _, full, dots) = again.snapshot().await;
        assert!(full, "a re-attached connection starts from a full snapshot");
        assert_eq!(
            dots.iter().find(|d| d.0 == 1).map(|d| d.1),
            Some(0),
            "idle while away"
        );
        again.input(&lobby.handle, &seated, 1, -10, 0);
        let dots = loop {
            let (_, ack, _, dots) = again.snapshot().await;
            if ack == 1 {
                break dots;
            }
            assert_eq!(ack, 0, "acks restart with the new connection");
        };
        assert_eq!(dots.iter().find(|d| d.0 == 1).map(|d| d.1), Some(-10));
        // Nobody saw a leave or a join.
        let seats = lobby.log.lock().expect("log").seats.clone();
        assert_eq!(seats, [(1, true), (2, true)]);
        stop(lobby).await;
    }
}
