//! `ticksync-bare`: the floor of the stack, a reference server with no game in it.
//!
//! tokio + tokio-tungstenite, one task per connection, one input read and one snapshot
//! write per player-tick, and nothing else: no simulation, no lobby tasks, no fan-out, no
//! session records. It speaks just enough of ticksync's protocol for `ticksync-bots` to
//! drive it unchanged (`Hello` -> `Welcome`, `CreateLobby`/`JoinLobby` -> `Joined` with
//! the arena's schema, then a full snapshot of 10 arena entities every 1/30 s
//! acknowledging the newest input), so that
//! the bots' "server CPU per player-tick" of this process is what the stack alone costs
//! on this machine. Compare ticksync's server against it on the same machine and day,
//! server and bots pinned as in `benches/capacity.sh`:
//! `taskset -c 0 target/release/ticksync-bare & taskset -c 1 target/release/ticksync-bots
//! --url ws://127.0.0.1:18779/ws --server-pid $!`.
//!
//! Not a server to play on: nothing is checked, lobbies have no cap and are never
//! forgotten, `Options` is ignored (no deltas), and `Ping`, `ListLobbies` and `QuickJoin`
//! get no answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use ticksync_protocol::state::io::INPUT_TAG;
use ticksync_protocol::state::{Codec, Encoder, PlayerRef, State, Value, Visibility};
use ticksync_protocol::{
    ClientMessage, JoinTarget, Joined, PROTOCOL_VERSION, PlayerInfo, ServerMessage, decode_client,
    encode_server,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Snapshots per second, as ticksync's default.
const TICK_RATE: u16 = 30;
/// Entities in every snapshot: a full lobby of the standard workload.
const ENTITIES: usize = 10;

/// The bare-stack reference server: the floor to compare ticksync's server against.
#[derive(Debug, Parser)]
#[command(name = "ticksync-bare")]
struct Args {
    /// Address to listen on (WebSocket at /ws).
    #[arg(long, default_value = "127.0.0.1:18779")]
    bind: SocketAddr,
    /// Tokio worker threads; 1 is a current-thread runtime.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: u16,
    /// Ignored (the bare stack has no caps): accepted so that `ticksync-bots
    /// --find-capacity --server-bin ticksync-bare` can start it as it starts the server.
    #[arg(long, hide = true)]
    max_connections_per_ip: Option<u64>,
    /// Ignored, as `--max-connections-per-ip`.
    #[arg(long, hide = true)]
    max_connections: Option<u64>,
    /// Ignored, as `--max-connections-per-ip`.
    #[arg(long, hide = true)]
    max_players_per_lobby: Option<u64>,
}

/// What the connections share.
#[derive(Debug)]
struct Shared {
    /// Tick `n` is at `epoch + n / TICK_RATE`, for every connection.
    epoch: Instant,
    period: Duration,
    next_player: AtomicU32,
    next_lobby: AtomicU32,
    /// The next seat of each lobby.
    lobbies: Mutex<HashMap<u32, u16>>,
    /// The arena's schema, for `Joined` and the snapshots.
    codec: Codec,
    schema: Vec<u8>,
}

impl Shared {
    /// The tick at `at` (rounded to the nearest).
    fn tick_at(&self, at: Instant) -> u32 {
        let since = at.saturating_duration_since(self.epoch) + self.period / 2;
        (since.as_nanos() / self.period.as_nanos()) as u32
    }

    /// A timer firing on the shared tick grid, from the next tick on.
    fn ticker(&self) -> Interval {
        let next = self.tick_at(Instant::now()) + 1;
        let mut ticker = tokio::time::interval_at(self.epoch + self.period * next, self.period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        ticker
    }

    /// A seat in `lobby`: its next one (1 up).
    fn seat(&self, lobby: u32) -> u16 {
        let mut lobbies = self.lobbies.lock().unwrap_or_else(PoisonError::into_inner);
        let next = lobbies.entry(lobby).or_insert(0);
        *next = next.wrapping_add(1).max(1);
        *next
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.worker_threads.into())
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args.bind))
}

async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind).await?;
    println!(
        "ticksync-bare: open http://{}/ (WebSocket at /ws)",
        listener.local_addr()?
    );
    let schema = ticksync_server::game::schema_of::<ticksync_server::games::arena::Arena>()?;
    let shared = Arc::new(Shared {
        codec: Codec::new(schema.clone(), ticksync_protocol::limits::MAX_LOBBY_PLAYERS)?,
        schema: schema.encode(),
        epoch: Instant::now(),
        period: Duration::from_secs(1) / u32::from(TICK_RATE),
        next_player: AtomicU32::new(1),
        next_lobby: AtomicU32::new(1),
        lobbies: Mutex::new(HashMap::new()),
    });
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, &shared).await
                            && !normal_end(&e)
                        {
                            eprintln!("ticksync-bare: {peer}: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors, typically: wait rather than spin.
                    eprintln!("ticksync-bare: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// One connection, from the upgrade to its end.
async fn connection(stream: TcpStream, shared: &Shared) -> Result<(), WsError> {
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0);
    // tungstenite's callback signature: the large error type is not ours to box.
    #[allow(clippy::result_large_err)]
    let only_ws = |request: &Request, response: Response| {
        if request.uri().path() == "/ws" {
            Ok(response)
        } else {
            let mut refusal = ErrorResponse::new(None);
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, only_ws, Some(config));
    // Not a WebSocket client: the bots' `GET /metrics`, answered by nothing else.
    let Ok(mut ws) = upgrade.await else {
        return Ok(());
    };
    let mut player_id = 0;
    let mut ack_seq = 0;
    let mut seat_of_me = 0;
    let mut joined = false;
    let mut ticker = shared.ticker();
    let mut state = State::new(&shared.codec);
    let mut encoder = Encoder::new();
    loop {
        tokio::select! {
            message = ws.next() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e),
                };
                if let [INPUT_TAG, a, b, c, d, ..] = bytes[..] {
                    ack_seq = u32::from_le_bytes([a, b, c, d]).max(ack_seq);
                    continue;
                }
                let request = match decode_client(&bytes) {
                    Ok(request) => request,
                    Err(e) => {
                        eprintln!("ticksync-bare: undecodable message: {e}");
                        continue;
                    }
                };
                let (lobby_id, name, max_players) = match request {
                    ClientMessage::Hello { .. } => {
                        player_id = shared.next_player.fetch_add(1, Ordering::Relaxed);
                        let mut session_token = [0; 16];
                        session_token[..4].copy_from_slice(&player_id.to_le_bytes());
                        let welcome = ServerMessage::Welcome {
                            player_id,
                            session_token,
                            tick_rate: TICK_RATE,
                            protocol_version: PROTOCOL_VERSION,
                        };
                        ws.send(Message::Binary(encode_server(&welcome).into())).await?;
                        continue;
                    }
                    ClientMessage::CreateLobby { name, max_players, .. } => {
                        (shared.next_lobby.fetch_add(1, Ordering::Relaxed), name, max_players)
                    }
                    ClientMessage::JoinLobby { target, .. } => {
                        let id = match target {
                            JoinTarget::Id(id) => id,
                            JoinTarget::Code(_) => 0,
                        };
                        (id, format!("lobby-{id}"), ticksync_protocol::limits::MAX_LOBBY_PLAYERS)
                    }
                    _ => continue,
                };
                let seat = shared.seat(lobby_id);
                seat_of_me = seat;
                let reply = ServerMessage::Joined(Joined {
                    lobby_id,
                    name,
                    code: None,
                    // The snapshots are encoded for the largest cap, whatever was asked.
                    max_players: max_players.max(ticksync_protocol::limits::MAX_LOBBY_PLAYERS),
                    seat,
                    tick: shared.tick_at(Instant::now()),
                    schema: shared.schema.clone(),
                    schema_hash: shared.codec.hash().to_le_bytes(),
                    players: vec![PlayerInfo {
                        seat,
                        player_id,
                        name: format!("player-{player_id}"),
                    }],
                });
                ws.send(Message::Binary(encode_server(&reply).into())).await?;
                if !joined {
                    joined = true;
                    ticker = shared.ticker();
                }
            }
            at = ticker.tick(), if joined => {
                let tick = shared.tick_at(at);
                state.begin(&shared.codec, tick);
                let phase = (tick % 1000) as f32;
                for i in 0..ENTITIES {
                    let at = [(phase + i as f32 * 90.0) % 1000.0, (phase * 0.5 + i as f32 * 45.0) % 1000.0];
                    let values = [Value::Vec2(at), Value::Vec2([200.0, 100.0]), Value::Bool(i == 0), Value::Int(0)];
                    let _ = state.push_entity_values(&shared.codec, 0, i as u32 + 1, PlayerRef(i as u16 + 1), Visibility::Everyone, &values);
                }
                let _ = state.finish(&shared.codec);
                let mut out = Vec::with_capacity(16 + ENTITIES * 10);
                encoder.encode_snapshot(&shared.codec, None, &state, PlayerRef(seat_of_me), ack_seq, &mut out);
                ws.send(Message::Binary(out.into())).await?;
            }
        }
    }
}

/// How connections normally end when the bots stop: not worth a line each.
fn normal_end(e: &WsError) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    match e {
        WsError::Io(e) => matches!(e.kind(), ConnectionReset | BrokenPipe | UnexpectedEof),
        WsError::Protocol(e) => *e == ProtocolError::ResetWithoutClosingHandshake,
        _ => matches!(e, WsError::ConnectionClosed | WsError::AlreadyClosed),
    }
}
