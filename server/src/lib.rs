//! # ticksync server
//!
//! An authoritative multiplayer game state server: players connect over WebSocket, meet
//! in lobbies, and each lobby runs a fixed-tick simulation whose state every player
//! receives as a snapshot every tick.
//!
//! ## Data flow
//!
//! ```text
//!  TCP ──► listener.rs ──► http.rs ── GET /ws (101) ──► session.rs (one task per player)
//!           accept, cap,     demo client, /api,              │ reads the socket: decode,
//!           TCP_NODELAY      /healthz                         │ validate; Input: try_send
//!                                                             ▼
//!                                   bounded input channel (per lobby) ──► lobby.rs tick task
//!                                                                          owns the Game
//!                                                                          (no Mutex)
//!                                                                             │ step, quantize,
//!                                                                             │ encode ONCE
//!                                                                             ▼
//!  socket ◄── outbox.rs (per connection) ◄── broadcast.rs: each player's head + shared body,
//!             one non-blocking send per        written by the tick task itself
//!             player per tick; what waits is
//!             finished by the session
//! ```
//!
//! - `listener` accepts connections (at most `--max-connections`) and hands each to hyper.
//! - `http` serves the embedded demo client, `/api/lobbies`, `/healthz`, and upgrades
//!   `/ws` to a WebSocket.
//! - `session` is one task per player: it reads the socket, decodes client messages,
//!   answers them, and finishes writes the socket could not take at once.
//! - `input` sanitizes inputs and holds the per-connection rate limits; `auth` the Origin
//!   allowlist and signed join tokens.
//! - `players` is the directory of players by session token (resume, kick).
//! - `registry` is the directory of lobbies (by id and by private code).
//! - `lobby` is one task per lobby with a fixed tick; it owns the [`game::Game`].
//! - `broadcast` is the tick frame: the snapshot body encoded once per tick and shared by
//!   every player of the lobby, and its delivery: each player's acknowledgement head and
//!   the body, written by the tick task to the player's outbox.
//! - `outbox` is a connection's way out, shared by its session and its lobby: frames go
//!   to the socket whole and in order; what the socket does not take waits (events in
//!   order, the newest snapshot only) for the session to finish.
//!
//! Game rules live behind [`game::Game`]; [`arena::Arena`] is the demo game. Start a
//! server with [`run`] (the arena) or [`run_with_game`] (your game).

mod admin;
pub mod arena;
pub mod auth;
mod broadcast;
pub mod config;
pub mod game;
mod http;
pub mod input;
mod listener;
mod lobby;
mod metrics;
mod outbox;
mod players;
mod registry;
mod session;
#[doc(hidden)]
pub mod testing;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ticksync_protocol::limits::MAX_CLIENT_MESSAGE_BYTES;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use crate::config::Config;

use crate::game::{Game, GameFactory, LobbySpec};
use crate::listener::ConnCounts;
use crate::lobby::{Lobby, LobbyHandle};
use crate::players::Players;
use crate::registry::Registry;

/// The server crate's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener's address could not be read.
    #[error("listener has no local address: {0}")]
    Listener(#[source] std::io::Error),
    /// A flag or environment variable is wrong (or help or the version was asked for:
    /// `clap::Error::exit` prints it).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The config file is unreadable or wrong.
    #[error("config file: {0}")]
    ConfigFile(String),
    /// No join token was given, and the server requires one.
    #[error("a join token is required")]
    TokenMissing,
    /// The join token is not `<expiry>.<hex>`.
    #[error("the join token is malformed")]
    TokenMalformed,
    /// The join token's expiry has passed.
    #[error("the join token has expired")]
    TokenExpired,
    /// The join token's signature does not match the name and expiry.
    #[error("the join token does not match")]
    TokenBadSignature,
}

/// Close codes counted separately (index in [`Stats::closes`]); 0 stands for "no close
/// frame" (the connection dropped or the client closed it).
pub(crate) const COUNTED_CLOSES: [u16; 15] = [
    0, 1000, 1001, 1002, 1003, 1008, 1009, 1011, 1013, 4001, 4002, 4003, 4004, 4005, 4006,
];

/// Server-wide counters: atomics, so reading them never slows a tick.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) sessions_open: AtomicU64,
    pub(crate) sessions_total: AtomicU64,
    pub(crate) snapshots_sent: AtomicU64,
    pub(crate) snapshots_skipped: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) lobby_panics: AtomicU64,
    pub(crate) kicks: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
    /// Sessions ended, by close code (see [`COUNTED_CLOSES`]; the last slot: others).
    pub(crate) closes: [AtomicU64; COUNTED_CLOSES.len() + 1],
    /// Client messages by tag (the last slot: undecodable).
    pub(crate) messages_by_kind: [AtomicU64; CLIENT_KINDS.len() + 1],
    /// TCP connections accepted.
    pub(crate) connections_total: AtomicU64,
    /// Connections refused, by reason (see [`REFUSALS`]).
    pub(crate) refused: [AtomicU64; REFUSALS.len()],
    pub(crate) ticks: AtomicU64,
    /// Ticks that took longer than the tick period, or started a period late.
    pub(crate) ticks_overrun: AtomicU64,
    /// Simulation + encode time of one lobby tick.
    pub(crate) tick_time: metrics::AtomicHistogram,
    /// Time to write one lobby tick's snapshots to its players' sockets.
    pub(crate) fanout_time: metrics::AtomicHistogram,
    /// How late ticks start against their schedule.
    pub(crate) tick_lateness: metrics::AtomicHistogram,
    pub(crate) inputs_dropped_full: AtomicU64,
    pub(crate) inputs_superseded: AtomicU64,
    pub(crate) inputs_stale: AtomicU64,
    pub(crate) inputs_rate_limited: AtomicU64,
    pub(crate) admin_actions: AtomicU64,
}

/// Client message kinds by tag, as metric labels.
pub(crate) const CLIENT_KINDS: [&str; 8] = [
    "hello",
    "list_lobbies",
    "create_lobby",
    "join_lobby",
    "quick_join",
    "leave_lobby",
    "input",
    "ping",
];

/// Why connections are refused, as metric labels.
pub(crate) const REFUSALS: [&str; 5] = [
    "server_full",
    "address_full",
    "origin",
    "draining",
    "over_margin",
];

/// Index in [`Stats::refused`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    ServerFull = 0,
    AddressFull = 1,
    Origin = 2,
    Draining = 3,
    OverMargin = 4,
}

impl Stats {
    pub(crate) fn count_close(&self, code: u16) {
        let i = COUNTED_CLOSES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(COUNTED_CLOSES.len());
        self.closes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a received binary message; its first byte is its tag.
    pub(crate) fn count_in(&self, bytes: &[u8]) {
        self.bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        let kind = bytes.first().map_or(CLIENT_KINDS.len(), |&t| {
            usize::from(t).min(CLIENT_KINDS.len())
        });
        self.messages_by_kind[kind].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// What every task of the server shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    pub(crate) players: Players,
    pub(crate) conns: ConnCounts,
    pub(crate) game: Arc<dyn GameFactory>,
    /// Fired when shutdown starts: sessions say goodbye, lobbies stop.
    pub(crate) cancel: CancellationToken,
    /// Fired when draining is over: the listener and HTTP connections stop.
    pub(crate) stop: CancellationToken,
    /// Sessions and lobbies.
    pub(crate) tracker: TaskTracker,
    /// HTTP connections.
    pub(crate) conn_tracker: TaskTracker,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) stats: Stats,
    draining: AtomicBool,
    next_conn: AtomicU64,
    /// When the server started.
    pub(crate) started: tokio::time::Instant,
}

impl Shared {
    pub(crate) fn new(config: Config, game: Arc<dyn GameFactory>) -> Arc<Self> {
        Arc::new(Shared {
            config,
            registry: Registry::default(),
            players: Players::default(),
            conns: ConnCounts::default(),
            game,
            cancel: CancellationToken::new(),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            conn_tracker: TaskTracker::new(),
            ws_config: ws_config(),
            stats: Stats::default(),
            draining: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            started: tokio::time::Instant::now(),
        })
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Creates a lobby and starts its tick task.
    pub(crate) fn create_lobby(
        self: &Arc<Self>,
        name: String,
        max_players: u8,
        private: bool,
    ) -> Result<Arc<LobbyHandle>, String> {
        if self.registry.len() >= self.config.max_lobbies {
            return Err("the server has as many lobbies as it can run".into());
        }
        let code = if private {
            Some(registry::new_code().map_err(|_| "no randomness available".to_owned())?)
        } else {
            None
        };
        let spec = LobbySpec {
            name,
            max_players,
            private,
        };
        let game = self.game.create(&spec);
        let id = self.registry.next_id();
        let lobby = Lobby::new(id, spec, code, game, Arc::clone(self));
        let handle = lobby.handle();
        self.registry.insert(Arc::clone(&handle));
        let span = tracing::info_span!("lobby", id, name = %handle.name);
        self.tracker.spawn(tracing::Instrument::instrument(
            lobby.run(self.cancel.child_token()),
            span,
        ));
        Ok(handle)
    }
}

/// The WebSocket limits: client messages are tiny, so a small read buffer (tungstenite's
/// 128 KiB default would cost 128 MB per 1,000 players, and it zero-fills the free part
/// of the buffer before every socket read: at 4 KiB that memset alone was 28% of the
/// server's user-space instructions), and messages and frames capped at the protocol's
/// limit. Writes go out on every flush; the write buffer is bounded.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_CLIENT_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE_BYTES))
}

/// Runs the server with the demo arena game until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let arena = |_: &LobbySpec| Box::new(arena::Arena::new()) as Box<dyn Game>;
    run_with_game(listener, config, Arc::new(arena), shutdown).await
}

/// Runs the server with the given game until `shutdown` resolves: stops accepting,
/// tells every client, lets lobbies finish their tick, and returns within
/// `--shutdown-timeout`.
pub async fn run_with_game(
    listener: TcpListener,
    config: Config,
    game: Arc<dyn GameFactory>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(Error::Listener)?;
    let shutdown_timeout = config.shutdown_timeout;
    let resume_grace = config.resume_grace;
    let shared = Shared::new(config, game);
    info!(%addr, url = %format!("http://{addr}/"), "ticksync listening");
    let accept = tokio::spawn(listener::accept_loop(listener, Arc::clone(&shared)));
    shared
        .tracker
        .spawn(sweep_players(Arc::clone(&shared), resume_grace));

    shutdown.await;
    // Drain: /readyz says 503 and new players are turned away while everyone still
    // connected is told and closed, and every lobby finishes its tick.
    info!("shutting down");
    shared.draining.store(true, Ordering::Release);
    shared.cancel.cancel();
    shared.tracker.close();
    if tokio::time::timeout(shutdown_timeout, shared.tracker.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = shared.tracker.len(),
            "shutdown deadline passed with sessions or lobbies still running"
        );
    }
    shared.stop.cancel();
    let _ = accept.await;
    shared.conn_tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), shared.conn_tracker.wait()).await;
    info!("stopped");
    Ok(())
}

/// Forgets players whose resume grace ran out, so that tokens do not pile up.
async fn sweep_players(shared: Arc<Shared>, grace: Duration) {
    let mut every = tokio::time::interval(grace.max(Duration::from_secs(1)) / 2);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = every.tick() => {
                let forgotten = shared.players.sweep(grace);
                if forgotten > 0 {
                    tracing::debug!(forgotten, "expired sessions forgotten");
                }
            }
        }
    }
}
