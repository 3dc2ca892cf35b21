//! # ticksync server
//!
//! An authoritative multiplayer game state server: players connect over WebSocket, meet
//! in lobbies, and each lobby runs a fixed-tick simulation whose state every player
//! receives as a snapshot every tick.
//!
//! ## Data flow
//!
//! The folders follow a byte from the socket to the game and back:
//!
//! ```text
//!  TCP ──► net/listener ──► net/http ── GET /ws (101) ──► session/ (one task per player)
//!          accept; caps in   demo client, /api,             │ reads the socket: decode,
//!          net/admission     /healthz, net/admin,           │ validate; Input: into the
//!                            net/metrics                    │ seat's mailbox (newest wins)
//!                                                           ▼
//!              lobby/handle: one mailbox per seat ──► lobby/task (one task per lobby)
//!              (inputs, messages, leave), a         owns the game, a Box<dyn Sim> (no
//!              bounded join queue of claimed        Mutex): step, write the State,
//!              seats, close                         encode what all see ONCE per tick
//!                                                       ▼
//!  socket ◄── wire/outbox (per connection) ◄── wire/broadcast: each player's own part
//!             one non-blocking send per         + the shared bytes, written by the tick
//!             player per tick; what waits is    task itself (frames: wire/frame)
//!             finished by the session
//! ```
//!
//! - `net/` faces the network: `listener` accepts connections, `admission` counts them
//!   against the caps, `http` serves the embedded demo client, `/api/game` (which game
//!   this server runs, its title and schema hash, before a client joins), `/api/lobbies`,
//!   `/healthz`, `/readyz` and upgrades `/ws`; `admin` is the operators' API,
//!   `metrics` renders `/metrics`.
//! - `session/` is one task per player: it reads the socket, decodes client messages,
//!   answers them, and finishes writes the socket could not take at once.
//! - `input` holds the per-connection rate limits (inputs and game messages are decoded
//!   and clamped by the lobby's schema); `auth` the Origin
//!   allowlist and signed join tokens (reusable, or single-use with a nonce);
//!   `net/quota` what one address may do (create lobbies, fail guesses); `fd_limit` the
//!   descriptor limit the connection caps are sized to.
//! - `directory/` holds the server's directories: `registry` of lobbies (by id and
//!   private code, the listing, quick-join's pick), `players` by session token (resume,
//!   kick).
//! - `lobby/` is one lobby: `handle` is what everyone else sees and the only way in
//!   (claimed joins, per-seat mailboxes, close); `task` is its fixed tick, which owns the
//!   game (a [`game::Sim`]).
//! - `wire/` is the way out: `frame` builds WebSocket frames, `outbox` is a connection's
//!   way out shared by its session and its lobby (frames whole and in order; what the
//!   socket does not take waits, events in order, the newest snapshot only), `broadcast`
//!   is the tick frame encoded once and delivered to every player.
//! - `shared` is what every task shares (configuration, directories, counts, shutdown);
//!   `stats` the server-wide counters; `config` the settings; `error` the crate's error.
//!
//! Modules depend downwards only (no import cycles): `net` and `session` on `shared`,
//! `shared` on `directory`, `lobby` and `net/admission`, `directory` on `lobby`, `lobby`
//! on `wire` and `game`.
//!
//! Game rules live behind [`game::Game`] (the Game API: typed state, inputs, messages,
//! events, hooks); [`games`] holds the built-in games (`--game arena|hill|shooter`). Start a
//! server with [`run`] (the arena) or [`run_with_game`] (your game, from
//! [`game::factory`]).

pub mod auth;
pub mod config;
mod directory;
mod error;
pub mod fd_limit;
pub mod game;
pub mod games;
pub mod input;
mod lobby;
mod net;
mod session;
mod shared;
mod stats;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

pub use crate::config::Config;
pub use crate::error::Error;

use crate::game::GameFactory;
use crate::shared::Shared;

/// Runs the server with the default game (arena) until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let arena = games::BuiltinGame::Arena.factory()?;
    run_with_game(listener, config, arena, shutdown).await
}

/// Runs the server with the given game until `shutdown` resolves (or
/// `POST /admin/api/drain` asks): drains first (no new players; lobbies play on for up to
/// `--drain-timeout`), then stops accepting, tells every client, lets lobbies finish
/// their tick, and waits at most `--shutdown-timeout` for sessions and lobbies to end.
pub async fn run_with_game(
    listener: TcpListener,
    config: Config,
    game: Arc<dyn GameFactory>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(Error::Listener)?;
    let shutdown_timeout = config.shutdown_timeout;
    let resume_grace = config.resume_grace;
    let drain_timeout = config.drain_timeout;
    let shared = Shared::new(config, game);
    if let Some(url) = shared.config.redis_url.clone() {
        // Cluster mode was asked for: without the directory this node would run alone
        // and unseen, so failing to join it is fatal.
        let public_url = shared.config.public_url.clone().unwrap_or_else(|| {
            if addr.ip().is_unspecified() {
                warn!(%addr, "--public-url not set and the bind address is unspecified: other nodes will send players to loopback");
                format!("ws://127.0.0.1:{}/ws", addr.port())
            } else {
                format!("ws://{addr}/ws")
            }
        });
        let dir_config = directory::cluster::directory_config(&shared.config, &url, public_url)?;
        let cluster = directory::cluster::Cluster::join(
            dir_config,
            Arc::clone(&shared.registry),
            &shared.players,
        )
        .await?;
        info!(
            node = cluster.node_id(),
            slot = cluster.slot(),
            "cluster mode"
        );
        shared.set_cluster(cluster);
    }
    let caps = shared.conns.limits();
    info!(%addr, url = %format!("http://{addr}/"), "ticksync listening");
    info!(
        fd_limit = ?fd_limit::current(),
        max_connections = caps.max_connections,
        max_connections_per_ip = caps.max_per_ip,
        "connection caps in force (the configured ones, sized to the descriptor limit)"
    );
    if caps.max_connections < shared.config.max_connections
        || caps.max_per_ip < shared.config.max_connections_per_ip
    {
        warn!(
            configured_max_connections = shared.config.max_connections,
            configured_max_connections_per_ip = shared.config.max_connections_per_ip,
            "the descriptor limit lowered the connection caps; raise `ulimit -n` (LimitNOFILE) for more"
        );
    }
    let accept = tokio::spawn(net::listener::accept_loop(listener, Arc::clone(&shared)));
    shared
        .tracker
        .spawn(sweep_players(Arc::clone(&shared), resume_grace));

    tokio::select! {
        () = shutdown => {}
        () = shared.drain_requested.cancelled() => {}
    }
    // Drain: /readyz says 503, new players are turned away and this node's lobbies leave
    // the cluster's listings; players in lobbies play on until their lobbies are empty
    // or `--drain-timeout` runs out. Then everyone still connected is told and closed,
    // and every lobby finishes its tick.
    shared.start_draining();
    if let Some(cluster) = shared.cluster() {
        cluster.drain().await;
    }
    if !drain_timeout.is_zero() {
        info!(timeout = ?drain_timeout, "draining: waiting for lobbies to empty");
        let emptied = tokio::time::timeout(drain_timeout, lobbies_empty(&shared)).await;
        if emptied.is_err() {
            warn!(
                players = shared
                    .registry
                    .handles()
                    .iter()
                    .map(|h| u32::from(h.players()))
                    .sum::<u32>(),
                "drain timeout: closing the players still here"
            );
        }
    }
    info!("shutting down");
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
    // The lobbies are gone: so are their directory entries, before the process is.
    if let Some(cluster) = shared.cluster() {
        cluster.leave().await;
    }
    shared.stop.cancel();
    let _ = accept.await;
    shared.conn_tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), shared.conn_tracker.wait()).await;
    info!("stopped");
    Ok(())
}

/// Resolves once no lobby has a player seated or on its way.
async fn lobbies_empty(shared: &Shared) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        if shared.registry.handles().iter().all(|h| h.claimed() == 0) {
            return;
        }
    }
}

/// Forgets players whose resume grace ran out, so that tokens do not pile up, and the
/// per-address quotas and the nonces that have nothing left to remember.
async fn sweep_players(shared: Arc<Shared>, grace: Duration) {
    let mut every = tokio::time::interval(grace.max(Duration::from_secs(1)) / 2);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = every.tick() => {
                let forgotten = shared.players.sweep(grace);
                shared.lobby_quota.sweep();
                shared.guesses.sweep();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                shared.nonces.sweep(now);
                if forgotten > 0 {
                    tracing::debug!(forgotten, "expired sessions forgotten");
                }
            }
        }
    }
}
