//! A small async ticksync client: one WebSocket connection speaking the real protocol.
//! The integration tests and the bots both use it, so the protocol is written once on
//! the client side too.
//!
//! - [`Client`]: tokio-tungstenite's general client, for tests that need every message
//!   decoded and any frame sent, valid or not. It decodes any game by the schema its
//!   `Joined` carries: snapshots are applied to a [`ClientState`], events decoded, and
//!   inputs and game messages encoded by the schema (typed, or from dynamic values).
//! - [`lean::LeanClient`]: a cut-down WebSocket client for the bots, whose receive path
//!   neither allocates nor copies, with [`peek_snapshot_head`] to read a snapshot's
//!   acknowledgement and tick without decoding its entities.

mod head;
pub mod lean;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ticksync_protocol::codec::is_game_frame;
use ticksync_protocol::limits::MAX_SERVER_MESSAGE_BYTES;
use ticksync_protocol::schema::{Fields, Messages, Schema};
use ticksync_protocol::state::io::{self, EVENT_TAG};
pub use ticksync_protocol::state::{ClientState, PlayerRef, Value};
use ticksync_protocol::state::{Codec, SNAPSHOT_TAG};
use ticksync_protocol::{
    ClientMessage, CodecError, ErrorCode, GameOptions, Joined, PROTOCOL_VERSION, ServerMessage,
    SessionToken, close, decode_server, encode_client,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use crate::head::{SnapshotHead, peek_snapshot_head};

/// What can go wrong on a client connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket failed (connect, read or write).
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server sent bytes that are not a message.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// A game frame did not decode by the lobby's schema (or came outside a lobby).
    #[error("game frame: {0}")]
    Frame(String),
    /// The server closed the connection (code [`close::local::NO_CLOSE_CODE`] when it
    /// gave none, [`close::local::CONNECTION_LOST`] when the connection just ended).
    #[error("closed by the server: {code} {reason}")]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The server sent an `Error` where an answer was expected.
    #[error("server error {code}: {message}")]
    Server {
        /// The error code.
        code: u16,
        /// Its text.
        message: String,
    },
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// The server sent something the caller did not expect.
    #[error("unexpected message: {0}")]
    Unexpected(String),
    /// The WebSocket upgrade failed (the lean client's own handshake).
    #[error("handshake: {0}")]
    Handshake(String),
    /// A socket error (the lean client).
    #[error("io: {0}")]
    Io(#[source] std::io::Error),
    /// The server broke the WebSocket protocol (the lean client).
    #[error("websocket protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether this is a lost connection worth reconnecting for (a reset, a timeout, the
    /// server restarting), as opposed to the server refusing the client (a protocol
    /// error, a kick, a newer connection of the same session, a version mismatch), which
    /// reconnecting would only repeat.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            ClientError::Closed { code, .. } => !close::is_final(*code),
            ClientError::Ws(_) | ClientError::Io(_) | ClientError::Timeout => true,
            _ => false,
        }
    }
}

/// Reconnection delays: 0.5 s doubling up to 8 s, each with up to ±25% jitter so that a
/// crowd of clients cut off together does not come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    seed: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.subsec_nanos().into());
        Self {
            next: Duration::from_millis(500),
            max: Duration::from_secs(8),
            seed: seed | 1,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        // xorshift: good enough for jitter.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = 0.75 + (self.seed % 1000) as f64 / 2000.0;
        let delay = self.next.mul_f64(jitter);
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// What a message means to a client waiting for `Welcome`: the welcome, `None` for a
/// failed-resume notice (a new session's `Welcome` follows), or an error.
pub(crate) fn expect_welcome(message: ServerMessage) -> Option<Result<Welcome, ClientError>> {
    match message {
        ServerMessage::Welcome {
            player_id,
            session_token,
            tick_rate,
            ..
        } => Some(Ok(Welcome {
            player_id,
            session_token,
            tick_rate,
        })),
        ServerMessage::Error { code, .. } if code == ErrorCode::ResumeFailed.as_u16() => None,
        ServerMessage::Error { code, message } => Some(Err(ClientError::Server { code, message })),
        other => Some(Err(ClientError::Unexpected(format!("{other:?}")))),
    }
}

/// `Welcome`'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// The player's id.
    pub player_id: u32,
    /// The resume token.
    pub session_token: SessionToken,
    /// The server's tick rate.
    pub tick_rate: u16,
}

/// A snapshot [`Client::recv`] applied to the client's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its tick.
    pub tick: u32,
    /// The last input of this player the server had applied.
    pub ack_seq: u32,
    /// A full snapshot (not a delta).
    pub full: bool,
    /// Its size in bytes.
    pub bytes: usize,
}

/// A game event [`Client::recv`] decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInfo {
    /// The tick it was sent at.
    pub tick: u32,
    /// Its type index.
    pub index: usize,
    /// Its type's name in the schema.
    pub name: String,
    /// Its fields: (name, value) in field order.
    pub fields: Vec<(String, Value)>,
}

impl EventInfo {
    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// What [`Client::recv`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A control message.
    Message(ServerMessage),
    /// A snapshot, applied to [`Client::state`].
    Snapshot(SnapshotInfo),
    /// A game event.
    Event(EventInfo),
}

impl Incoming {
    /// The control message, if it is one.
    pub fn message(&self) -> Option<&ServerMessage> {
        match self {
            Incoming::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The snapshot, if it is one.
    pub fn snapshot(&self) -> Option<SnapshotInfo> {
        match self {
            Incoming::Snapshot(s) => Some(*s),
            _ => None,
        }
    }
}

/// One connection to a ticksync server.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    bytes_in: u64,
    bytes_out: u64,
    /// The game state, from the last `Joined` on.
    state: Option<ClientState>,
    deltas_received: u64,
    /// The name of the last `Hello`: said again to a node a `Redirect` sends us to.
    name: Option<String>,
    /// The last `Welcome` (a redirect brings a new one, from the other node).
    welcome: Option<Welcome>,
    /// Redirects followed (cluster mode).
    redirects: u32,
}

/// Most redirects one request follows (a node never sends a player on twice; this only
/// bounds a misconfigured cluster).
const MAX_REDIRECTS: u32 = 3;

impl Client {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8080/ws`).
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_SERVER_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_SERVER_MESSAGE_BYTES));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        Ok(Self {
            ws,
            bytes_in: 0,
            bytes_out: 0,
            state: None,
            deltas_received: 0,
            name: None,
            welcome: None,
            redirects: 0,
        })
    }

    /// The last `Welcome`: after a followed redirect, the other node's (its player id
    /// and session token).
    pub fn welcome(&self) -> Option<Welcome> {
        self.welcome
    }

    /// Redirects this client followed to another node (cluster mode).
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// Cluster mode: moves this client to the node at `url` (the old connection is
    /// closed), says `Hello` there with the same name (and `resume_token`), and, for a
    /// seat reservation, sends `JoinReserved` and waits for `Joined`.
    async fn follow(
        &mut self,
        url: &str,
        reservation: &str,
        resume_token: Option<SessionToken>,
    ) -> Result<Option<Joined>, ClientError> {
        if self.redirects >= MAX_REDIRECTS {
            return Err(ClientError::Unexpected("too many redirects".into()));
        }
        let name = self
            .name
            .clone()
            .ok_or_else(|| ClientError::Unexpected("a redirect before Hello".into()))?;
        let mut next = Client::connect(url).await?;
        next.redirects = self.redirects + 1;
        let old = std::mem::replace(self, next);
        old.close().await;
        self.hello_with(PROTOCOL_VERSION, &name, resume_token)
            .await?;
        if reservation.is_empty() {
            return Ok(None);
        }
        self.send(&ClientMessage::JoinReserved {
            reservation: reservation.to_owned(),
        })
        .await?;
        self.wait_joined().await.map(Some)
    }

    /// Sends a message.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        self.send_raw(Message::Binary(Bytes::from(encode_client(message))))
            .await
    }

    /// Sends any WebSocket message, valid or not (tests of bad input use this).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.bytes_out += message.len() as u64;
        self.ws.send(message).await?;
        Ok(())
    }

    /// The game state (the lobby's schema, this player's seat, what the snapshots said),
    /// from the last `Joined` on.
    pub fn state(&self) -> Option<&ClientState> {
        self.state.as_ref()
    }

    /// The lobby's compiled schema.
    pub fn codec(&self) -> Option<&Codec> {
        self.state.as_ref().map(ClientState::codec)
    }

    fn codec_or_err(&self) -> Result<&Codec, ClientError> {
        self.codec()
            .ok_or_else(|| ClientError::Frame("not in a lobby: no schema".into()))
    }

    /// Sends an input, encoded by the lobby's schema.
    pub async fn send_input<T: Fields>(
        &mut self,
        seq: u32,
        client_tick: u32,
        input: &T,
    ) -> Result<(), ClientError> {
        let mut bytes = Vec::new();
        io::encode_input(self.codec_or_err()?, seq, client_tick, input, &mut bytes);
        self.send_raw(Message::Binary(Bytes::from(bytes))).await
    }

    /// Sends an input from dynamic values (in the input's field order).
    pub async fn send_input_values(
        &mut self,
        seq: u32,
        client_tick: u32,
        values: &[Value],
    ) -> Result<(), ClientError> {
        let mut bytes = Vec::new();
        io::encode_input_values(self.codec_or_err()?, seq, client_tick, values, &mut bytes);
        self.send_raw(Message::Binary(Bytes::from(bytes))).await
    }

    /// Sends a game message, encoded by the lobby's schema.
    pub async fn send_game_message<M: Messages>(&mut self, message: &M) -> Result<(), ClientError> {
        let mut bytes = Vec::new();
        if !io::encode_message(self.codec_or_err()?, message, &mut bytes) {
            return Err(ClientError::Frame(
                "the schema has no such message type".into(),
            ));
        }
        self.send_raw(Message::Binary(Bytes::from(bytes))).await
    }

    /// Sends a game message of type `index` from dynamic values.
    pub async fn send_game_message_values(
        &mut self,
        index: usize,
        values: &[Value],
    ) -> Result<(), ClientError> {
        let mut bytes = Vec::new();
        if !io::encode_message_values(self.codec_or_err()?, index, values, &mut bytes) {
            return Err(ClientError::Frame(format!("no message type {index}")));
        }
        self.send_raw(Message::Binary(Bytes::from(bytes))).await
    }

    /// Receives the next binary message's bytes, skipping pings and pongs.
    pub async fn recv_bytes(&mut self) -> Result<Bytes, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    self.bytes_in += bytes.len() as u64;
                    return Ok(bytes);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(f) => ClientError::Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                        None => ClientError::Closed {
                            code: close::local::NO_CLOSE_CODE,
                            reason: String::new(),
                        },
                    });
                }
                Some(Ok(Message::Text(t))) => {
                    return Err(ClientError::Unexpected(format!("text frame {t}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => {
                    return Err(ClientError::Closed {
                        code: close::local::CONNECTION_LOST,
                        reason: "connection dropped".into(),
                    });
                }
            }
        }
    }

    /// Receives and decodes the next message: a snapshot is applied to
    /// [`Client::state`] (a delta to the snapshot before it), an event decoded by the
    /// schema; a `Joined` sets up the state from its schema.
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        let bytes = self.recv_bytes().await?;
        self.decode(&bytes)
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<Incoming, ClientError> {
        if !is_game_frame(bytes) {
            let message = decode_server(bytes)?;
            if let ServerMessage::Joined(joined) = &message {
                self.state = Some(state_for(joined)?);
            }
            return Ok(Incoming::Message(message));
        }
        let Some(state) = self.state.as_mut() else {
            return Err(ClientError::Frame("a game frame before Joined".into()));
        };
        match bytes[0] {
            SNAPSHOT_TAG => {
                let applied = state
                    .apply(bytes)
                    .map_err(|e| ClientError::Frame(e.to_string()))?;
                let info = SnapshotInfo {
                    tick: applied.tick,
                    ack_seq: applied.ack_seq,
                    full: applied.full,
                    bytes: bytes.len(),
                };
                if !info.full {
                    self.deltas_received += 1;
                }
                Ok(Incoming::Snapshot(info))
            }
            EVENT_TAG => {
                let codec = state.codec();
                let event = io::decode_event(codec, bytes)
                    .map_err(|e| ClientError::Frame(e.to_string()))?;
                let row = codec
                    .event_row(event.index)
                    .ok_or_else(|| ClientError::Frame("unknown event type".into()))?;
                let fields = row
                    .fields()
                    .iter()
                    .map(|f| f.name.clone())
                    .zip(event.row.values(row))
                    .collect();
                Ok(Incoming::Event(EventInfo {
                    tick: event.tick,
                    index: event.index,
                    name: row.name().to_owned(),
                    fields,
                }))
            }
            tag => Err(ClientError::Frame(format!("unknown game frame tag {tag}"))),
        }
    }

    /// Asks for delta snapshots (true, the default) or full ones (`Options`).
    pub async fn set_deltas(&mut self, on: bool) -> Result<(), ClientError> {
        self.send(&ClientMessage::Options {
            delta_snapshots: on,
        })
        .await
    }

    /// How many delta snapshots [`Client::recv`] has applied.
    pub fn deltas_received(&self) -> u64 {
        self.deltas_received
    }

    /// Receives within `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Incoming, ClientError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Receives until `pick` returns `Some`, within `limit`; other messages are dropped.
    pub async fn recv_until<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&Incoming) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.recv_timeout(left).await?;
            if let Some(found) = pick(&message) {
                return Ok(found);
            }
        }
    }

    /// Receives until `pick` returns `Some` for a control message, within `limit`; other
    /// messages (and every snapshot and event, still applied) are dropped.
    pub async fn recv_message_until<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> Result<T, ClientError> {
        self.recv_until(limit, |incoming| match incoming {
            Incoming::Message(m) => pick(m),
            _ => None,
        })
        .await
    }

    /// The next control message within `limit` (snapshots and events on the way are
    /// applied and skipped).
    pub async fn recv_message_timeout(
        &mut self,
        limit: Duration,
    ) -> Result<ServerMessage, ClientError> {
        self.recv_message_until(limit, |m| Some(m.clone())).await
    }

    /// The next snapshot within `limit` (other messages on the way are dropped).
    pub async fn recv_snapshot(&mut self, limit: Duration) -> Result<SnapshotInfo, ClientError> {
        self.recv_until(limit, Incoming::snapshot).await
    }

    /// Says Hello and waits for Welcome.
    pub async fn hello(&mut self, name: &str) -> Result<Welcome, ClientError> {
        self.hello_with(PROTOCOL_VERSION, name, None).await
    }

    /// Says Hello with any version and token, and waits for Welcome.
    pub async fn hello_with(
        &mut self,
        protocol_version: u16,
        name: &str,
        resume_token: Option<SessionToken>,
    ) -> Result<Welcome, ClientError> {
        self.name = Some(name.to_owned());
        self.send(&ClientMessage::Hello {
            protocol_version,
            name: name.into(),
            resume_token,
        })
        .await?;
        loop {
            if let Incoming::Message(message) = self.recv_timeout(Duration::from_secs(5)).await? {
                // Cluster mode: the token's player is on another node; resume there.
                if let ServerMessage::Redirect { url, .. } = &message {
                    let url = url.clone();
                    Box::pin(self.follow(&url, "", resume_token)).await?;
                    return self
                        .welcome
                        .ok_or_else(|| ClientError::Unexpected("no Welcome".into()));
                }
                if let Some(outcome) = expect_welcome(message) {
                    self.welcome = outcome.as_ref().ok().copied();
                    return outcome;
                }
            }
        }
    }

    /// Sends a lobby request (create, join, quick-join) and waits for `Joined`. In
    /// cluster mode a `Redirect` is followed: the client moves to the lobby's node (a
    /// new `Hello` there: see [`Client::welcome`]) and takes its reserved seat.
    pub async fn join(&mut self, request: &ClientMessage) -> Result<Joined, ClientError> {
        self.send(request).await?;
        self.wait_joined().await
    }

    async fn wait_joined(&mut self) -> Result<Joined, ClientError> {
        loop {
            match self.recv_timeout(Duration::from_secs(5)).await? {
                Incoming::Message(ServerMessage::Joined(joined)) => return Ok(joined),
                Incoming::Message(ServerMessage::Redirect { url, reservation }) => {
                    return match Box::pin(self.follow(&url, &reservation, None)).await? {
                        Some(joined) => Ok(joined),
                        None => Err(ClientError::Unexpected(
                            "a redirect without a reservation".into(),
                        )),
                    };
                }
                Incoming::Message(ServerMessage::Error { code, message }) => {
                    return Err(ClientError::Server { code, message });
                }
                // Leftovers of a previous lobby, or a lobby list: not the answer.
                _ => continue,
            }
        }
    }

    /// Connects, says Hello and quick-joins.
    pub async fn quick_player(
        url: &str,
        name: &str,
    ) -> Result<(Self, Welcome, Joined), ClientError> {
        let mut client = Self::connect(url).await?;
        let welcome = client.hello(name).await?;
        let joined = client
            .join(&ClientMessage::QuickJoin {
                options: GameOptions::none(),
            })
            .await?;
        Ok((client, welcome, joined))
    }

    /// Reconnects after a lost connection and resumes the session of `token`: tries
    /// `url` with exponential backoff (see [`Backoff`]) for at most `give_up_after`, and
    /// says Hello with the token. The server puts a resumed player back in its lobby on
    /// the same seat (a `Joined` follows the `Welcome`); an expired token gets a new
    /// player (`Welcome::player_id` differs).
    pub async fn resume(
        url: &str,
        name: &str,
        token: SessionToken,
        give_up_after: Duration,
    ) -> Result<(Self, Welcome), ClientError> {
        let deadline = tokio::time::Instant::now() + give_up_after;
        let mut backoff = Backoff::default();
        loop {
            let attempt = async {
                let mut client = Self::connect(url).await?;
                let welcome = client
                    .hello_with(PROTOCOL_VERSION, name, Some(token))
                    .await?;
                Ok::<_, ClientError>((client, welcome))
            };
            match attempt.await {
                Ok(done) => return Ok(done),
                Err(e) if !e.is_connection_lost() => return Err(e),
                Err(e) => {
                    let wait = backoff.next_delay();
                    if tokio::time::Instant::now() + wait > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Payload bytes received so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Payload bytes sent so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
}

/// The client state a `Joined` sets up: its schema decoded (and checked against its
/// hash), compiled for the lobby's cap, for the player's seat.
pub fn state_for(joined: &Joined) -> Result<ClientState, ClientError> {
    let schema = Schema::decode(&joined.schema)
        .map_err(|e| ClientError::Frame(format!("the lobby's schema: {e}")))?;
    if schema.hash().to_le_bytes() != joined.schema_hash {
        return Err(ClientError::Frame(
            "the schema's hash does not match".into(),
        ));
    }
    let codec = Codec::new(schema, joined.max_players)
        .map_err(|e| ClientError::Frame(format!("the lobby's schema: {e}")))?;
    Ok(ClientState::new(Arc::new(codec), PlayerRef(joined.seat)))
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let mut b = Backoff::default();
        let delays: Vec<f64> = (0..8).map(|_| b.next_delay().as_secs_f64()).collect();
        let bases = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0];
        for (d, base) in delays.iter().zip(bases) {
            assert!(
                *d >= base * 0.75 - 1e-9 && *d <= base * 1.25 + 1e-9,
                "{delays:?}"
            );
        }
    }

    #[test]
    fn refusals_are_not_retried() {
        let closed = |code| ClientError::Closed {
            code,
            reason: String::new(),
        };
        assert!(closed(close::local::CONNECTION_LOST).is_connection_lost());
        assert!(closed(close::GOING_AWAY).is_connection_lost());
        assert!(closed(close::TRY_AGAIN_LATER).is_connection_lost());
        for code in close::FINAL {
            assert!(!closed(code).is_connection_lost(), "{code}");
        }
        assert!(ClientError::Timeout.is_connection_lost());
    }
}

/// A client that reconnects by itself: when the connection is lost (see
/// [`ClientError::is_connection_lost`]), [`AutoClient::recv`] resumes the session with its
/// token, with backoff, and goes on with the new connection's messages (its `Welcome`,
/// then `Joined` if the player was in a lobby). Refusals (a kick, a protocol error) are
/// returned as errors.
#[derive(Debug)]
pub struct AutoClient {
    url: String,
    name: String,
    token: SessionToken,
    client: Client,
    give_up_after: Duration,
    reconnects: u32,
}

impl AutoClient {
    /// Connects and says Hello.
    pub async fn connect(url: &str, name: &str) -> Result<(Self, Welcome), ClientError> {
        let mut client = Client::connect(url).await?;
        let welcome = client.hello(name).await?;
        let auto = Self {
            url: url.to_owned(),
            name: name.to_owned(),
            token: welcome.session_token,
            client,
            give_up_after: Duration::from_secs(15),
            reconnects: 0,
        };
        Ok((auto, welcome))
    }

    /// The current connection.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// How many times the connection was resumed.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Sends a message on the current connection. A message sent while the connection is
    /// down is lost (the next `recv` reconnects); for inputs that is what a game wants.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        match self.client.send(message).await {
            Err(e) if e.is_connection_lost() => Ok(()),
            other => other,
        }
    }

    /// The next message; reconnects first if the connection was lost. After a
    /// reconnection the next messages are the new `Welcome` and, if the player was in a
    /// lobby, `Joined`.
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        match self.client.recv().await {
            Err(e) if e.is_connection_lost() => {
                let (client, welcome) =
                    Client::resume(&self.url, &self.name, self.token, self.give_up_after).await?;
                self.client = client;
                self.token = welcome.session_token;
                self.reconnects += 1;
                Ok(Incoming::Message(ServerMessage::Welcome {
                    player_id: welcome.player_id,
                    session_token: welcome.session_token,
                    tick_rate: welcome.tick_rate,
                    protocol_version: PROTOCOL_VERSION,
                }))
            }
            other => other,
        }
    }
}
