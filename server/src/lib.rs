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
//!           accept, cap,     demo client, /api,              │ decode, validate
//!           TCP_NODELAY      /healthz                         │ Input: try_send
//!                                                             ▼
//!                                   bounded input channel (per lobby) ──► lobby.rs tick task
//!                                                                          owns the Game
//!                                                                          (no Mutex)
//!                                                                             │ step, quantize,
//!                                                                             │ encode ONCE
//!                                                                             ▼
//!  socket ◄── session.rs: its head + shared body ◄── watch (latest wins) ◄── broadcast.rs
//!             one write per player per tick                                   TickFrame
//! ```
//!
//! - `listener` accepts connections (at most `--max-connections`) and hands each to hyper.
//! - `http` serves the embedded demo client, `/api/lobbies`, `/healthz`, and upgrades
//!   `/ws` to a WebSocket.
//! - `session` is one task per player: it owns the socket, decodes client messages, and
//!   sends the lobby's snapshots and events.
//! - `registry` is the directory of lobbies (by id and by private code).
//! - `lobby` is one task per lobby with a fixed tick; it owns the [`game::Game`].
//! - `broadcast` is the tick frame: the snapshot body encoded once per tick and shared by
//!   every player of the lobby; each session adds its player's acknowledgement head.
//!
//! Game rules live behind [`game::Game`]; [`arena::Arena`] is the demo game. Start a
//! server with [`run`] (the arena) or [`run_with_game`] (your game).

pub mod arena;
mod broadcast;
pub mod config;
pub mod game;
mod http;
mod listener;
mod lobby;
mod registry;
mod session;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ticksync_protocol::limits::MAX_CLIENT_MESSAGE_BYTES;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use crate::config::Config;
use crate::game::{Game, GameFactory};
use crate::lobby::{Lobby, LobbyHandle, LobbySettings};
use crate::registry::Registry;

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener's address could not be read.
    #[error("listener has no local address: {0}")]
    Listener(#[source] std::io::Error),
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) sessions_open: AtomicU64,
    pub(crate) snapshots_sent: AtomicU64,
    pub(crate) snapshots_skipped: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

/// What every task of the server shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) registry: Arc<Registry>,
    pub(crate) game: Arc<dyn GameFactory>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) stats: Stats,
    next_player_id: AtomicU32,
}

impl Shared {
    pub(crate) fn next_player_id(&self) -> u32 {
        self.next_player_id
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// Creates a lobby and starts its tick task.
    pub(crate) fn create_lobby(
        &self,
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
        let settings = LobbySettings {
            tick_period: self.config.tick_period(),
            empty_grace: self.config.empty_lobby_grace,
        };
        let id = self.registry.next_id();
        let lobby = Lobby::new(
            id,
            name,
            max_players,
            code,
            self.game.create(max_players),
            settings,
            Arc::clone(&self.registry),
        );
        let handle = lobby.handle();
        self.registry.insert(Arc::clone(&handle));
        self.tracker.spawn(lobby.run(self.cancel.child_token()));
        Ok(handle)
    }
}

/// The WebSocket limits: client messages are tiny, so a small read buffer (tungstenite's
/// 128 KiB default would cost 128 MB per 1,000 players), and messages and frames capped
/// at the protocol's limit. Writes go out on every flush; the write buffer is bounded.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
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
    let arena = |_max_players: u8| Box::new(arena::Arena::new()) as Box<dyn Game>;
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
    let shared = Arc::new(Shared {
        config,
        registry: Arc::new(Registry::default()),
        game,
        cancel: CancellationToken::new(),
        tracker: TaskTracker::new(),
        ws_config: ws_config(),
        stats: Stats::default(),
        next_player_id: AtomicU32::new(0),
    });
    info!(%addr, url = %format!("http://{addr}/"), "ticksync listening");
    tokio::select! {
        () = listener::accept_loop(listener, Arc::clone(&shared)) => {}
        () = shutdown => info!("shutting down"),
    }
    shared.cancel.cancel();
    shared.tracker.close();
    if tokio::time::timeout(shutdown_timeout, shared.tracker.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = shared.tracker.len(),
            "shutdown deadline passed with tasks still running"
        );
    }
    info!("stopped");
    Ok(())
}
