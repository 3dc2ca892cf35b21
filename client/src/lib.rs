//! A small async ticksync client: one WebSocket connection speaking the real protocol.
//! The integration tests and the bots both use it, so the protocol is written once on
//! the client side too.
//!
//! - [`Client`]: tokio-tungstenite's general client, for tests that need every message
//!   decoded and any frame sent, valid or not.
//! - [`lean::LeanClient`]: a cut-down WebSocket client for the bots, whose receive path
//!   neither allocates nor copies, with [`peek_snapshot_head`] to read a snapshot's
//!   acknowledgement and tick without decoding its entities.

mod head;
pub mod lean;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ticksync_protocol::codec::apply_delta;
use ticksync_protocol::limits::MAX_SERVER_MESSAGE_BYTES;
use ticksync_protocol::{
    ClientMessage, CodecError, EntityState, Joined, PROTOCOL_VERSION, ServerMessage, SessionToken,
    Snapshot, decode_server, encode_client,
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
    /// The server closed the connection (code 1005 when it gave none).
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

/// One connection to a ticksync server.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    bytes_in: u64,
    bytes_out: u64,
    /// The last snapshot's tick and entities: the baseline of the next delta.
    last_snapshot: Option<(u32, Vec<EntityState>)>,
    deltas_received: u64,
}

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
            last_snapshot: None,
            deltas_received: 0,
        })
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
                            code: 1005,
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
                        code: 1006,
                        reason: "connection dropped".into(),
                    });
                }
            }
        }
    }

    /// Receives and decodes the next message. A `SnapshotDelta` (after
    /// [`Client::enable_deltas`]) is applied to the previous snapshot and returned as the
    /// full `Snapshot` it stands for.
    pub async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        let bytes = self.recv_bytes().await?;
        match decode_server(&bytes)? {
            ServerMessage::Snapshot(snapshot) => {
                self.last_snapshot = Some((snapshot.tick, snapshot.entities.clone()));
                Ok(ServerMessage::Snapshot(snapshot))
            }
            ServerMessage::SnapshotDelta(delta) => {
                let Some((tick, base)) = &self.last_snapshot else {
                    return Err(ClientError::Unexpected("a delta without a baseline".into()));
                };
                if *tick != delta.baseline {
                    return Err(ClientError::Unexpected(format!(
                        "a delta from tick {} but the last snapshot was of tick {tick}",
                        delta.baseline
                    )));
                }
                let entities = apply_delta(base, &delta)?;
                self.last_snapshot = Some((delta.tick, entities.clone()));
                self.deltas_received += 1;
                Ok(ServerMessage::Snapshot(Snapshot {
                    ack_seq: delta.ack_seq,
                    tick: delta.tick,
                    baseline: 0,
                    entities,
                }))
            }
            other => Ok(other),
        }
    }

    /// Asks for delta snapshots from now on (`Options`).
    pub async fn enable_deltas(&mut self) -> Result<(), ClientError> {
        self.send(&ClientMessage::Options {
            delta_snapshots: true,
        })
        .await
    }

    /// How many delta snapshots [`Client::recv`] has applied.
    pub fn deltas_received(&self) -> u64 {
        self.deltas_received
    }

    /// Receives within `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<ServerMessage, ClientError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Receives until `pick` returns `Some`, within `limit`; other messages are dropped.
    pub async fn recv_until<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
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
        self.send(&ClientMessage::Hello {
            protocol_version,
            name: name.into(),
            resume_token,
        })
        .await?;
        loop {
            match self.recv_timeout(Duration::from_secs(5)).await? {
                ServerMessage::Welcome {
                    player_id,
                    session_token,
                    tick_rate,
                    ..
                } => {
                    return Ok(Welcome {
                        player_id,
                        session_token,
                        tick_rate,
                    });
                }
                // A failed resume is reported, then a new session starts.
                ServerMessage::Error { code: 14, .. } => continue,
                ServerMessage::Error { code, message } => {
                    return Err(ClientError::Server { code, message });
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// Sends a lobby request (create, join, quick-join) and waits for `Joined`.
    pub async fn join(&mut self, request: &ClientMessage) -> Result<Joined, ClientError> {
        self.send(request).await?;
        loop {
            match self.recv_timeout(Duration::from_secs(5)).await? {
                ServerMessage::Joined(joined) => return Ok(joined),
                ServerMessage::Error { code, message } => {
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
        let joined = client.join(&ClientMessage::QuickJoin).await?;
        Ok((client, welcome, joined))
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
