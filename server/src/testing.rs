//! A harness for tests and fuzzers that drive a real session over any byte stream (an
//! in-memory `tokio::io::duplex` pipe) instead of a TCP socket. Not part of the stable
//! API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::game::{Game, LobbySpec};
use crate::{Config, Shared, arena, listener, outbox, session};

/// A server without a listener: sessions are handed their streams directly.
pub struct Harness {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Harness")
    }
}

impl Harness {
    /// A harness running the arena game with `config`.
    pub fn new(config: Config) -> Self {
        let arena = |_: &LobbySpec| Box::new(arena::Arena::new()) as Box<dyn Game>;
        Self {
            shared: Shared::new(config, Arc::new(arena)),
        }
    }

    /// Runs one WebSocket session (server side, already past the HTTP handshake) over
    /// `stream` until it ends.
    pub async fn session<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
        let conn = outbox::any(stream);
        let ws =
            WebSocketStream::from_raw_socket(conn, Role::Server, Some(self.shared.ws_config)).await;
        let slot = listener::admit(&self.shared, peer.ip());
        if let Some(slot) = slot {
            session::run(ws, peer, Arc::clone(&self.shared), Arc::new(slot), None).await;
        }
    }

    /// Stops every lobby and session the harness started.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
    }
}

/// What a client saw of a session: every message the server sent (decoded) and the
/// close code, if the server sent one.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Server messages, in order.
    pub messages: Vec<ticksync_protocol::ServerMessage>,
    /// Binary messages that did not decode (always a server bug).
    pub undecodable: usize,
    /// The server's close code.
    pub close_code: Option<u16>,
}

/// Every close code the server may send (PROTOCOL.md lists them).
pub const DOCUMENTED_CLOSE_CODES: [u16; 14] = [
    1000, 1001, 1002, 1003, 1008, 1009, 1011, 1013, 4001, 4002, 4003, 4004, 4005, 4006,
];

/// Plays `frames` into a fresh session over an in-memory pipe, then says goodbye, and
/// collects what the server sent until the connection ends (bounded in time).
pub async fn drive(
    harness: &Harness,
    frames: Vec<tokio_tungstenite::tungstenite::Message>,
) -> Outcome {
    use futures_util::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::Message;

    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = harness.session(server_io);
    let client = async move {
        let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let mut outcome = Outcome::default();
        for frame in frames {
            if ws.feed(frame).await.is_err() {
                break;
            }
        }
        let _ = ws.flush().await;
        let _ = ws.send(Message::Close(None)).await;
        let read_all = async {
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Binary(bytes) => match ticksync_protocol::decode_server(&bytes) {
                        Ok(m) => outcome.messages.push(m),
                        Err(_) => outcome.undecodable += 1,
                    },
                    Message::Close(Some(frame)) => outcome.close_code = Some(u16::from(frame.code)),
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read_all).await;
        outcome
    };
    let ((), outcome) = tokio::join!(server, client);
    outcome
}
