//! A harness for tests and fuzzers that drive a real session over any byte stream (an
//! in-memory `tokio::io::duplex` pipe) instead of a TCP socket. Not part of the stable
//! API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::config::Config;
use crate::shared::Shared;
use crate::wire::{broadcast, outbox};
use crate::{games, session};

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
        Self::with_game(config, games::BuiltinGame::Arena)
    }

    /// A harness running a built-in game with `config`.
    pub fn with_game(config: Config, game: games::BuiltinGame) -> Self {
        let factory = match game.factory() {
            Ok(factory) => factory,
            Err(e) => panic!("a built-in game's schema is invalid: {e}"),
        };
        Self {
            shared: Shared::new(config, factory),
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
        let slot = self.shared.admit(peer.ip());
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

/// One message a client received.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A control message, decoded.
    Control(ticksync_protocol::ServerMessage),
    /// A game frame (a snapshot or an event), as it came: decoded by the lobby's schema
    /// in [`check`].
    Frame(Vec<u8>),
}

/// What a client saw of a session: every message the server sent and the close code,
/// if the server sent one.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Server messages, in order.
    pub messages: Vec<Received>,
    /// Binary messages that did not decode as control messages nor start with a game
    /// frame tag (always a server bug).
    pub undecodable: usize,
    /// The server's close code.
    pub close_code: Option<u16>,
}

/// Every close code the server may send (PROTOCOL.md lists them).
pub const DOCUMENTED_CLOSE_CODES: &[(&str, u16)] = ticksync_protocol::close::ALL;

/// One step of a scripted client (see [`drive_steps`]).
#[derive(Debug, Clone)]
pub enum Step {
    /// Send this frame.
    Send(tokio_tungstenite::tungstenite::Message),
    /// Let this much time pass (reading all the while), so that lobbies tick. Run on a
    /// runtime with a paused clock, it costs no wall time.
    Wait(std::time::Duration),
}

/// Plays `frames` into a fresh session over an in-memory pipe, then says goodbye, and
/// collects what the server sent until the connection ends (bounded in time).
pub async fn drive(
    harness: &Harness,
    frames: Vec<tokio_tungstenite::tungstenite::Message>,
) -> Outcome {
    drive_steps(harness, frames.into_iter().map(Step::Send).collect()).await
}

/// Plays `steps` into a fresh session over an in-memory pipe, reading what the server
/// sends all the while (as a client does, answering its pings), then says goodbye and
/// collects the rest until the connection ends (bounded in time).
pub async fn drive_steps(harness: &Harness, steps: Vec<Step>) -> Outcome {
    use futures_util::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::Message;

    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = harness.session(server_io);
    let client = async move {
        let ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let (mut sink, mut stream) = ws.split();
        let mut outcome = Outcome::default();
        let read = async {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Binary(bytes) if ticksync_protocol::codec::is_game_frame(&bytes) => {
                        outcome.messages.push(Received::Frame(bytes.to_vec()));
                    }
                    Message::Binary(bytes) => match ticksync_protocol::decode_server(&bytes) {
                        Ok(m) => outcome.messages.push(Received::Control(m)),
                        Err(_) => outcome.undecodable += 1,
                    },
                    Message::Close(Some(frame)) => outcome.close_code = Some(u16::from(frame.code)),
                    _ => {}
                }
            }
        };
        let write = async {
            for step in steps {
                match step {
                    Step::Send(frame) => {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                    Step::Wait(d) => tokio::time::sleep(d).await,
                }
            }
            let _ = sink.send(Message::Close(None)).await;
            // Keep the sink: the reader's replies (pongs, the close reply) go through it.
            std::future::pending::<()>().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                () = read => {}
                () = write => {}
            }
        })
        .await;
        outcome
    };
    let ((), outcome) = tokio::join!(server, client);
    outcome
}

/// Checks what a client saw against the protocol's promises; `deltas_allowed` says
/// whether the client may receive deltas (false: it asked for full snapshots before its
/// first join and never changed its mind). Returns the first broken promise:
/// - every message decodes, and a close code is a documented one (or there is none);
/// - `Joined` carries a schema that decodes, with its hash;
/// - snapshots and events come only within a stay in a lobby (`Joined` .. `Left`),
///   snapshot ticks move forward from the `Joined` tick on, and the ack never goes
///   backwards within a stay;
/// - the first snapshot of a stay is full; a delta's baseline is the snapshot just before
///   it, and applying every snapshot to the client's state ([`ClientState`]) succeeds;
/// - events decode by the schema.
///
/// Returns how many deltas were applied.
///
/// [`ClientState`]: ticksync_protocol::state::ClientState
pub fn check(outcome: &Outcome, deltas_allowed: bool) -> Result<usize, String> {
    use ticksync_protocol::ServerMessage;
    use ticksync_protocol::schema::Schema;
    use ticksync_protocol::state::io::{EVENT_TAG, decode_event};
    use ticksync_protocol::state::{ClientState, Codec, PlayerRef, SNAPSHOT_TAG};

    struct Stay {
        joined_tick: u32,
        client: ClientState,
        last: Option<u32>,
        ack: u32,
    }

    if outcome.undecodable > 0 {
        return Err(format!("{} undecodable messages", outcome.undecodable));
    }
    if let Some(code) = outcome.close_code {
        if !DOCUMENTED_CLOSE_CODES.iter().any(|&(_, c)| c == code) {
            return Err(format!("undocumented close code {code}"));
        }
    }
    let mut stay: Option<Stay> = None;
    let mut deltas = 0;
    for (i, message) in outcome.messages.iter().enumerate() {
        match message {
            Received::Control(ServerMessage::Joined(joined)) => {
                let schema = Schema::decode(&joined.schema)
                    .map_err(|e| format!("message {i}: the schema does not decode: {e}"))?;
                if schema.hash().to_le_bytes() != joined.schema_hash {
                    return Err(format!("message {i}: the schema hash is not the schema's"));
                }
                let codec = Codec::new(schema, joined.max_players)
                    .map_err(|e| format!("message {i}: {e}"))?;
                stay = Some(Stay {
                    joined_tick: joined.tick,
                    client: ClientState::new(Arc::new(codec), PlayerRef(joined.seat)),
                    last: None,
                    ack: 0,
                });
            }
            Received::Control(ServerMessage::Left { .. }) => stay = None,
            Received::Control(_) => {}
            Received::Frame(bytes) => {
                let stay = stay
                    .as_mut()
                    .ok_or_else(|| format!("message {i}: a game frame outside a lobby"))?;
                match bytes.first() {
                    Some(&SNAPSHOT_TAG) => {
                        let first = stay.last.is_none();
                        let applied = stay.client.apply(bytes).map_err(|e| {
                            format!("message {i}: the snapshot does not apply: {e}")
                        })?;
                        let (tick, ack, full) = (applied.tick, applied.ack_seq, applied.full);
                        if first && !full {
                            return Err(format!("message {i}: the first snapshot is a delta"));
                        }
                        if !full {
                            if !deltas_allowed {
                                return Err(format!("message {i}: a delta nobody asked for"));
                            }
                            deltas += 1;
                        }
                        if ack < stay.ack {
                            return Err(format!(
                                "message {i}: the ack went back from {} to {ack}",
                                stay.ack
                            ));
                        }
                        stay.ack = ack;
                        match stay.last {
                            Some(last) if tick <= last => {
                                return Err(format!(
                                    "message {i}: snapshot of tick {tick} after tick {last}"
                                ));
                            }
                            None if tick < stay.joined_tick => {
                                return Err(format!(
                                    "message {i}: first snapshot of tick {tick} before the Joined tick {}",
                                    stay.joined_tick
                                ));
                            }
                            _ => {}
                        }
                        stay.last = Some(tick);
                    }
                    Some(&EVENT_TAG) => {
                        decode_event(stay.client.codec(), bytes)
                            .map_err(|e| format!("message {i}: the event does not decode: {e}"))?;
                    }
                    _ => return Err(format!("message {i}: an unknown game frame")),
                }
            }
        }
    }
    Ok(deltas)
}

/// The heads of the snapshots in `outcome`, in order: (tick, ack, delta), read from the
/// bytes by `split_snapshot` and `SnapshotParts::tick_and_delta`, without decoding.
pub fn snapshot_heads(outcome: &Outcome) -> Vec<(u32, u32, bool)> {
    outcome
        .messages
        .iter()
        .filter_map(|m| match m {
            Received::Frame(bytes) => {
                let parts = ticksync_protocol::state::split_snapshot(bytes)?;
                let (tick, delta) = parts.tick_and_delta()?;
                Some((tick, parts.ack_seq, delta))
            }
            _ => None,
        })
        .collect()
}

/// One lobby tick's delivery to `players` real loopback TCP connections, each with its
/// outbox, through the same code as the tick task (`broadcast.rs`): for the `fanout/`
/// benches. Create it on a tokio runtime with I/O enabled, which [`Fanout::deliver`]
/// must then be called within (the sockets are registered with its reactor).
pub struct Fanout {
    frame: broadcast::TickFrame,
    codec: Arc<ticksync_protocol::state::Codec>,
    state: ticksync_protocol::state::State,
    encoder: ticksync_protocol::state::Encoder,
    own: Vec<u8>,
    links: Vec<outbox::Link>,
    /// The server ends' read halves, kept open.
    _reads: Vec<tokio::net::tcp::OwnedReadHalf>,
    /// The client ends, drained by [`Fanout::drain`].
    clients: Vec<std::net::TcpStream>,
    scratch: Vec<u8>,
    gone: Vec<ticksync_protocol::state::PlayerRef>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("players", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl Fanout {
    /// A lobby of `players` connected players (at most 250) playing the arena, and its
    /// full snapshot to send them.
    pub async fn new(players: usize) -> std::io::Result<Self> {
        use crate::game::{GameOptions, GameSim, PlayerRef, Sim};
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let mut links = Vec::new();
        let mut reads = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..players.min(250) {
            let client = std::net::TcpStream::connect(addr)?;
            let (server, _) = listener.accept()?;
            client.set_nonblocking(true)?;
            server.set_nonblocking(true)?;
            server.set_nodelay(true)?;
            let server = tokio::net::TcpStream::from_std(server)?;
            // The reactor learns the socket is writable; until then a write would
            // wait for it.
            server.writable().await?;
            let conn = outbox::tcp(server);
            let out = Arc::clone(conn.outbox());
            let epoch = out.begin_seat();
            links.push(outbox::Link { out, epoch });
            reads.push(conn.into_read());
            clients.push(client);
        }
        let n = u16::try_from(links.len()).unwrap_or(250).max(1);
        let mut sim = GameSim::new(games::arena::Arena::new(), n).map_err(std::io::Error::other)?;
        for seat in 1..=n {
            sim.join(PlayerRef(seat), "bot", &GameOptions::none())
                .map_err(std::io::Error::other)?;
        }
        let state = sim.state(1).map_err(std::io::Error::other)?;
        let codec = Arc::clone(sim.codec());
        let mut encoder = ticksync_protocol::state::Encoder::new();
        let mut full = Vec::new();
        encoder.encode_shared(&codec, None, &state, &mut full);
        Ok(Self {
            frame: broadcast::TickFrame {
                tick: 1,
                full,
                // Every tick of the benchmark sends this one state in full.
                full_ready: true,
                delta: Vec::new(),
                // No baseline (`Parts::from` is None): nothing to decide.
                delta_ready: true,
                acks: (0..links.len()).map(|i| 1000 + i as u32).collect(),
            },
            codec,
            state,
            encoder,
            own: Vec::new(),
            links,
            _reads: reads,
            clients,
            scratch: Vec::new(),
            gone: Vec::new(),
        })
    }

    /// Writes the next tick's snapshot to every player; returns how many went straight
    /// onto their socket (all of them, unless [`Fanout::drain`] was not called for long).
    pub fn deliver(&mut self) -> u64 {
        self.frame.tick = self.frame.tick.wrapping_add(1);
        let links = self.links.iter().enumerate().map(|(i, link)| {
            (
                ticksync_protocol::state::PlayerRef(u16::try_from(i + 1).unwrap_or(u16::MAX)),
                link,
            )
        });
        let mut parts = broadcast::Parts {
            codec: &self.codec,
            from: None,
            to: &self.state,
            encoder: &mut self.encoder,
            own: &mut self.own,
        };
        let done = broadcast::deliver(
            &mut self.frame,
            &mut parts,
            links,
            &mut self.scratch,
            &mut self.gone,
        );
        done.sent - done.skipped
    }

    /// Reads everything the players were sent so far; returns the byte count.
    pub fn drain(&mut self) -> std::io::Result<u64> {
        use std::io::Read;
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0u64;
        for client in &mut self.clients {
            loop {
                match client.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(total)
    }
}
