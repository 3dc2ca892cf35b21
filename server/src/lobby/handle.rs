//! A lobby as the rest of the server sees it: its identity, its counts, and the only
//! ways to reach its tick task.
//!
//! - **Joins** (and a resumed player's re-attach) go through a small bounded queue that
//!   the tick task drains each tick. A join first *claims* a seat here ([`claim`]), with
//!   one atomic step: a lobby is never promised more players than its cap, a crowd of
//!   quick-joins sees every promised seat at once (so it fills lobbies instead of
//!   scattering), and a join to a full lobby is refused without touching the queue. Since
//!   every queued join holds a claim, the queue never holds more joins than the lobby has
//!   seats.
//! - **Inputs** go to the player's own [`SeatBox`], a one-slot mailbox that the tick task
//!   empties each tick: the newest input always wins, a burst of one player's inputs can
//!   lose neither its newest input nor anyone else's (and no button press: inputs carry
//!   press counters). Game messages wait in the same mailbox, in order, a few at most.
//! - **Leaving** is a flag in the same mailbox, and an operator's **close** a slot on the
//!   handle: neither waits in a queue, so neither can be lost to a full one.
//!
//! [`claim`]: LobbyHandle::claim

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ticksync_protocol::state::Codec;
use ticksync_protocol::state::io::{Decoded, DecodedInput};
use ticksync_protocol::{GameOptions, LobbyInfo};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::timeout;

use crate::stats::AtomicHistogram;
use crate::wire::outbox::Link;

/// How long a join may wait for the lobby's tick task (it answers within one tick).
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Game messages a seat's mailbox holds between two ticks; the session's rate limit
/// (10/s, a burst of 20) keeps a client well under it, and beyond it they are dropped.
pub(crate) const MAX_PENDING_MESSAGES: usize = 32;

/// What the registry and sessions know of a lobby. Only the lobby's tick task writes
/// its counts.
#[derive(Debug)]
pub(crate) struct LobbyHandle {
    id: u32,
    name: String,
    max_players: u16,
    /// Join code (private lobbies only; a lobby with a code is private).
    code: Option<String>,
    /// Players seated, updated by the tick task.
    players: AtomicU16,
    /// Seats taken or promised to a join on its way (see [`Claim`]).
    claimed: AtomicU32,
    /// Set once the tick task stops accepting players.
    closed: AtomicBool,
    /// The tick number the lobby's next snapshot will carry.
    tick: AtomicU32,
    /// Joins and re-attaches, each holding a claim or a seat.
    commands: mpsc::Sender<Command>,
    /// An operator's close, read by the tick task (never queued, never lost).
    close_request: Mutex<Option<String>>,
    /// Wakes the tick task when it sleeps (an empty lobby does not tick).
    wake: Notify,
    stats: LobbyStats,
}

/// Counters of one lobby, written by its tick task and its players' sessions.
#[derive(Debug, Default)]
pub(crate) struct LobbyStats {
    ticks: AtomicU64,
    inputs_superseded: AtomicU64,
    inputs_stale: AtomicU64,
    inputs_rate_limited: AtomicU64,
    messages_dropped: AtomicU64,
    tick_lateness: AtomicHistogram,
    tick_time: AtomicHistogram,
}

/// A lobby's figures for operators, read from its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LobbyFigures {
    /// Ticks run.
    pub(crate) ticks: u64,
    /// Tick compute time p50 and p99 (an upper bound, µs).
    pub(crate) tick_p50_us: Option<u64>,
    /// See `tick_p50_us`.
    pub(crate) tick_p99_us: Option<u64>,
    /// Tick start lateness p99 (µs).
    pub(crate) tick_lateness_p99_us: Option<u64>,
    /// Inputs replaced by a newer one before a tick applied them.
    pub(crate) inputs_superseded: u64,
    /// Inputs older than one already received.
    pub(crate) inputs_stale: u64,
    /// Inputs over their connection's rate limit.
    pub(crate) inputs_rate_limited: u64,
    /// Game messages dropped because the seat's mailbox was full.
    pub(crate) messages_dropped: u64,
}

/// What the tick task takes from the handle's queue.
#[derive(Debug)]
pub(crate) enum Command {
    /// Seat a new player.
    Join {
        /// The request.
        join: JoinRequest,
        /// The seat promised to it (released if the join fails).
        claim: Claim,
        /// The answer.
        reply: oneshot::Sender<Result<Seated, JoinRefused>>,
    },
    /// A resumed connection takes its player's seat back.
    Reattach {
        /// The request (same player id).
        join: JoinRequest,
        /// The player's seat.
        seat: u16,
        /// The answer.
        reply: oneshot::Sender<Result<Seated, JoinRefused>>,
    },
}

/// Who asks for a seat.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    /// Server-wide player id.
    pub(crate) player_id: u32,
    /// Display name.
    pub(crate) name: String,
    /// The join options the game sees.
    pub(crate) options: GameOptions,
    /// The connection asking: a stale connection cannot act for its successor.
    pub(crate) conn: u64,
    /// The way to the player's connection.
    pub(crate) link: Link,
}

/// A successful join: the `Joined` message is already on its way to the player.
#[derive(Debug, Clone)]
pub(crate) struct Seated {
    /// The player's seat, 1 to the cap.
    pub(crate) seat: u16,
    /// Where the player's inputs, messages and leave go.
    pub(crate) mailbox: Arc<SeatBox>,
    /// The lobby's schema, to decode the player's inputs and messages by.
    pub(crate) codec: Arc<Codec>,
}

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinRefused {
    /// The lobby is at its cap.
    Full,
    /// The lobby is closing, did not answer in time, or (re-attach) the seat is gone.
    Closed,
    /// The game said no (`Game::on_join`), for this reason.
    Game(String),
}

/// A seat promised to a join on its way to the tick task. Dropped without being
/// [`kept`](Claim::keep), it gives the seat back.
#[derive(Debug)]
pub(crate) struct Claim {
    lobby: Arc<LobbyHandle>,
    kept: bool,
}

impl Claim {
    /// The lobby the seat is in.
    pub(crate) fn lobby(&self) -> &Arc<LobbyHandle> {
        &self.lobby
    }

    /// Seats the player in the claimed seat: asks the tick task, waiting at most a few
    /// seconds. On a refusal the seat is given back.
    pub(crate) async fn join(self, join: JoinRequest) -> Result<Seated, JoinRefused> {
        let lobby = Arc::clone(&self.lobby);
        lobby
            .ask(|reply| Command::Join {
                join,
                claim: self,
                reply,
            })
            .await
    }

    /// The join succeeded: the claim is now the seat, which the tick task gives back
    /// when the player leaves ([`LobbyHandle::seat_freed`]).
    pub(super) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.kept {
            self.lobby.claimed.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// How an input fared on its way into a seat's mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputOutcome {
    /// It is the newest; the next tick applies it.
    Accepted,
    /// It replaced a newer-than-applied input that no tick had taken yet.
    Superseded,
    /// Its sequence is not above the newest one received: ignored.
    Stale,
    /// The seat belongs to another connection now (or is gone): ignored.
    NotYours,
}

/// One seat's mailbox, shared by the player's session (which puts) and the lobby's tick
/// task (which takes, once per tick). One small lock, held for a few field moves.
#[derive(Debug)]
pub(crate) struct SeatBox {
    state: Mutex<SeatState>,
}

#[derive(Debug)]
struct SeatState {
    /// The connection the seat belongs to: a stale connection cannot steer its successor.
    conn: u64,
    /// The newest input not yet taken by a tick.
    pending: Option<DecodedInput>,
    /// Game messages not yet taken, in arrival order.
    messages: VecDeque<Decoded>,
    /// Sequence of the newest input received on this connection.
    newest_seq: u32,
    /// The player asked to leave (or its session ended for good).
    leave: bool,
    /// The seat's claim was given back (see [`SeatBox::free`]).
    freed: bool,
}

/// What a tick takes from a seat's mailbox (its messages go to the caller's list).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Taken {
    /// The newest input since the last tick, if any.
    pub(crate) input: Option<DecodedInput>,
    /// Whether the player has left.
    pub(crate) leave: bool,
}

impl SeatBox {
    /// A mailbox for a seat held by connection `conn`.
    pub(crate) fn new(conn: u64) -> Arc<Self> {
        Arc::new(SeatBox {
            state: Mutex::new(SeatState {
                conn,
                pending: None,
                messages: VecDeque::new(),
                newest_seq: 0,
                leave: false,
                freed: false,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, SeatState> {
        // A few plain fields: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts connection `conn`'s input; the newest sequence wins.
    fn put(&self, conn: u64, input: DecodedInput) -> InputOutcome {
        let mut state = self.state();
        if state.conn != conn || state.leave {
            return InputOutcome::NotYours;
        }
        if input.seq <= state.newest_seq {
            return InputOutcome::Stale;
        }
        state.newest_seq = input.seq;
        match state.pending.replace(input) {
            Some(_) => InputOutcome::Superseded,
            None => InputOutcome::Accepted,
        }
    }

    /// Queues connection `conn`'s game message; false if it is not the seat's or the
    /// mailbox is full.
    fn put_message(&self, conn: u64, message: Decoded) -> bool {
        let mut state = self.state();
        if state.conn != conn || state.leave || state.messages.len() >= MAX_PENDING_MESSAGES {
            return false;
        }
        state.messages.push_back(message);
        true
    }

    /// Connection `conn` leaves the seat for good. True if it held the seat.
    fn leave(&self, conn: u64) -> bool {
        let mut state = self.state();
        if state.conn == conn {
            state.leave = true;
            state.pending = None;
            state.messages.clear();
        }
        state.conn == conn
    }

    /// Marks the seat's claim as given back; true the first time only, so that a seat
    /// left by its player and then removed by the tick gives back one claim.
    pub(super) fn free(&self) -> bool {
        !std::mem::replace(&mut self.state().freed, true)
    }

    /// The tick's take: the newest input (if a new one came), the messages (appended to
    /// `messages`) and whether to leave.
    pub(crate) fn take(&self, messages: &mut Vec<Decoded>) -> Taken {
        let mut state = self.state();
        // Most ticks bring no message: no drain to set up and drop.
        if !state.messages.is_empty() {
            messages.extend(state.messages.drain(..));
        }
        Taken {
            input: state.pending.take(),
            leave: state.leave,
        }
    }

    /// A resumed connection takes the seat over; its input sequence starts anew.
    pub(crate) fn hand_over(&self, conn: u64) {
        let mut state = self.state();
        state.conn = conn;
        state.pending = None;
        state.messages.clear();
        state.newest_seq = 0;
    }
}

/// A lobby's seats and the room in its queue: every queued join holds a claim, every
/// re-attach a seat, so this many never fill it.
fn queue_capacity(max_players: u16) -> usize {
    2 * usize::from(max_players) + 1
}

impl LobbyHandle {
    /// A handle and the receiving end of its queue (for the tick task).
    pub(crate) fn new(
        id: u32,
        name: String,
        max_players: u16,
        code: Option<String>,
    ) -> (Arc<Self>, mpsc::Receiver<Command>) {
        let (commands, rx) = mpsc::channel(queue_capacity(max_players));
        let handle = Arc::new(LobbyHandle {
            id,
            name,
            max_players,
            code,
            players: AtomicU16::new(0),
            claimed: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            tick: AtomicU32::new(0),
            commands,
            close_request: Mutex::new(None),
            wake: Notify::new(),
            stats: LobbyStats::default(),
        });
        (handle, rx)
    }

    /// The lobby id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Its display name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its player cap.
    pub(crate) fn max_players(&self) -> u16 {
        self.max_players
    }

    /// Its join code (private lobbies).
    pub(crate) fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Private lobbies are never listed and are joined by code only.
    pub(crate) fn is_private(&self) -> bool {
        self.code.is_some()
    }

    /// Players seated now.
    pub(crate) fn players(&self) -> u16 {
        self.players.load(Ordering::Acquire)
    }

    /// Seats taken or promised to joins on their way.
    pub(crate) fn claimed(&self) -> u32 {
        self.claimed.load(Ordering::Acquire)
    }

    /// The tick number the lobby's next snapshot will carry.
    pub(crate) fn tick(&self) -> u32 {
        self.tick.load(Ordering::Relaxed)
    }

    /// Whether the lobby has stopped taking players.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether a new player could join now (a claim has the final word).
    pub(crate) fn has_room(&self) -> bool {
        !self.is_closed() && self.claimed() < u32::from(self.max_players)
    }

    /// How the lobby appears in a listing.
    pub(crate) fn info(&self) -> LobbyInfo {
        LobbyInfo {
            id: self.id,
            name: self.name.clone(),
            players: self.players(),
            max_players: self.max_players,
        }
    }

    /// Promises a seat to a join, or None if the lobby is full or closed.
    pub(crate) fn claim(self: &Arc<Self>) -> Option<Claim> {
        if self.is_closed() {
            return None;
        }
        let cap = u32::from(self.max_players);
        self.claimed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(Claim {
            lobby: Arc::clone(self),
            kept: false,
        })
    }

    /// Gives a resumed connection its player's seat back.
    pub(crate) async fn reattach(
        &self,
        join: JoinRequest,
        seat: u16,
    ) -> Result<Seated, JoinRefused> {
        self.ask(|reply| Command::Reattach { join, seat, reply })
            .await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<Seated, JoinRefused>>) -> Command,
    ) -> Result<Seated, JoinRefused> {
        let (reply_tx, reply) = oneshot::channel();
        // The queue has room for every claim and seat; `try_send` failing means closed.
        self.commands
            .try_send(command(reply_tx))
            .map_err(|_| JoinRefused::Closed)?;
        self.wake.notify_one();
        match timeout(JOIN_TIMEOUT, reply).await {
            Ok(Ok(result)) => result,
            _ => Err(JoinRefused::Closed),
        }
    }

    /// Connection `conn`'s input for its seat; the newest sequence wins. Counted.
    pub(crate) fn input(&self, seat: &SeatBox, conn: u64, input: DecodedInput) -> InputOutcome {
        let outcome = seat.put(conn, input);
        match outcome {
            InputOutcome::Superseded => {
                self.stats.inputs_superseded.fetch_add(1, Ordering::Relaxed);
            }
            InputOutcome::Stale => {
                self.stats.inputs_stale.fetch_add(1, Ordering::Relaxed);
            }
            InputOutcome::Accepted | InputOutcome::NotYours => {}
        }
        outcome
    }

    /// Connection `conn`'s game message for the next tick; false (counted) if the
    /// mailbox is full or the seat is not the connection's.
    pub(crate) fn message(&self, seat: &SeatBox, conn: u64, message: Decoded) -> bool {
        let queued = seat.put_message(conn, message);
        if !queued {
            self.stats.messages_dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Counts an input the player's connection dropped over its rate limit.
    pub(crate) fn count_rate_limited(&self) {
        self.stats
            .inputs_rate_limited
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Connection `conn` leaves its seat for good; the next tick removes it (before it
    /// seats anyone new). Never lost. The seat can be claimed again at once.
    pub(crate) fn leave(&self, seat: &SeatBox, conn: u64) {
        if seat.leave(conn) && seat.free() {
            self.seat_freed();
        }
        self.wake.notify_one();
    }

    /// An operator closes the lobby: its players are told `reason` within a tick. Never
    /// lost; a second close before the tick keeps the first reason.
    pub(crate) fn close(&self, reason: String) {
        {
            let mut request = self
                .close_request
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            request.get_or_insert(reason);
        }
        self.wake.notify_one();
    }

    /// The figures operators see.
    pub(crate) fn figures(&self) -> LobbyFigures {
        let s = &self.stats;
        LobbyFigures {
            ticks: s.ticks.load(Ordering::Relaxed),
            tick_p50_us: s.tick_time.quantile_us(0.5),
            tick_p99_us: s.tick_time.quantile_us(0.99),
            tick_lateness_p99_us: s.tick_lateness.quantile_us(0.99),
            inputs_superseded: s.inputs_superseded.load(Ordering::Relaxed),
            inputs_stale: s.inputs_stale.load(Ordering::Relaxed),
            inputs_rate_limited: s.inputs_rate_limited.load(Ordering::Relaxed),
            messages_dropped: s.messages_dropped.load(Ordering::Relaxed),
        }
    }

    // The tick task's side.

    /// The operator's close reason, if one was asked for.
    pub(super) fn close_requested(&self) -> Option<String> {
        self.close_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves when a join, a leave or a close may be waiting (for an idle lobby).
    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// A seat is gone (its claim given back once, see [`SeatBox::free`]).
    pub(super) fn seat_freed(&self) {
        self.claimed.fetch_sub(1, Ordering::AcqRel);
    }

    pub(super) fn set_players(&self, n: u16) {
        self.players.store(n, Ordering::Release);
    }

    pub(super) fn set_tick(&self, tick: u32) {
        self.tick.store(tick, Ordering::Relaxed);
    }

    /// Stops taking players (the queue's leftovers are answered by the task).
    pub(super) fn set_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(super) fn tick_ran(&self, compute: Duration, late: Duration) {
        let s = &self.stats;
        s.ticks.fetch_add(1, Ordering::Relaxed);
        s.tick_time.observe(compute);
        s.tick_lateness.observe(late);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(seq: u32, x: u32) -> DecodedInput {
        DecodedInput {
            seq,
            client_tick: seq,
            row: ticksync_protocol::state::Row {
                words: [x].into_iter().collect(),
                text: String::new(),
            },
            clamped: 0,
        }
    }

    #[test]
    fn a_burst_of_inputs_ends_with_the_newest() {
        let (lobby, _rx) = LobbyHandle::new(1, "a".into(), 4, None);
        let seat = SeatBox::new(7);
        for seq in 1..=8 {
            lobby.input(&seat, 7, input(seq, 1));
        }
        for seq in 9..=12 {
            lobby.input(&seat, 7, input(seq, 0));
        }
        let taken = seat.take(&mut Vec::new());
        assert_eq!(taken.input, Some(input(12, 0)));
        assert_eq!(lobby.figures().inputs_superseded, 11);
        // Late arrivals of older inputs never win.
        assert_eq!(lobby.input(&seat, 7, input(5, 1)), InputOutcome::Stale);
        assert_eq!(seat.take(&mut Vec::new()).input, None);
    }

    #[test]
    fn messages_wait_in_order_up_to_the_cap() {
        let (lobby, _rx) = LobbyHandle::new(1, "a".into(), 4, None);
        let seat = SeatBox::new(7);
        let message = |index| Decoded {
            tick: 0,
            index,
            row: ticksync_protocol::state::Row::default(),
            clamped: 0,
        };
        for i in 0..MAX_PENDING_MESSAGES + 3 {
            lobby.message(&seat, 7, message(i));
        }
        assert!(!lobby.message(&seat, 8, message(0)), "not its seat");
        let mut taken = Vec::new();
        seat.take(&mut taken);
        let order: Vec<usize> = taken.iter().map(|m| m.index).collect();
        assert_eq!(order, (0..MAX_PENDING_MESSAGES).collect::<Vec<_>>());
        assert_eq!(lobby.figures().messages_dropped, 4);
    }

    #[test]
    fn a_stale_connection_cannot_steer_or_leave_the_seat() {
        let (lobby, _rx) = LobbyHandle::new(1, "a".into(), 4, None);
        let seat = SeatBox::new(1);
        seat.hand_over(2);
        assert_eq!(lobby.input(&seat, 1, input(1, 1)), InputOutcome::NotYours);
        lobby.leave(&seat, 1);
        assert!(!seat.take(&mut Vec::new()).leave);
        lobby.leave(&seat, 2);
        assert!(seat.take(&mut Vec::new()).leave);
    }

    #[test]
    fn claims_never_exceed_the_cap_and_come_back() {
        let (lobby, _rx) = LobbyHandle::new(1, "a".into(), 2, None);
        let a = lobby.claim().expect("room");
        let b = lobby.claim().expect("room");
        assert!(lobby.claim().is_none(), "full");
        assert!(!lobby.has_room());
        drop(a);
        assert!(lobby.has_room(), "a failed join gives its seat back");
        b.keep();
        assert_eq!(lobby.claimed(), 1, "a kept claim is a seat");
        let seat = SeatBox::new(3);
        lobby.leave(&seat, 3);
        assert_eq!(lobby.claimed(), 0, "a leave frees the seat at once");
        assert!(
            !seat.free(),
            "and only once: the tick's removal frees nothing more"
        );
    }

    #[test]
    fn an_operator_close_is_never_lost() {
        let (lobby, _rx) = LobbyHandle::new(1, "a".into(), 2, None);
        assert_eq!(lobby.close_requested(), None);
        lobby.close("maintenance".into());
        lobby.close("again".into());
        assert_eq!(lobby.close_requested().as_deref(), Some("maintenance"));
    }
}
