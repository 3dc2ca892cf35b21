//! What every task of the server shares: the configuration, the directories of lobbies
//! and players, the connection counts, the counters and the shutdown signals.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ticksync_protocol::limits::MAX_CLIENT_MESSAGE_BYTES;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Nonces;
use crate::config::Config;
use crate::directory::cluster::Cluster;
use crate::directory::players::Players;
use crate::directory::registry::{self, Registry};
use crate::game::{GameFactory, GameOptions, LobbySpec};
use crate::lobby::{Lobby, LobbyEnv, LobbyHandle};
use crate::net::admission::{self, ConnCounts, ConnSlot};
use crate::net::quota::{Guesses, LobbyQuota, OpenLobby, QuotaRefusal};
use crate::stats::Stats;

/// What every task of the server shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Shared with the cluster directory's renewal, which publishes its lobbies.
    pub(crate) registry: Arc<Registry>,
    pub(crate) players: Players,
    pub(crate) conns: Arc<ConnCounts>,
    /// Lobby creation per address.
    pub(crate) lobby_quota: Arc<LobbyQuota>,
    /// Failed guesses per address.
    pub(crate) guesses: Guesses,
    /// Nonces of single-use join tokens already used.
    pub(crate) nonces: Nonces,
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
    pub(crate) stats: Arc<Stats>,
    /// Cluster mode: this node in the cluster's directory (set once, before accepting).
    cluster: OnceLock<Arc<Cluster>>,
    /// Fired by `POST /admin/api/drain`: the node drains as on SIGTERM.
    pub(crate) drain_requested: CancellationToken,
    draining: AtomicBool,
    next_conn: AtomicU64,
    /// When the server started.
    pub(crate) started: tokio::time::Instant,
}

impl Shared {
    pub(crate) fn new(config: Config, game: Arc<dyn GameFactory>) -> Arc<Self> {
        Arc::new(Shared {
            registry: Arc::default(),
            players: Players::default(),
            conns: Arc::new(ConnCounts::new(&config, crate::fd_limit::current())),
            lobby_quota: LobbyQuota::new(
                config.lobby_creates_per_minute,
                config.max_lobbies_per_ip,
            ),
            guesses: Guesses::new(config.auth_failures_per_minute),
            nonces: Nonces::default(),
            config,
            game,
            cancel: CancellationToken::new(),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            conn_tracker: TaskTracker::new(),
            ws_config: ws_config(),
            stats: Arc::default(),
            cluster: OnceLock::new(),
            drain_requested: CancellationToken::new(),
            draining: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            started: tokio::time::Instant::now(),
        })
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a new connection from `ip` against the caps; None past their hard margin.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<ConnSlot> {
        admission::admit(&self.conns, ip)
    }

    /// Cluster mode: this node's place in the cluster (None: a single node).
    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// Enters cluster mode (once, before the listener accepts).
    pub(crate) fn set_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// Shutdown begins: `/readyz` answers 503, newcomers are turned away.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Creates a lobby for a client at `owner` (its address key) and starts its tick
    /// task. CreateLobby (`quick` false) counts against the owner's lobby quota and may
    /// not take the share of `--max-lobbies` kept for QuickJoin (`quick` true).
    pub(crate) fn create_lobby(
        self: &Arc<Self>,
        name: String,
        max_players: u16,
        private: bool,
        options: GameOptions,
        owner: IpAddr,
        quick: bool,
    ) -> Result<Arc<LobbyHandle>, CreateRefused> {
        let max = self.config.max_lobbies;
        let reserve = if quick {
            0
        } else {
            (max * usize::from(self.config.quick_join_reserve_percent)).div_ceil(100)
        };
        if self.registry.len() >= max.saturating_sub(reserve) {
            return Err(CreateRefused::ServerFull);
        }
        // QuickJoin creates only when no public lobby has room, so its lobbies fill
        // with players before there are more of them: not counted against the address.
        let open = if quick {
            None
        } else {
            Some(
                self.lobby_quota
                    .create(owner)
                    .map_err(CreateRefused::Quota)?,
            )
        };
        let code = if private {
            Some(registry::new_code().map_err(|_| CreateRefused::NoRandomness)?)
        } else {
            None
        };
        let spec = LobbySpec {
            name,
            max_players,
            private,
            options,
        };
        self.start_lobby(spec, code, None, open)
    }

    /// Cluster mode: opens the pending lobby `id` that quick-join made in the directory
    /// (its seats already reserved there), or answers the one a concurrent redemption
    /// opened. Counts against `--max-lobbies` like a QuickJoin lobby, not any quota.
    pub(crate) fn open_pending_lobby(
        self: &Arc<Self>,
        id: u32,
        name: String,
        max_players: u16,
        options: GameOptions,
    ) -> Result<Arc<LobbyHandle>, CreateRefused> {
        if let Some(open) = self.registry.get(id) {
            return Ok(open);
        }
        if self.registry.len() >= self.config.max_lobbies {
            return Err(CreateRefused::ServerFull);
        }
        let spec = LobbySpec {
            name,
            max_players,
            private: false,
            options,
        };
        self.start_lobby(spec, None, Some(id), None)
    }

    /// Makes the lobby's game and starts its tick task; `id`: the id it must have (if a
    /// lobby with it opened meanwhile, that one is answered and nothing is started).
    fn start_lobby(
        self: &Arc<Self>,
        spec: LobbySpec,
        code: Option<String>,
        id: Option<u32>,
        open: Option<OpenLobby>,
    ) -> Result<Arc<LobbyHandle>, CreateRefused> {
        let game = self.game.create(&spec).map_err(CreateRefused::Game)?;
        let id = id.unwrap_or_else(|| self.registry.next_id());
        let env = LobbyEnv {
            tick_period: self.config.tick_period(),
            empty_grace: self.config.empty_lobby_grace,
            abandoned_grace: self.config.abandoned_lobby_grace,
            resume_grace: self.config.resume_grace,
            stats: Arc::clone(&self.stats),
        };
        let lobby = Lobby::new(id, spec, code, game, env);
        let handle = lobby.handle();
        if let Err(existing) = self.registry.insert_new(Arc::clone(&handle)) {
            return Ok(existing);
        }
        if let Some(cluster) = self.cluster() {
            cluster.lobby_changed();
        }
        let span = tracing::info_span!("lobby", id, name = %handle.name());
        let cancel = self.cancel.child_token();
        let shared = Arc::clone(self);
        let registered = Arc::clone(&handle);
        self.tracker.spawn(tracing::Instrument::instrument(
            async move {
                lobby.run(cancel).await;
                shared.registry.remove(&registered);
                if let Some(cluster) = shared.cluster() {
                    cluster.lobby_changed();
                }
                drop(open);
            },
            span,
        ));
        Ok(handle)
    }
}

/// Why a lobby was not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreateRefused {
    /// The server is at its lobby cap (for CreateLobby: at the QuickJoin reserve).
    ServerFull,
    /// The client's address is over its lobby quota.
    Quota(QuotaRefusal),
    /// No code could be drawn.
    NoRandomness,
    /// The game refused the creation options, for this reason.
    Game(String),
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
