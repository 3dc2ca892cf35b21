//! One task per WebSocket connection: the session.
//!
//! It owns the socket and `select!`s, in priority order, over server shutdown, its lobby
//! (must-arrive events first, then the newest tick frame) and the client's next message.
//! The socket is not split: one task both reads and writes, so a tick costs one wake-up
//! and one write per player, and the read half needs no lock. `next()` is cancel-safe, so
//! losing a `select!` round to a frame loses no input.
//!
//! A client that reads slowly makes `send` wait; meanwhile newer frames replace older
//! ones in the lobby's `watch` channel, so the session skips to the newest snapshot
//! (counted) and never queues. A client that accepts nothing for `--write-timeout` is
//! dropped.
//!
//! A client closing, resetting or sending garbage is a normal end: logged once, never a
//! panic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use glam::Vec2;
use ticksync_protocol::limits::{
    MAX_LOBBY_NAME_BYTES, MAX_PLAYER_NAME_BYTES, NameProblem, check_name,
};
use ticksync_protocol::{
    ClientMessage, ErrorCode, Input, JoinTarget, LeftReason, PROTOCOL_VERSION, ServerMessage,
    SessionToken, close, decode_client, encode_server,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{Instrument, debug, field, info, info_span};

use crate::Shared;
use crate::broadcast::TickFrame;
use crate::lobby::{EVENT_QUEUE, InputMsg, JoinRefused, LobbyCommand, LobbyHandle};

/// How long a join may wait for the lobby's tick task (it answers within one tick).
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);
/// After sending a close frame, how long to wait for the client's.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Quick-join tries this many existing lobbies before it creates one.
const QUICK_JOIN_TRIES: usize = 3;

/// Runs a session to its end.
pub(crate) async fn run<S>(ws: WebSocketStream<S>, peer: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let span = info_span!("session", %peer, player_id = field::Empty);
    let session = Session {
        shared,
        ws,
        player: None,
        lobby: None,
        joined_once: false,
        scratch: BytesMut::with_capacity(256),
    };
    session.run().instrument(span).await;
}

/// How a session ends.
#[derive(Debug)]
enum End {
    /// The client closed or the connection dropped: nothing more to send.
    Gone,
    /// Send this error (if any), then close with this code and reason.
    Close {
        error: Option<(ErrorCode, String)>,
        code: u16,
        reason: &'static str,
    },
}

impl End {
    fn close(
        error: ErrorCode,
        message: impl Into<String>,
        code: u16,
        reason: &'static str,
    ) -> Self {
        End::Close {
            error: Some((error, message.into())),
            code,
            reason,
        }
    }
}

struct Player {
    id: u32,
    name: String,
}

struct InLobby {
    handle: Arc<LobbyHandle>,
    entity: u8,
    /// Frames before this tick do not include the player's entity.
    join_tick: u32,
    events: mpsc::Receiver<Bytes>,
    frames: watch::Receiver<Arc<TickFrame>>,
    last_tick: Option<u32>,
}

enum FromLobby {
    Event(Bytes),
    Frame,
    Gone,
}

struct Session<S> {
    shared: Arc<Shared>,
    ws: WebSocketStream<S>,
    player: Option<Player>,
    lobby: Option<InLobby>,
    /// Inputs after leaving a lobby are in-flight leftovers, not a protocol violation.
    joined_once: bool,
    scratch: BytesMut,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn run(mut self) {
        self.shared
            .stats
            .sessions_open
            .fetch_add(1, Ordering::Relaxed);
        let end = self.main_loop().await;
        self.lobby = None;
        match end {
            End::Gone => debug!("client gone"),
            End::Close {
                error,
                code,
                reason,
            } => {
                info!(code, reason, "closing session");
                if let Some((error, message)) = error {
                    let _ = self
                        .send_message(&ServerMessage::error(error, message))
                        .await;
                }
                self.close(code, reason).await;
            }
        }
        self.shared
            .stats
            .sessions_open
            .fetch_sub(1, Ordering::Relaxed);
    }

    async fn main_loop(&mut self) -> End {
        let cancel = self.shared.cancel.clone();
        let hello_deadline = tokio::time::sleep(self.shared.config.hello_timeout);
        tokio::pin!(hello_deadline);
        loop {
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    return End::close(ErrorCode::ShuttingDown, "the server is shutting down",
                                      close::GOING_AWAY, "server shutting down");
                }
                from_lobby = next_from_lobby(&mut self.lobby) => self.on_lobby(from_lobby).await,
                message = self.ws.next() => match message {
                    None => Err(End::Gone),
                    Some(message) => self.on_frame(message).await,
                },
                () = &mut hello_deadline, if self.player.is_none() => {
                    return End::close(ErrorCode::Timeout, "no Hello in time",
                                      close::HELLO_TIMEOUT, "hello timeout");
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn on_lobby(&mut self, from: FromLobby) -> Result<(), End> {
        match from {
            FromLobby::Event(bytes) => self.send_bytes(bytes).await,
            FromLobby::Frame => {
                let Some(lobby) = self.lobby.as_mut() else {
                    return Ok(());
                };
                let frame = Arc::clone(&lobby.frames.borrow_and_update());
                if frame.body.is_empty() || frame.tick < lobby.join_tick {
                    return Ok(());
                }
                if let Some(last) = lobby.last_tick {
                    let skipped = frame.tick.saturating_sub(last).saturating_sub(1);
                    if skipped > 0 {
                        self.shared
                            .stats
                            .snapshots_skipped
                            .fetch_add(u64::from(skipped), Ordering::Relaxed);
                    }
                }
                lobby.last_tick = Some(frame.tick);
                let bytes = frame.message_for(lobby.entity, &mut self.scratch);
                self.shared
                    .stats
                    .snapshots_sent
                    .fetch_add(1, Ordering::Relaxed);
                self.send_bytes(bytes).await
            }
            FromLobby::Gone => {
                // The lobby closed or dropped us. Pass on what it still had to say.
                let mut lobby = self.lobby.take();
                let mut said_left = false;
                if let Some(lobby) = lobby.as_mut() {
                    while let Ok(bytes) = lobby.events.try_recv() {
                        said_left |= bytes.first() == Some(&LEFT_TAG);
                        self.send_bytes(bytes).await?;
                    }
                }
                if !said_left {
                    // Dropped for falling behind: the lobby could not queue more events.
                    return Err(End::close(
                        ErrorCode::Internal,
                        "too far behind to follow the lobby",
                        close::SLOW_CONSUMER,
                        "slow consumer",
                    ));
                }
                Ok(())
            }
        }
    }

    async fn on_frame(&mut self, message: Result<Message, WsError>) -> Result<(), End> {
        match message {
            Ok(Message::Binary(bytes)) => match decode_client(&bytes) {
                Ok(message) => self.on_message(message).await,
                Err(e) => Err(End::close(
                    ErrorCode::BadMessage,
                    format!("undecodable message: {e}"),
                    close::PROTOCOL_ERROR,
                    "undecodable message",
                )),
            },
            Ok(Message::Text(_)) => Err(End::close(
                ErrorCode::TextFrame,
                "text frames are not supported; send binary messages",
                close::UNSUPPORTED_DATA,
                "text frame",
            )),
            Ok(Message::Close(_)) => Err(End::Gone),
            // Pings are answered by tungstenite; pongs and raw frames need nothing.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(()),
            Err(WsError::Capacity(e)) => Err(End::close(
                ErrorCode::MessageTooLarge,
                format!("message too large: {e}"),
                close::MESSAGE_TOO_BIG,
                "message too large",
            )),
            Err(WsError::Protocol(e)) => {
                debug!(error = %e, "websocket protocol error");
                Err(End::Close {
                    error: None,
                    code: close::PROTOCOL_ERROR,
                    reason: "websocket protocol error",
                })
            }
            Err(e) => {
                debug!(error = %e, "connection error");
                Err(End::Gone)
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
        let player_id = player.id;
        match message {
            ClientMessage::Hello { .. } => Err(invalid_state("Hello was already sent")),
            ClientMessage::Input(input) => {
                self.input(player_id, input);
                if self.lobby.is_none() && !self.joined_once {
                    return Err(invalid_state("Input before joining a lobby"));
                }
                Ok(())
            }
            ClientMessage::Ping { client_time } => {
                let server_tick = self
                    .lobby
                    .as_ref()
                    .map_or(0, |l| l.handle.frames.borrow().tick);
                self.send_message(&ServerMessage::Pong {
                    client_time,
                    server_tick,
                })
                .await
            }
            ClientMessage::ListLobbies => {
                let lobbies = self.shared.registry.list_public();
                self.send_message(&ServerMessage::LobbyList { lobbies })
                    .await
            }
            ClientMessage::LeaveLobby => {
                // Dropping the event queue tells the lobby; it removes the player at its
                // next tick. Idempotent: leaving when not in a lobby just confirms it.
                self.lobby = None;
                self.send_message(&ServerMessage::Left {
                    reason: LeftReason::Requested as u8,
                })
                .await
            }
            ClientMessage::CreateLobby { .. }
            | ClientMessage::JoinLobby { .. }
            | ClientMessage::QuickJoin
                if self.lobby.is_some() =>
            {
                Err(invalid_state("already in a lobby; send LeaveLobby first"))
            }
            ClientMessage::CreateLobby {
                name,
                max_players,
                private,
            } => self.create(&name, max_players, private).await,
            ClientMessage::JoinLobby { target } => self.join_target(target).await,
            ClientMessage::QuickJoin => self.quick_join().await,
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
        let name = match check_name(name, MAX_PLAYER_NAME_BYTES) {
            Ok(name) => name.to_owned(),
            // The client may correct the name and say Hello again.
            Err(problem) => return self.send_name_error(problem, "player").await,
        };
        if resume_token.is_some() {
            self.send_message(&ServerMessage::error(
                ErrorCode::ResumeFailed,
                "unknown or expired session token; starting a new session",
            ))
            .await?;
        }
        let id = self.shared.next_player_id();
        let mut session_token = [0u8; 16];
        getrandom::fill(&mut session_token).map_err(|_| {
            End::close(
                ErrorCode::Internal,
                "no randomness",
                close::INTERNAL_ERROR,
                "internal error",
            )
        })?;
        tracing::Span::current().record("player_id", id);
        info!(name = %name, "player connected");
        self.player = Some(Player { id, name });
        self.send_message(&ServerMessage::Welcome {
            player_id: id,
            session_token,
            tick_rate: self.shared.config.tick_rate,
            protocol_version: PROTOCOL_VERSION,
        })
        .await
    }

    async fn send_name_error(&mut self, problem: NameProblem, what: &str) -> Result<(), End> {
        let text = match problem {
            NameProblem::Empty => format!("the {what} name is empty"),
            NameProblem::TooLong => format!("the {what} name is too long"),
            NameProblem::ControlCharacter => format!("the {what} name has a control character"),
        };
        self.send_message(&ServerMessage::error(ErrorCode::InvalidName, text))
            .await
    }

    fn input(&mut self, player_id: u32, input: Input) {
        let Some(lobby) = &self.lobby else {
            return;
        };
        let input = sanitize(input);
        let msg = InputMsg {
            entity: lobby.entity,
            player_id,
            input,
        };
        if lobby.handle.inputs.try_send(msg).is_err() {
            lobby
                .handle
                .stats
                .inputs_dropped_full
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn create(&mut self, name: &str, max_players: u8, private: bool) -> Result<(), End> {
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
        match self.shared.create_lobby(name, max_players, private) {
            Ok(handle) => self.enter(handle).await,
            Err(message) => self.send_error(ErrorCode::ServerFull, message).await,
        }
    }

    async fn join_target(&mut self, target: JoinTarget) -> Result<(), End> {
        let registry = &self.shared.registry;
        let handle = match &target {
            // Private lobbies are reached by code only: ids are sequential, codes are not.
            JoinTarget::Id(id) => registry.get(*id).filter(|h| !h.private),
            JoinTarget::Code(code) => registry.by_code(code),
        };
        match handle {
            Some(handle) => self.enter(handle).await,
            None => {
                self.send_error(ErrorCode::LobbyNotFound, "no such lobby")
                    .await
            }
        }
    }

    async fn quick_join(&mut self) -> Result<(), End> {
        let mut tried = Vec::new();
        while tried.len() < QUICK_JOIN_TRIES {
            let Some(handle) = self.shared.registry.quick_pick(&tried) else {
                break;
            };
            tried.push(handle.id);
            match self.try_enter(Arc::clone(&handle)).await? {
                Ok(()) => return Ok(()),
                // Filled or closed since we looked: try another.
                Err(_) => continue,
            }
        }
        let size = self.shared.config.quick_lobby_size;
        let id_hint = self.shared.registry.len() + 1;
        match self
            .shared
            .create_lobby(format!("Arena {id_hint}"), size, false)
        {
            Ok(handle) => self.enter(handle).await,
            Err(message) => self.send_error(ErrorCode::ServerFull, message).await,
        }
    }

    /// Joins `handle`, telling the client if it cannot.
    async fn enter(&mut self, handle: Arc<LobbyHandle>) -> Result<(), End> {
        match self.try_enter(handle).await? {
            Ok(()) => Ok(()),
            Err(JoinRefused::Full) => {
                self.send_error(ErrorCode::LobbyFull, "the lobby is full")
                    .await
            }
            Err(JoinRefused::Closed) => {
                self.send_error(ErrorCode::LobbyNotFound, "the lobby has closed")
                    .await
            }
        }
    }

    async fn try_enter(
        &mut self,
        handle: Arc<LobbyHandle>,
    ) -> Result<Result<(), JoinRefused>, End> {
        let Some(player) = &self.player else {
            return Err(invalid_state("Hello first"));
        };
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (reply_tx, reply) = oneshot::channel();
        let command = LobbyCommand::Join {
            player_id: player.id,
            name: player.name.clone(),
            events: events_tx,
            reply: reply_tx,
        };
        let sent = timeout(JOIN_TIMEOUT, handle.commands.send(command)).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Ok(Err(JoinRefused::Closed));
        }
        let seated = match timeout(JOIN_TIMEOUT, reply).await {
            Ok(Ok(Ok(seated))) => seated,
            Ok(Ok(Err(refused))) => return Ok(Err(refused)),
            _ => return Ok(Err(JoinRefused::Closed)),
        };
        info!(lobby = handle.id, entity = seated.entity, "joined lobby");
        let frames = handle.frames.clone();
        self.lobby = Some(InLobby {
            handle,
            entity: seated.entity,
            join_tick: seated.tick,
            events,
            frames,
            last_tick: None,
        });
        self.joined_once = true;
        Ok(Ok(()))
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
        match timeout(
            self.shared.config.write_timeout,
            self.ws.send(Message::Binary(bytes)),
        )
        .await
        {
            Ok(Ok(())) => {
                self.shared
                    .stats
                    .bytes_out
                    .fetch_add(len, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => {
                debug!(error = %e, "write failed");
                Err(End::Gone)
            }
            Err(_) => {
                info!("client accepted nothing for the write timeout; dropping it");
                Err(End::Gone)
            }
        }
    }

    /// Sends a close frame and waits briefly for the client's, so that what was sent
    /// before it (the error message) is not lost to a reset.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let linger = async {
            if self.ws.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        };
        let _ = timeout(CLOSE_LINGER, linger).await;
    }
}

/// Wire tag of `ServerMessage::Left`.
const LEFT_TAG: u8 = 8;

fn invalid_state(message: &str) -> End {
    End::close(
        ErrorCode::InvalidState,
        message,
        close::PROTOCOL_ERROR,
        "message not valid now",
    )
}

/// Makes an input safe for any game: a non-finite direction becomes zero, a direction
/// longer than 1 is scaled to length 1.
pub(crate) fn sanitize(mut input: Input) -> Input {
    let dir = Vec2::new(input.dir_x, input.dir_y);
    let dir = if dir.is_finite() {
        dir.clamp_length_max(1.0)
    } else {
        Vec2::ZERO
    };
    input.dir_x = dir.x;
    input.dir_y = dir.y;
    input
}

async fn next_from_lobby(lobby: &mut Option<InLobby>) -> FromLobby {
    let Some(lobby) = lobby else {
        return std::future::pending().await;
    };
    tokio::select! {
        biased;
        event = lobby.events.recv() => event.map_or(FromLobby::Gone, FromLobby::Event),
        changed = lobby.frames.changed() => match changed {
            Ok(()) => FromLobby::Frame,
            Err(_) => FromLobby::Gone,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_sanitized() {
        let i = |x, y| Input {
            seq: 1,
            dir_x: x,
            dir_y: y,
            buttons: 0,
        };
        let s = sanitize(i(f32::NAN, 1.0));
        assert_eq!((s.dir_x, s.dir_y), (0.0, 0.0));
        let s = sanitize(i(f32::INFINITY, 0.0));
        assert_eq!((s.dir_x, s.dir_y), (0.0, 0.0));
        let s = sanitize(i(3.0, 4.0));
        assert!((s.dir_x - 0.6).abs() < 1e-6 && (s.dir_y - 0.8).abs() < 1e-6);
        let s = sanitize(i(0.5, 0.0));
        assert_eq!((s.dir_x, s.dir_y), (0.5, 0.0));
    }

    #[test]
    fn left_tag_matches_the_codec() {
        let bytes = encode_server(&ServerMessage::Left { reason: 0 });
        assert_eq!(bytes[0], LEFT_TAG);
    }
}
