//! One task per WebSocket connection: the session.
//!
//! It reads the socket and `select!`s, in priority order, over server shutdown, operator
//! controls (kick, notice, replaced by a resume), its outbox (bytes the socket did not
//! take at once, a lobby's news), the client's next message, and its timers (Hello
//! deadline, pings and the idle check). `next()` is cancel-safe, so losing a `select!`
//! round loses no input.
//!
//! Snapshots do not pass through here: the lobby's tick task writes them to the socket
//! itself, through the connection's outbox (`outbox.rs`), so a tick wakes no session. The
//! session only finishes what the socket could not take at once; meanwhile a newer
//! snapshot replaces a waiting one (counted as skipped), so a slow client never makes a
//! queue grow. A client that accepts nothing for `--write-timeout`, or sends nothing (not
//! even a pong) for `--idle-timeout`, is dropped.
//!
//! How a session ends decides what happens to the player:
//! - the client says goodbye (a close frame), breaks the protocol, floods, or is kicked:
//!   it leaves its lobby at once and its session token stops working;
//! - the connection drops (reset, timeout, vanished link): the player keeps its seat,
//!   idle, and can resume with its token within `--resume-grace`;
//! - another connection resumed the player: nothing changes for the lobby.
//!
//! A client closing, resetting or sending garbage is a normal end: logged once, never a
//! panic.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ticksync_protocol::limits::{
    MAX_LOBBY_NAME_BYTES, MAX_PLAYER_NAME_BYTES, NameProblem, check_name,
};
use ticksync_protocol::state::Codec;
use ticksync_protocol::state::io::{INPUT_TAG, MESSAGE_TAG, decode_input, decode_message};
use ticksync_protocol::{
    ClientMessage, ErrorCode, GameOptions, JoinTarget, LeftReason, PROTOCOL_VERSION, ServerMessage,
    SessionToken, close, decode_client, encode_server,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{Instrument, Span, debug, field, info, info_span};

use crate::auth::check_join_token;
use crate::directory::cluster::{Cluster, Held, Refusal as ClusterRefusal, Routed, Want};
use crate::directory::players::PlayerRecord;
use crate::input::RateLimits;
use crate::lobby::{Claim, InputOutcome, JoinRefused, JoinRequest, LobbyHandle, SeatBox, Seated};
use crate::net::admission::{Admission, ConnSlot, ip_key};
use crate::net::quota::{Guess, QuotaRefusal};
use crate::shared::{CreateRefused, Shared};
use crate::stats::{FrameRejection, Refusal};
use crate::wire::outbox::{Conn, Control, Link, Outbox, Signal};
/// After sending a close frame, how long to wait for the client's.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Runs a session to its end.
pub(crate) async fn run<R>(
    ws: WebSocketStream<Conn<R>>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: Arc<ConnSlot>,
    join_token: Option<String>,
) where
    R: AsyncRead + Unpin,
{
    let conn = shared.next_conn_id();
    let span = info_span!("session", %peer, conn, player_id = field::Empty);
    let limits = RateLimits::new(shared.config.tick_rate);
    let out = Arc::clone(ws.get_ref().outbox());
    let admission = slot.admission();
    let session = Session {
        addr: ip_key(peer.ip()),
        slot,
        must_resume: admission == Admission::AddressHeld,
        shared,
        out,
        ws,
        conn,
        join_token,
        player: None,
        token: None,
        lobby: None,
        joined_once: false,
        limits,
        started: Instant::now(),
        last_heard: Instant::now(),
        span,
    };
    session.run(admission).await;
}

/// What happens to the player when the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Leave the lobby now and forget the session token.
    Leave,
    /// Keep the seat and the token for the resume grace.
    Detach,
    /// Touch nothing (another connection owns the player now, or nothing to do).
    Keep,
}

/// How a session ends.
#[derive(Debug)]
struct End {
    /// An `Error` to send first.
    error: Option<(ErrorCode, String)>,
    /// A close frame to send, or None if the connection is already gone.
    close: Option<(u16, &'static str)>,
    after: After,
}

impl End {
    fn close(
        error: ErrorCode,
        message: impl Into<String>,
        code: u16,
        reason: &'static str,
    ) -> Self {
        End {
            error: Some((error, message.into())),
            close: Some((code, reason)),
            after: After::Leave,
        }
    }

    fn then(mut self, after: After) -> Self {
        self.after = after;
        self
    }

    /// The connection dropped without a goodbye.
    fn dropped() -> Self {
        End {
            error: None,
            close: None,
            after: After::Detach,
        }
    }

    /// The client closed the connection.
    fn goodbye() -> Self {
        End {
            error: None,
            close: None,
            after: After::Leave,
        }
    }
}

struct InLobby {
    handle: Arc<LobbyHandle>,
    /// Where this player's inputs, messages and its leave go.
    seat: Arc<SeatBox>,
    /// The lobby's schema: inputs and game messages are decoded by it.
    codec: Arc<Codec>,
    /// The outbox's seat epoch of this stay.
    epoch: u64,
}

struct Session<R> {
    shared: Arc<Shared>,
    /// The client's address as counted under the caps and quotas (`admission::ip_key`).
    addr: IpAddr,
    /// The connection's place under the caps; a dropped player keeps its address's
    /// place for its resume grace.
    slot: Arc<ConnSlot>,
    /// The address is at its cap because of players that may resume: only such a
    /// resume may go on.
    must_resume: bool,
    /// The connection's outbox (also inside `ws`), shared with the lobby; given to the
    /// player record, so operators and resumes can reach this connection.
    out: Arc<Outbox>,
    ws: WebSocketStream<Conn<R>>,
    /// This connection's id: a stale connection cannot act for its successor.
    conn: u64,
    /// The join token from the URL, if any.
    join_token: Option<String>,
    player: Option<Arc<PlayerRecord>>,
    token: Option<SessionToken>,
    lobby: Option<InLobby>,
    /// Inputs after leaving a lobby are in-flight leftovers, not a protocol violation.
    joined_once: bool,
    limits: RateLimits,
    started: Instant,
    last_heard: Instant,
    /// The connection's span (peer, conn, player): the parent of the session's events,
    /// and the current span in everything but its hot path. Inputs, most of a session's
    /// frames, are handled outside it: entering and leaving a span on every poll cost
    /// the server a twentieth of its instructions.
    span: Span,
}

impl<R> Session<R>
where
    R: AsyncRead + Unpin,
{
    async fn run(mut self, admission: Admission) {
        let stats = &self.shared.stats;
        stats.sessions_open.fetch_add(1, Ordering::Relaxed);
        stats.sessions_total.fetch_add(1, Ordering::Relaxed);
        // While draining, a connection goes on to its Hello: a resume is still welcome,
        // a new player is refused there (`hello`).
        let refusal = match admission {
            Admission::ServerFull => Some(Refusal::ServerFull),
            Admission::AddressFull => Some(Refusal::AddressFull),
            Admission::Ok | Admission::AddressHeld => None,
        };
        if let Some(why) = refusal {
            stats.refuse(why);
        }
        let end = match admission {
            Admission::ServerFull => End::close(
                ErrorCode::ServerFull,
                "the server is full; try again later",
                close::TRY_AGAIN_LATER,
                "server full",
            ),
            Admission::AddressFull => address_full(),
            Admission::Ok | Admission::AddressHeld => self.main_loop().await,
        };
        let span = self.span.clone();
        Box::pin(self.finish(end).instrument(span)).await;
        self.out.shutdown();
        self.shared
            .stats
            .sessions_open
            .fetch_sub(1, Ordering::Relaxed);
    }

    async fn finish(&mut self, end: End) {
        if let Some((code, reason)) = end.close {
            info!(parent: &self.span, code, reason, "closing session");
            self.shared.stats.count_close(code);
        } else {
            debug!(parent: &self.span, after = ?end.after, "connection ended");
            self.shared.stats.count_close(0);
        }
        // What happens to the player first, so that a slow close cannot delay it. The
        // lobby writes nothing more here (a detached player's lobby sees that too).
        self.out.end_seat(None);
        let lobby = self.lobby.take();
        if let Some(player) = self.player.clone() {
            match end.after {
                After::Leave => {
                    if let Some(lobby) = &lobby {
                        lobby.handle.leave(&lobby.seat, self.conn);
                    }
                    if player.is_live(self.conn) {
                        if let Some(token) = &self.token {
                            self.shared.players.forget(token);
                        }
                    }
                }
                // The ended seat tells the lobby the player is away; the address keeps
                // the player's place under its cap until the grace ends.
                After::Detach => player.detach(self.conn, self.slot.hold()),
                After::Keep => {}
            }
        }
        drop(lobby);
        match (end.error, end.close) {
            (error, Some((code, reason))) => {
                if let Some((error, message)) = error {
                    let _ = self
                        .send_message(&ServerMessage::error(error, message))
                        .await;
                }
                self.close(code, reason).await;
            }
            // The client closed: let tungstenite send its reply to the close frame.
            (_, None) if end.after == After::Leave => {
                let _ = timeout(CLOSE_LINGER, async {
                    while let Some(Ok(_)) = self.ws.next().await {}
                })
                .await;
            }
            _ => {}
        }
    }

    async fn main_loop(&mut self) -> End {
        // Created once: a `cancelled()` made anew every round re-registers its waiter.
        let cancel = self.shared.cancel.clone();
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let config = &self.shared.config;
        let hello_deadline = tokio::time::sleep(config.hello_timeout);
        tokio::pin!(hello_deadline);
        let mut pings =
            tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle_timeout = config.idle_timeout;
        let out = Arc::clone(&self.out);
        loop {
            let result = tokio::select! {
                biased;
                () = &mut cancelled => {
                    return End::close(ErrorCode::ShuttingDown, "the server is shutting down",
                                      close::GOING_AWAY, "server shutting down").then(After::Keep);
                }
                signal = std::future::poll_fn(|cx| out.poll_signal(cx)) => {
                    let span = self.span.clone();
                    Box::pin(self.on_signal(signal).instrument(span)).await
                }
                message = self.ws.next() => match message {
                    None => Err(End::dropped()),
                    Some(message) => self.on_frame(message).await,
                },
                () = &mut hello_deadline, if self.player.is_none() => {
                    return End::close(ErrorCode::Timeout, "no Hello in time",
                                      close::HELLO_TIMEOUT, "hello timeout");
                }
                _ = pings.tick() => {
                    if self.last_heard.elapsed() >= idle_timeout {
                        // Most likely a vanished link: the player may come back.
                        return End::close(ErrorCode::Timeout, "nothing received for too long",
                                          close::IDLE_TIMEOUT, "idle timeout").then(After::Detach);
                    }
                    let span = self.span.clone();
                    Box::pin(self.ping().instrument(span)).await
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn on_control(&mut self, control: Control) -> Result<(), End> {
        match control {
            Control::Replaced => Err(End {
                error: None,
                close: Some((close::REPLACED, "resumed by another connection")),
                after: After::Keep,
            }),
            Control::Kick(reason) => {
                self.shared.stats.kicks.fetch_add(1, Ordering::Relaxed);
                Err(End::close(
                    ErrorCode::Kicked,
                    reason,
                    close::KICKED,
                    "kicked",
                ))
            }
            Control::Notice(text) => self.send_message(&ServerMessage::Notice { text }).await,
        }
    }

    async fn ping(&mut self) -> Result<(), End> {
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let payload = Bytes::copy_from_slice(&micros.to_le_bytes());
        self.send_ws(Message::Ping(payload)).await
    }

    fn on_pong(&mut self, payload: &[u8]) {
        let Ok(sent) = <[u8; 8]>::try_from(payload) else {
            return;
        };
        let now = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let rtt = now.saturating_sub(u64::from_le_bytes(sent));
        if let Some(player) = &self.player {
            player
                .rtt_us
                .store(u32::try_from(rtt).unwrap_or(u32::MAX), Ordering::Relaxed);
        }
    }

    async fn on_signal(&mut self, signal: Signal) -> Result<(), End> {
        match signal {
            Signal::Control(control) => self.on_control(control).await,
            Signal::Flush => self.flush_out().await,
            // The lobby closed (its Error and Left are on their way): out of it now, so
            // the client's next request (listing, joining elsewhere) finds the session
            // lobby-free.
            Signal::Left => {
                self.leave_lobby_state();
                Ok(())
            }
            Signal::Overflow => {
                self.leave_lobby_state();
                Err(End::close(
                    ErrorCode::Internal,
                    "too far behind to follow the lobby",
                    close::SLOW_CONSUMER,
                    "slow consumer",
                ))
            }
            Signal::Broken => Err(End::dropped()),
        }
    }

    /// Forgets the lobby (the seat is already gone on the lobby's side).
    fn leave_lobby_state(&mut self) {
        self.lobby = None;
        if let Some(player) = &self.player {
            player.set_lobby(None);
        }
    }

    async fn on_frame(&mut self, message: Result<Message, WsError>) -> Result<(), End> {
        if message.is_ok() {
            self.last_heard = Instant::now();
        }
        match message {
            Ok(Message::Binary(bytes)) => {
                self.shared.stats.count_in(&bytes);
                if let Some(player) = &self.player {
                    player
                        .bytes_in
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                if !self.limits.messages.take(self.last_heard) {
                    return Err(rate_limited("too many messages"));
                }
                // The hot path stays in this future; the rest (lobby requests, Hello,
                // joins with their timeouts) is boxed so that every session's future,
                // which lives as long as the connection, stays small.
                match bytes.first() {
                    Some(&(INPUT_TAG | MESSAGE_TAG)) if self.player.is_none() => {
                        return Err(invalid_state("the first message must be Hello"));
                    }
                    Some(&INPUT_TAG) => return self.on_input(&bytes),
                    Some(&MESSAGE_TAG) => {
                        let span = self.span.clone();
                        return Box::pin(self.on_game_message(&bytes).instrument(span)).await;
                    }
                    _ => {}
                }
                match decode_client(&bytes) {
                    Ok(message) => {
                        let span = self.span.clone();
                        Box::pin(self.on_message(message).instrument(span)).await
                    }
                    Err(e) => {
                        self.shared
                            .stats
                            .decode_errors
                            .fetch_add(1, Ordering::Relaxed);
                        Err(End::close(
                            ErrorCode::BadMessage,
                            e.to_string(),
                            close::PROTOCOL_ERROR,
                            "undecodable message",
                        ))
                    }
                }
            }
            Ok(Message::Text(_)) => Err(End::close(
                ErrorCode::TextFrame,
                "text frames are not supported; send binary messages",
                close::UNSUPPORTED_DATA,
                "text frame",
            )),
            Ok(Message::Close(_)) => Err(End::goodbye()),
            Ok(Message::Pong(payload)) => {
                self.on_pong(&payload);
                Ok(())
            }
            // Pings are answered by tungstenite; raw frames never reach us.
            Ok(Message::Ping(_) | Message::Frame(_)) => {
                if self.limits.messages.take(self.last_heard) {
                    Ok(())
                } else {
                    Err(rate_limited("too many pings"))
                }
            }
            Err(WsError::Capacity(e)) => Err(End::close(
                ErrorCode::MessageTooLarge,
                format!("message too large: {e}"),
                close::MESSAGE_TOO_BIG,
                "message too large",
            )),
            // A vanished peer, not a misbehaving one: it may come back with its token.
            Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                Err(End::dropped())
            }
            Err(WsError::Protocol(e)) => {
                debug!(parent: &self.span, error = %e, "websocket protocol error");
                Err(End {
                    error: None,
                    close: Some((close::PROTOCOL_ERROR, "websocket protocol error")),
                    after: After::Leave,
                })
            }
            Err(e) => {
                debug!(parent: &self.span, error = %e, "connection error");
                Err(End::dropped())
            }
        }
    }

    async fn on_message(&mut self, message: ClientMessage) -> Result<(), End> {
        let Some(player) = &self.player else {
            return match message {
                ClientMessage::Hello {
                    protocol_version,
                    name,
                    resume_token,
                } => self.hello(protocol_version, &name, resume_token).await,
                _ => Err(invalid_state("the first message must be Hello")),
            };
        };
        if is_lobby_op(&message) && !self.limits.lobby_ops.take(self.last_heard) {
            return Err(rate_limited("too many lobby requests"));
        }
        match message {
            ClientMessage::Hello { .. } => Err(invalid_state("Hello was already sent")),
            ClientMessage::Ping { client_time } => {
                let server_tick = self.lobby.as_ref().map_or(0, |l| l.handle.tick());
                self.send_message(&ServerMessage::Pong {
                    client_time,
                    server_tick,
                })
                .await
            }
            ClientMessage::Options { delta_snapshots } => {
                // Takes effect from the next snapshot: the next one is still full if the
                // client has not received a snapshot since.
                self.out.set_deltas(delta_snapshots);
                player.set_delta_snapshots(delta_snapshots);
                Ok(())
            }
            ClientMessage::ListLobbies => {
                // Cluster mode: every live node's public lobbies.
                let lobbies = match self.shared.cluster() {
                    Some(cluster) => cluster.list(&self.shared.registry).await.to_vec(),
                    None => self.shared.registry.list_public().to_vec(),
                };
                self.send_message(&ServerMessage::LobbyList { lobbies })
                    .await
            }
            ClientMessage::LeaveLobby => {
                if let Some(lobby) = self.lobby.take() {
                    self.out.end_seat(Some(lobby.epoch));
                    lobby.handle.leave(&lobby.seat, self.conn);
                    player.set_lobby(None);
                }
                // Idempotent: leaving when not in a lobby just confirms it.
                self.send_message(&ServerMessage::Left {
                    reason: LeftReason::Requested.as_u8(),
                })
                .await
            }
            ClientMessage::CreateLobby { .. }
            | ClientMessage::JoinLobby { .. }
            | ClientMessage::QuickJoin { .. }
            | ClientMessage::JoinReserved { .. }
                if self.lobby.is_some() =>
            {
                Err(invalid_state("already in a lobby; send LeaveLobby first"))
            }
            ClientMessage::CreateLobby { options, .. }
            | ClientMessage::JoinLobby { options, .. }
            | ClientMessage::QuickJoin { options }
                if options.check().is_err() =>
            {
                let problem = options.check().err().map(|e| e.to_string());
                self.send_error(ErrorCode::InvalidArgument, problem.unwrap_or_default())
                    .await
            }
            ClientMessage::CreateLobby {
                name,
                max_players,
                private,
                options,
            } => self.create(&name, max_players, private, options).await,
            ClientMessage::JoinLobby { target, options } => self.join_target(target, options).await,
            ClientMessage::QuickJoin { options } => self.quick_join(options).await,
            ClientMessage::JoinReserved { reservation } => self.join_reserved(reservation).await,
        }
    }

    async fn hello(
        &mut self,
        version: u16,
        name: &str,
        resume_token: Option<SessionToken>,
    ) -> Result<(), End> {
        if version != PROTOCOL_VERSION {
            return Err(End::close(
                ErrorCode::VersionMismatch,
                format!(
                    "protocol version {version} is not supported; this server speaks version {PROTOCOL_VERSION}"
                ),
                close::VERSION_MISMATCH,
                "protocol version mismatch",
            ));
        }
        if let Some(token) = resume_token {
            let grace = self.shared.config.resume_grace;
            match self.shared.players.resume(&token, grace) {
                // A connection over its address's cap may only take back a place that
                // address holds.
                Some(record) if !self.must_resume || record.held_under() == self.slot.key() => {
                    self.must_resume = false;
                    return self.resume(record, token).await;
                }
                Some(_) => {}
                None => {
                    // Cluster mode: the token may be another node's player.
                    let home = match self.shared.cluster().cloned() {
                        Some(cluster) => cluster.home_of(&token).await.ok().flatten(),
                        None => None,
                    };
                    if let Some(url) = home {
                        return self
                            .send_message(&ServerMessage::Redirect {
                                url,
                                reservation: String::new(),
                            })
                            .await;
                    }
                    self.send_error(
                        ErrorCode::ResumeFailed,
                        "unknown or expired session token; starting a new session",
                    )
                    .await?;
                }
            }
        }
        if self.must_resume {
            self.shared.stats.refuse(Refusal::AddressFull);
            return Err(address_full());
        }
        if self.shared.is_draining() {
            self.shared.stats.refuse(Refusal::Draining);
            return Err(End::close(
                ErrorCode::ShuttingDown,
                "the server is shutting down",
                close::GOING_AWAY,
                "server shutting down",
            ));
        }
        let name = match check_name(name, MAX_PLAYER_NAME_BYTES) {
            Ok(name) => name.to_owned(),
            // The client may correct the name and say Hello again.
            Err(problem) => return self.send_name_error(problem, "player").await,
        };
        if let Some(secret) = &self.shared.config.join_secret {
            self.check_join_token(secret.as_bytes(), &name)?;
        }
        let (record, token) = self.shared.players.create(name).map_err(|_| {
            End::close(
                ErrorCode::Internal,
                "no randomness",
                close::INTERNAL_ERROR,
                "internal error",
            )
        })?;
        record.attach(self.conn, Arc::clone(&self.out));
        self.out.count_into(Arc::clone(&record.bytes_out));
        self.span.record("player_id", record.player_id);
        info!(parent: &self.span, name = %record.name, "player connected");
        self.welcome(record, token).await
    }

    /// Checks the connection's join token for `name` (see `auth.rs`): signed, not
    /// expired, and, if it carries a nonce, not used before. An address that keeps
    /// presenting bad tokens is refused for a while.
    fn check_join_token(&self, secret: &[u8], name: &str) -> Result<(), End> {
        let guesses = &self.shared.guesses;
        if !guesses.may_try(self.addr, Guess::JoinToken) {
            return Err(rate_limited("too many failed join tokens; try again later"));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let config = &self.shared.config;
        let checked =
            check_join_token(secret, name, self.join_token.as_deref(), now).and_then(|token| {
                self.shared
                    .nonces
                    .use_once(&token, now, config.join_token_max_lifetime)
            });
        checked.map_err(|e| {
            if !matches!(e, crate::error::Error::TokenMissing) {
                guesses.failed(self.addr, Guess::JoinToken);
            }
            End::close(
                ErrorCode::Unauthorized,
                e.to_string(),
                close::POLICY_VIOLATION,
                "unauthorized",
            )
        })
    }

    async fn welcome(&mut self, record: Arc<PlayerRecord>, token: SessionToken) -> Result<(), End> {
        let welcome = ServerMessage::Welcome {
            player_id: record.player_id,
            session_token: token,
            tick_rate: self.shared.config.tick_rate,
            protocol_version: PROTOCOL_VERSION,
        };
        self.player = Some(record);
        self.token = Some(token);
        self.send_message(&welcome).await
    }

    /// Takes over a player from its token: same id, and back in its lobby, on the same
    /// entity, if the seat is still there.
    async fn resume(&mut self, record: Arc<PlayerRecord>, token: SessionToken) -> Result<(), End> {
        if let Some(previous) = record.attach(self.conn, Arc::clone(&self.out)) {
            let _ = previous.control(Control::Replaced);
        }
        self.out.count_into(Arc::clone(&record.bytes_out));
        self.span.record("player_id", record.player_id);
        info!(parent: &self.span, name = %record.name, "player resumed");
        self.shared.stats.resumes.fetch_add(1, Ordering::Relaxed);
        let seat = record.lobby();
        // Options belong to the player, not the connection: a resumed connection keeps
        // the snapshot format its client asked for.
        self.out.set_deltas(record.delta_snapshots());
        self.welcome(Arc::clone(&record), token).await?;
        if let Some((handle, seat)) = seat {
            // Inputs in flight from before the drop are leftovers, even if the seat is gone.
            self.joined_once = true;
            let (epoch, join) = self.join_request(&record, GameOptions::none());
            match handle.reattach(join, seat).await {
                Ok(seated) => self.seat(handle, seated, epoch),
                Err(_) => {
                    self.out.end_seat(Some(epoch));
                    record.set_lobby(None);
                }
            }
        }
        Ok(())
    }

    async fn send_name_error(&mut self, problem: NameProblem, what: &str) -> Result<(), End> {
        let text = match problem {
            NameProblem::Empty => format!("the {what} name is empty"),
            NameProblem::TooLong => format!("the {what} name is too long"),
            NameProblem::ControlCharacter => format!("the {what} name has a control character"),
            NameProblem::InvisibleCharacter => {
                format!("the {what} name has an invisible or text-direction character")
            }
        };
        self.send_error(ErrorCode::InvalidName, text).await
    }

    /// An input (after Hello): decoded by the lobby's schema (values clamped to their
    /// declared ranges), to the seat's mailbox, within the rate limit.
    fn on_input(&mut self, bytes: &[u8]) -> Result<(), End> {
        let stats = &self.shared.stats;
        let Some(lobby) = &self.lobby else {
            stats.inputs_rejected[FrameRejection::NotInLobby as usize]
                .fetch_add(1, Ordering::Relaxed);
            return if self.joined_once {
                Ok(())
            } else {
                Err(invalid_state("Input before joining a lobby"))
            };
        };
        let input = match decode_input(&lobby.codec, bytes) {
            Ok(input) => input,
            Err(e) => {
                stats.inputs_rejected[FrameRejection::of(&e) as usize]
                    .fetch_add(1, Ordering::Relaxed);
                stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                return Err(undecodable_frame("input", "undecodable input", &e));
            }
        };
        if input.clamped > 0 {
            stats
                .inputs_clamped
                .fetch_add(u64::from(input.clamped), Ordering::Relaxed);
        }
        if !self.limits.inputs.take(self.last_heard) {
            lobby.handle.count_rate_limited();
            stats.inputs_rate_limited.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let counter = match lobby.handle.input(&lobby.seat, self.conn, input) {
            InputOutcome::Superseded => &stats.inputs_superseded,
            InputOutcome::Stale => &stats.inputs_stale,
            InputOutcome::Accepted | InputOutcome::NotYours => return Ok(()),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A game message (after Hello): within its rate limit (10/s, a burst of 20; over
    /// it, an `Error { RateLimited }` and the message is dropped), decoded by the lobby's
    /// schema, to the seat's mailbox for the next tick.
    async fn on_game_message(&mut self, bytes: &[u8]) -> Result<(), End> {
        let stats = Arc::clone(&self.shared.stats);
        let reject = |why: FrameRejection| {
            stats.game_messages_rejected[why as usize].fetch_add(1, Ordering::Relaxed);
        };
        let Some(lobby) = &self.lobby else {
            reject(FrameRejection::NotInLobby);
            return if self.joined_once {
                Ok(())
            } else {
                Err(invalid_state("a game message before joining a lobby"))
            };
        };
        if !self.limits.game_messages.take(self.last_heard) {
            reject(FrameRejection::RateLimited);
            return self
                .send_error(
                    ErrorCode::RateLimited,
                    "too many game messages; at most 10 per second",
                )
                .await;
        }
        let message = match decode_message(&lobby.codec, bytes) {
            Ok(message) => message,
            Err(e) => {
                reject(FrameRejection::of(&e));
                stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                return Err(undecodable_frame(
                    "game message",
                    "undecodable game message",
                    &e,
                ));
            }
        };
        if message.clamped > 0 {
            stats
                .game_messages_clamped
                .fetch_add(u64::from(message.clamped), Ordering::Relaxed);
        }
        if lobby.handle.message(&lobby.seat, self.conn, message) {
            stats.game_messages.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn create(
        &mut self,
        name: &str,
        max_players: u16,
        private: bool,
        options: GameOptions,
    ) -> Result<(), End> {
        let name = match check_name(name, MAX_LOBBY_NAME_BYTES) {
            Ok(name) => name.to_owned(),
            Err(problem) => return self.send_name_error(problem, "lobby").await,
        };
        let cap = self.shared.config.max_players_per_lobby;
        if max_players == 0 || max_players > cap {
            return self
                .send_error(
                    ErrorCode::InvalidArgument,
                    format!("max players must be 1 to {cap}"),
                )
                .await;
        }
        match self.shared.create_lobby(
            name,
            max_players,
            private,
            options.clone(),
            self.addr,
            false,
        ) {
            Ok(handle) => self.enter(handle, options).await,
            Err(refused) => self.send_create_refused(refused).await,
        }
    }

    async fn send_create_refused(&mut self, refused: CreateRefused) -> Result<(), End> {
        let (code, text) = match refused {
            CreateRefused::ServerFull => (
                ErrorCode::ServerFull,
                "the server has as many lobbies as it can run",
            ),
            CreateRefused::Quota(QuotaRefusal::TooFast) => (
                ErrorCode::RateLimited,
                "your address is creating lobbies too fast; try again in a minute",
            ),
            CreateRefused::Quota(QuotaRefusal::TooMany) => (
                ErrorCode::RateLimited,
                "your address has as many lobbies open as it may",
            ),
            CreateRefused::NoRandomness => (ErrorCode::Internal, "no randomness available"),
            CreateRefused::Game(reason) => {
                return self.send_error(ErrorCode::InvalidArgument, reason).await;
            }
        };
        self.send_error(code, text).await
    }

    async fn join_target(&mut self, target: JoinTarget, options: GameOptions) -> Result<(), End> {
        if let Some(cluster) = self.shared.cluster().cloned() {
            let want = match &target {
                JoinTarget::Id(id) => Want::Id(*id),
                JoinTarget::Code(code) => {
                    if !self.shared.guesses.may_try(self.addr, Guess::JoinCode) {
                        return self
                            .send_error(
                                ErrorCode::RateLimited,
                                "too many unknown join codes; try again later",
                            )
                            .await;
                    }
                    Want::Code(code.clone())
                }
            };
            let routed = cluster.route(&self.shared.registry, want, &options).await;
            if matches!(target, JoinTarget::Code(_))
                && matches!(routed, Routed::Refused(ClusterRefusal::NotFound))
            {
                self.shared.guesses.failed(self.addr, Guess::JoinCode);
            }
            return self.follow(&cluster, routed, options).await;
        }
        let registry = &self.shared.registry;
        let handle = match &target {
            // Private lobbies are reached by code only: ids are sequential, codes are not.
            JoinTarget::Id(id) => registry.get(*id).filter(|h| !h.is_private()),
            JoinTarget::Code(code) => {
                // Codes are secrets: an address that keeps guessing is slowed down.
                if !self.shared.guesses.may_try(self.addr, Guess::JoinCode) {
                    return self
                        .send_error(
                            ErrorCode::RateLimited,
                            "too many unknown join codes; try again later",
                        )
                        .await;
                }
                let found = registry.by_code(code);
                if found.is_none() {
                    self.shared.guesses.failed(self.addr, Guess::JoinCode);
                }
                found
            }
        };
        match handle {
            Some(handle) => self.enter(handle, options).await,
            None => {
                self.send_error(ErrorCode::LobbyNotFound, "no such lobby")
                    .await
            }
        }
    }

    async fn quick_join(&mut self, options: GameOptions) -> Result<(), End> {
        // Cluster mode: the fullest lobby with room on any node, or a new one on the
        // least-loaded node (directory/cluster.rs).
        if let Some(cluster) = self.shared.cluster().cloned() {
            let routed = cluster
                .route(&self.shared.registry, Want::Quick, &options)
                .await;
            return self.follow(&cluster, routed, options).await;
        }
        self.quick_join_here(options).await
    }

    /// Cluster mode: `JoinReserved`, the seat a `Redirect` reserved here.
    async fn join_reserved(&mut self, reservation: String) -> Result<(), End> {
        let Some(cluster) = self.shared.cluster().cloned() else {
            return self
                .send_error(
                    ErrorCode::ReservationFailed,
                    "this server is not in cluster mode",
                )
                .await;
        };
        let routed = cluster
            .route(
                &self.shared.registry,
                Want::Reserved(reservation),
                &GameOptions::none(),
            )
            .await;
        // The options of the request that reserved the seat, kept by the directory with
        // the reservation: the client never sends them here, so it cannot alter them.
        let options = routed.reserved_options().unwrap_or_default();
        if let Err(problem) = options.check() {
            // Written by a node that checked them: only a foreign writer gets here.
            if let Routed::Local {
                held: Some(held), ..
            }
            | Routed::Create { held: Some(held) }
            | Routed::Open { held, .. } = routed
            {
                cluster.release(held).await;
            }
            return self
                .send_error(ErrorCode::InvalidArgument, problem.to_string())
                .await;
        }
        self.follow(&cluster, routed, options).await
    }

    /// Cluster mode: does what the directory said. A seat the directory holds for this
    /// player is given back at once if the player is not seated (as on a single node,
    /// a join the game refuses leaves the lobby's seat free).
    async fn follow(
        &mut self,
        cluster: &Cluster,
        routed: Routed,
        options: GameOptions,
    ) -> Result<(), End> {
        match routed {
            Routed::Local { handle, held } => {
                let outcome = self
                    .admit(handle, options, held.as_ref().map(|h| (cluster, h)))
                    .await?;
                if let (Err(_), Some(held)) = (&outcome, held) {
                    // Before the answer: a client that retries at once finds the seat.
                    cluster.release(held).await;
                }
                self.answer_join(outcome).await
            }
            Routed::Create { held } => {
                self.create_quick(options).await?;
                if let Some(held) = held {
                    if self.lobby.is_none() {
                        cluster.release(held).await;
                    } else {
                        cluster.seated(&held);
                    }
                }
                Ok(())
            }
            Routed::Open { id, seats, held } => {
                let name = self.quick_lobby_name();
                let outcome = match self
                    .shared
                    .open_pending_lobby(id, name, seats, options.clone())
                {
                    Ok(handle) => self.admit(handle, options, Some((cluster, &held))).await?,
                    Err(refused) => {
                        cluster.release(held).await;
                        return self.send_create_refused(refused).await;
                    }
                };
                if outcome.is_err() {
                    cluster.release(held).await;
                }
                self.answer_join(outcome).await
            }
            Routed::Redirect { url, reservation } => {
                self.send_message(&ServerMessage::Redirect { url, reservation })
                    .await
            }
            Routed::Refused(why) => {
                let (code, text) = match why {
                    ClusterRefusal::NotFound => (ErrorCode::LobbyNotFound, "no such lobby".into()),
                    ClusterRefusal::Full => (ErrorCode::LobbyFull, "the lobby is full".into()),
                    ClusterRefusal::Unavailable => (
                        ErrorCode::ClusterUnavailable,
                        "the lobby is on another node and the cluster directory does not answer; try again shortly".into(),
                    ),
                    ClusterRefusal::Reservation(e) => {
                        (ErrorCode::ReservationFailed, format!("reservation refused: {e}"))
                    }
                };
                self.send_error(code, text).await
            }
            // Redis does not answer: this node alone, as a single node would.
            Routed::Alone => self.quick_join_here(options).await,
        }
    }

    async fn quick_join_here(&mut self, options: GameOptions) -> Result<(), End> {
        // The pick claims its seat at once: a crowd of quick-joins fills lobbies.
        if let Some(claim) = self.shared.registry.quick_claim() {
            match self.try_enter(claim, options.clone()).await? {
                Ok(()) => return Ok(()),
                // The game refused this player: say why rather than make a new lobby.
                Err(JoinRefused::Game(reason)) => {
                    return self.send_error(ErrorCode::JoinRefused, reason).await;
                }
                Err(_) => {}
            }
        }
        self.create_quick(options).await
    }

    /// Creates a lobby for a quick-join and enters it.
    async fn create_quick(&mut self, options: GameOptions) -> Result<(), End> {
        let size = self.shared.config.quick_lobby_size;
        let name = self.quick_lobby_name();
        match self
            .shared
            .create_lobby(name, size, false, options.clone(), self.addr, true)
        {
            Ok(handle) => self.enter(handle, options).await,
            Err(refused) => self.send_create_refused(refused).await,
        }
    }

    /// The name of a lobby QuickJoin opens.
    fn quick_lobby_name(&self) -> String {
        format!(
            "{} {}",
            self.shared.game.schema().game,
            self.shared.registry.len() + 1
        )
    }

    /// Joins `handle`, telling the client if it cannot.
    async fn enter(&mut self, handle: Arc<LobbyHandle>, options: GameOptions) -> Result<(), End> {
        let outcome = self.admit(handle, options, None).await?;
        self.answer_join(outcome).await
    }

    /// Claims a seat in `handle` and takes it; says nothing to the client. Cluster mode,
    /// `held`: the directory's hold on the seat, noted as counted once the claim is in
    /// the lobby's count (the next renewal publishes the claim and drops the hold
    /// together, so the seat is counted neither twice nor not at all).
    async fn admit(
        &mut self,
        handle: Arc<LobbyHandle>,
        options: GameOptions,
        held: Option<(&Cluster, &Held)>,
    ) -> Result<Result<(), JoinRefused>, End> {
        match handle.claim() {
            Some(claim) => {
                if let Some((cluster, held)) = held {
                    cluster.seated(held);
                }
                self.try_enter(claim, options).await
            }
            None if handle.is_closed() => Ok(Err(JoinRefused::Closed)),
            None => Ok(Err(JoinRefused::Full)),
        }
    }

    /// Tells the client why a join failed (nothing if it succeeded: `Joined` went out).
    async fn answer_join(&mut self, outcome: Result<(), JoinRefused>) -> Result<(), End> {
        match outcome {
            Ok(()) => Ok(()),
            Err(JoinRefused::Full) => {
                self.send_error(ErrorCode::LobbyFull, "the lobby is full")
                    .await
            }
            Err(JoinRefused::Closed) => {
                self.send_error(ErrorCode::LobbyNotFound, "the lobby has closed")
                    .await
            }
            Err(JoinRefused::Game(reason)) => self.send_error(ErrorCode::JoinRefused, reason).await,
        }
    }

    /// Takes the claimed seat: the lobby's tick task seats the player.
    async fn try_enter(
        &mut self,
        claim: Claim,
        options: GameOptions,
    ) -> Result<Result<(), JoinRefused>, End> {
        let Some(player) = self.player.clone() else {
            return Err(invalid_state("Hello first"));
        };
        let handle = Arc::clone(claim.lobby());
        let (epoch, join) = self.join_request(&player, options);
        match claim.join(join).await {
            Ok(seated) => {
                self.seat(handle, seated, epoch);
                Ok(Ok(()))
            }
            Err(refused) => {
                // The lobby must write nothing for a seat it refused.
                self.out.end_seat(Some(epoch));
                Ok(Err(refused))
            }
        }
    }

    /// A join request for `player` on a new seat epoch of this connection's outbox.
    fn join_request(&self, player: &PlayerRecord, options: GameOptions) -> (u64, JoinRequest) {
        let epoch = self.out.begin_seat();
        let link = Link {
            out: Arc::clone(&self.out),
            epoch,
        };
        let join = JoinRequest {
            player_id: player.player_id,
            name: player.name.clone(),
            options,
            conn: self.conn,
            link,
        };
        (epoch, join)
    }

    fn seat(&mut self, handle: Arc<LobbyHandle>, seated: Seated, epoch: u64) {
        info!(parent: &self.span, lobby = handle.id(), seat = seated.seat, "in lobby");
        if let Some(player) = &self.player {
            player.set_lobby(Some((Arc::clone(&handle), seated.seat)));
        }
        self.lobby = Some(InLobby {
            handle,
            seat: seated.mailbox,
            codec: seated.codec,
            epoch,
        });
        self.joined_once = true;
    }

    async fn send_error(&mut self, code: ErrorCode, message: impl Into<String>) -> Result<(), End> {
        self.send_message(&ServerMessage::error(code, message))
            .await
    }

    async fn send_message(&mut self, message: &ServerMessage) -> Result<(), End> {
        self.send_bytes(Bytes::from(encode_server(message))).await
    }

    async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), End> {
        let len = bytes.len() as u64;
        self.send_ws(Message::Binary(bytes)).await?;
        self.shared
            .stats
            .bytes_out
            .fetch_add(len, Ordering::Relaxed);
        if let Some(player) = &self.player {
            player.bytes_out.fetch_add(len, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn send_ws(&mut self, message: Message) -> Result<(), End> {
        let sent = timeout(self.shared.config.write_timeout, self.ws.send(message)).await;
        self.written(sent)
    }

    /// Finishes writing what the socket did not take at once (lobby frames, mostly).
    async fn flush_out(&mut self) -> Result<(), End> {
        let out = &self.out;
        let flushed = timeout(
            self.shared.config.write_timeout,
            std::future::poll_fn(|cx| out.poll_flush(cx)),
        )
        .await;
        self.written(flushed)
    }

    /// The end of a write bounded by `--write-timeout`: a failed or timed-out write drops
    /// the client (it may resume).
    fn written<E: std::fmt::Display>(
        &self,
        result: Result<Result<(), E>, tokio::time::error::Elapsed>,
    ) -> Result<(), End> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!(parent: &self.span, error = %e, "write failed");
                Err(End::dropped())
            }
            Err(_) => {
                info!(parent: &self.span, "client accepted nothing for the write timeout; dropping it");
                self.shared
                    .stats
                    .write_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                Err(End::dropped())
            }
        }
    }

    /// Sends a close frame and waits briefly for the client's, so that what was sent
    /// before it (the error message) is not lost to a reset. If the client is still
    /// sending (a flood, an oversized frame), what it sends is read and discarded
    /// meanwhile: closing a socket with unread data would reset it, and the client would
    /// never see why it was cut off.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let linger = async {
            let _ = self.ws.close(Some(frame)).await;
            loop {
                match self.ws.next().await {
                    Some(Ok(_)) => {}
                    // The client answered the close: done.
                    None => return,
                    // The stream is past reading frames (an oversized or broken one).
                    Some(Err(_)) => break,
                }
            }
            let mut discard = [0u8; 4096];
            while let Ok(1..) = self.ws.get_mut().read(&mut discard).await {}
        };
        let _ = timeout(CLOSE_LINGER, linger).await;
    }
}

fn is_lobby_op(message: &ClientMessage) -> bool {
    matches!(
        message,
        ClientMessage::ListLobbies
            | ClientMessage::CreateLobby { .. }
            | ClientMessage::JoinLobby { .. }
            | ClientMessage::QuickJoin { .. }
            | ClientMessage::JoinReserved { .. }
            | ClientMessage::LeaveLobby
    )
}

/// A game frame the lobby's schema could not decode: `BadMessage`, then close 1002.
fn undecodable_frame(what: &str, reason: &'static str, e: &dyn std::fmt::Display) -> End {
    End::close(
        ErrorCode::BadMessage,
        format!("the {what} could not be decoded by the lobby's schema: {e}"),
        close::PROTOCOL_ERROR,
        reason,
    )
}

fn invalid_state(message: &str) -> End {
    End::close(
        ErrorCode::InvalidState,
        message,
        close::PROTOCOL_ERROR,
        "message not valid now",
    )
}

fn address_full() -> End {
    End::close(
        ErrorCode::ServerFull,
        "too many connections from your address",
        close::POLICY_VIOLATION,
        "too many connections from this address",
    )
}

fn rate_limited(message: &str) -> End {
    End::close(
        ErrorCode::RateLimited,
        message,
        close::POLICY_VIOLATION,
        "rate limit",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection holds its session's future for its whole life: the rare paths
    /// (lobby requests, Hello, controls, closing) are boxed so that it stays small.
    #[tokio::test]
    async fn a_session_future_stays_small() {
        let game = crate::games::BuiltinGame::Arena
            .factory()
            .expect("arena's schema is valid");
        let shared = Shared::new(crate::Config::default(), game);
        let (server, _client) = tokio::io::duplex(64);
        let conn = crate::wire::outbox::any(server);
        let ws = WebSocketStream::from_raw_socket(
            conn,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let slot = shared.admit(peer.ip()).expect("admitted");
        let session = run(ws, peer, Arc::clone(&shared), Arc::new(slot), None);
        let size = std::mem::size_of_val(&session);
        assert!(size <= 3 * 1024, "the session future is {size} bytes");
    }
}
