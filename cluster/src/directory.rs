//! One node's handle on the directory: registration and renewal, listings and lookups,
//! reservations and their redemption, quick-join, draining.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, ScriptInvocation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{DirectoryConfig, millis};
use crate::error::{Error, ReservationError};
use crate::metrics::{DirectoryMetrics, MetricsSnapshot};
use crate::scripts;
use crate::token::{RESERVATION_ID_LEN, ReservationToken, hex};

/// Lobby ids per node slot: a cluster id is `slot << 22 | local id`.
pub const SLOT_SPAN: u32 = 1 << 22;
/// The largest local lobby id a node may publish (ids must be 1..=this).
pub const MAX_LOCAL_LOBBY_ID: u32 = SLOT_SPAN - 1;
/// Local lobby ids from this one up are allocated by the directory, for the pending
/// lobbies quick-join opens (see [`Directory::quick_join`]); a node gives its own lobbies
/// ids below it.
pub const PENDING_LOBBY_BASE: u32 = 1 << 21;
/// Counted holds one renewal hands back at most (more wait for the next one).
const MAX_COUNTED_PER_RENEWAL: usize = 5_000;
/// Counted holds kept for renewals at most; beyond, a hold simply ends with its lease.
const MAX_COUNTED: usize = 65_536;
/// A pending lobby's name until its node publishes it with its own.
const PENDING_NAME: &str = "new lobby";
/// Node slots (1..=this); slot 0 is never given out, so single-node ids stay as they are.
pub const MAX_SLOTS: u32 = 1023;
/// Most lobbies one listing returns.
pub const MAX_PAGE: usize = 100;
/// Expired lobbies one clean-up removes at most.
const CLEANUP_BATCH: usize = 500;

/// The cluster-wide id of local lobby `local` on the node holding `slot` (both masked to
/// their bits: a slot is at most [`MAX_SLOTS`], a local id at most [`MAX_LOCAL_LOBBY_ID`]).
pub fn cluster_id(slot: u32, local: u32) -> u32 {
    ((slot & MAX_SLOTS) << 22) | (local & MAX_LOCAL_LOBBY_ID)
}

/// The slot and local id of a cluster-wide lobby id.
pub fn split_cluster_id(id: u32) -> (u32, u32) {
    (id >> 22, id & MAX_LOCAL_LOBBY_ID)
}

/// One of this node's lobbies as the node reports it at every renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyEntry {
    /// The node's own id for it (1..=[`MAX_LOCAL_LOBBY_ID`]).
    pub id: u32,
    /// Display name.
    pub name: String,
    /// Players in it now: the true count, written over the previous one every renewal.
    pub players: u16,
    /// Player cap.
    pub max_players: u16,
    /// Private lobbies are not listed; they are found by code.
    pub private: bool,
    /// The join code (canonical form), for private lobbies.
    pub code: Option<String>,
}

/// Where the renewal task gets this node's lobbies from (the server's registry).
pub trait LobbySource: Send + Sync + 'static {
    /// Every open lobby of this node, with its current player count.
    fn lobbies(&self) -> Vec<LobbyEntry>;
}

impl<F> LobbySource for F
where
    F: Fn() -> Vec<LobbyEntry> + Send + Sync + 'static,
{
    fn lobbies(&self) -> Vec<LobbyEntry> {
        self()
    }
}

/// A lobby's identity in the directory: the node and its local id. Never listed twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LobbyKey {
    /// The owning node.
    pub node: String,
    /// Its id on that node.
    pub lobby: u32,
}

impl LobbyKey {
    fn redis_key(&self) -> String {
        format!("{}/{}", self.node, self.lobby)
    }
}

/// A live lobby as every node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLobby {
    /// Node and local id.
    pub key: LobbyKey,
    /// Cluster-wide id (`slot << 22 | local id`), what a client names in `JoinLobby`.
    pub cluster_id: u32,
    /// Display name.
    pub name: String,
    /// Players at the owning node's last renewal.
    pub players: u16,
    /// Player cap.
    pub max_players: u16,
    /// Live, unredeemed (or just redeemed) reservations holding seats.
    pub reserved: u32,
    /// Whether it is private (only ever true from a lookup by code or id).
    pub private: bool,
}

/// A live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id.
    pub node: String,
    /// Where its players connect.
    pub public_url: String,
    /// Players on it (its last renewal).
    pub load: u32,
    /// Lobbies on it (its last renewal).
    pub lobbies: u32,
    /// Whether it is draining.
    pub draining: bool,
    /// When it started, its own clock, ms since the Unix epoch (informative only).
    pub started_ms: u64,
    /// Its slot: the high bits of its lobbies' cluster ids.
    pub slot: u32,
}

/// A seat held for one player (or a create ticket, which only nodes of the previous
/// version make: quick-join now opens a pending lobby instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The node that redeems it.
    pub node: String,
    /// Where the player connects (that node's public url).
    pub url: String,
    /// The lobby's local id on `node`; `None`: a create ticket (`node` is to create a
    /// lobby), made by a node of the previous version during a rolling upgrade.
    pub lobby: Option<u32>,
    /// The lobby's cluster id (0 when `lobby` is `None`).
    pub cluster_id: u32,
    /// Expiry, Redis time in ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// The signed token the player carries (see [`crate::token`]).
    pub token: Vec<u8>,
}

/// Join options as a reservation carries them: the key-value pairs of the request that
/// made it (`JoinLobby`, `QuickJoin`, `POST /api/matchmake`), in order. The directory
/// stores them as they are; the server checks their limits.
pub type JoinOptions = [(String, String)];

/// A redeemed reservation: the player may take its seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    /// The local lobby to seat the player in; `None`: create one (a create ticket of a
    /// node of the previous version).
    pub lobby: Option<u32>,
    /// `Some(seats)`: the lobby is a pending one that quick-join opened in the
    /// directory; this node opens it now, with id `lobby` and this many seats (unless a
    /// concurrent redemption already did).
    pub open: Option<u16>,
    /// The join options the reservation was made with (empty: none), read from Redis:
    /// the player never sent them to this node, so it cannot have changed them.
    pub options: Vec<(String, String)>,
    /// The hold's member in Redis (`<node>/<lobby>` and the reservation id), for
    /// [`Directory::release`].
    key: String,
    id: String,
}

/// What a clean-up removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct CleanupReport {
    /// Lobby entries whose lease was over.
    pub lobbies: u64,
    /// Node entries whose lease was over.
    pub nodes: u64,
}

/// One node's directory. Cheap to clone; every clone is the same node.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("node", &self.inner.config.node_id)
            .field("slot", &self.slot())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: DirectoryConfig,
    /// Shared by every call; reconnects by itself with backoff.
    con: ConnectionManager,
    source: Box<dyn LobbySource>,
    /// Set by `drain`: renewals mark every lobby draining.
    draining: AtomicBool,
    /// Set by `deregister`: renewals stop writing.
    gone: AtomicBool,
    /// This node's slot (0 until the first renewal).
    slot: AtomicU32,
    /// HMAC keys: the current cluster secret first, then the one before it.
    secrets: RwLock<Vec<Vec<u8>>>,
    /// Offered to Redis as the cluster secret if it has none (first node, or a fresh Redis).
    secret_offer: String,
    /// Redeemed seats whose players are now seated here ([`Directory::seated`]): the
    /// next renewal counts them as players and drops their holds in the same script.
    counted: std::sync::Mutex<Vec<(String, String)>>,
    /// Serialises renewals (so an older snapshot never lands after a newer one); holds
    /// the instant of the last successful renewal.
    renewing: tokio::sync::Mutex<Option<Instant>>,
    started_ms: u64,
    metrics: DirectoryMetrics,
}

/// The background renewal task. Dropping it stops the task too.
#[derive(Debug)]
pub struct Renewal {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Renewal {
    /// Stops renewing and waits for the task to end. The node's entries stay until their
    /// lease ends (call [`Directory::deregister`] first to remove them at once).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Debug, Deserialize)]
struct RenewReply {
    slot: u32,
    expired: u64,
    secret: String,
}

#[derive(Debug, Deserialize)]
struct LobbyReply {
    node: String,
    lobby: u32,
    gid: u32,
    name: String,
    players: u16,
    max: u16,
    private: bool,
    #[serde(default)]
    reserved: u32,
}

#[derive(Debug, Deserialize)]
struct SeatReply {
    err: Option<String>,
    kind: Option<String>,
    node: Option<String>,
    lobby: Option<u32>,
    gid: Option<u32>,
    url: Option<String>,
    expires: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct NodeReply {
    node: String,
    public_url: String,
    load: u32,
    lobbies: u32,
    draining: bool,
    started: u64,
    slot: u32,
}

#[derive(Debug, Deserialize)]
struct RedeemReply {
    err: Option<String>,
    #[serde(default)]
    options: String,
    #[serde(default)]
    pending: Option<u16>,
}

impl Directory {
    /// Connects to Redis, registers this node and its lobbies, and starts the renewal
    /// task. Fails if Redis cannot be reached now (cluster mode was asked for: the
    /// caller should exit with this error rather than run alone).
    pub async fn connect(
        config: DirectoryConfig,
        source: impl LobbySource,
    ) -> Result<(Directory, Renewal), Error> {
        config.validate()?;
        let client = redis::Client::open(config.redis_url.as_str())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.op_timeout))
            .set_response_timeout(Some(config.op_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(config.renew_interval);
        let con = tokio::time::timeout(
            config.op_timeout * 4,
            ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        .map_err(|_| Error::Timeout(config.op_timeout * 4))??;
        let mut offer = [0u8; 32];
        getrandom::fill(&mut offer).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0);
        let dir = Directory {
            inner: Arc::new(Inner {
                config,
                con,
                source: Box::new(source),
                draining: AtomicBool::new(false),
                gone: AtomicBool::new(false),
                slot: AtomicU32::new(0),
                secrets: RwLock::new(Vec::new()),
                counted: std::sync::Mutex::new(Vec::new()),
                secret_offer: hex(&offer),
                renewing: tokio::sync::Mutex::new(None),
                started_ms,
                metrics: DirectoryMetrics::default(),
            }),
        };
        dir.renew_now().await?;
        info!(
            node = %dir.node_id(),
            slot = dir.slot(),
            url = %dir.inner.config.public_url,
            "joined the cluster directory"
        );
        let renewal = dir.spawn_renewal();
        Ok((dir, renewal))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// This node's slot (the high bits of its lobbies' cluster ids). It can change only
    /// after the node lost its lease (a stall, or Redis lost its data).
    pub fn slot(&self) -> u32 {
        self.inner.slot.load(Ordering::Acquire)
    }

    /// The cluster id of this node's local lobby `local`.
    pub fn cluster_id_of(&self, local: u32) -> u32 {
        cluster_id(self.slot(), local)
    }

    /// Whether [`drain`](Self::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Renews this node's lease now and rewrites all of its lobbies (the background task
    /// does this every `renew_interval`; call it after creating or closing a lobby to
    /// publish the change at once).
    pub async fn renew_now(&self) -> Result<(), Error> {
        let mut last_ok = self.inner.renewing.lock().await;
        if self.inner.gone.load(Ordering::Acquire) {
            return Ok(());
        }
        let cfg = &self.inner.config;
        let draining = self.is_draining();
        // Taken before the lobbies: every hold here was seated before it was noted, so
        // the counts read next include its player.
        let counted: Vec<(String, String)> = {
            let mut c = self
                .inner
                .counted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let n = c.len().min(MAX_COUNTED_PER_RENEWAL);
            c.drain(..n).collect()
        };
        let lobbies: Vec<LobbyEntry> = self
            .inner
            .source
            .lobbies()
            .into_iter()
            .filter(|l| {
                let ok = (1..=MAX_LOCAL_LOBBY_ID).contains(&l.id);
                if !ok {
                    warn!(
                        lobby = l.id,
                        "lobby id out of the cluster's range; not published"
                    );
                }
                ok
            })
            .collect();
        let load: u32 = lobbies.iter().map(|l| u32::from(l.players)).sum();
        let record = serde_json::json!({
            "public_url": cfg.public_url,
            "load": load,
            "lobbies": lobbies.len(),
            "draining": draining,
            "started": self.inner.started_ms,
        });
        let mut inv = scripts::RENEW_SCRIPT.prepare_invoke();
        inv.arg(&cfg.key_prefix)
            .arg(&cfg.node_id)
            .arg(millis(cfg.lease))
            .arg(self.slot())
            .arg(record.to_string())
            .arg(&self.inner.secret_offer)
            .arg(if draining { "1" } else { "0" })
            .arg(MAX_SLOTS)
            .arg(lobbies.len());
        for l in &lobbies {
            inv.arg(l.id)
                .arg(&l.name)
                .arg(l.players)
                .arg(l.max_players)
                .arg(if l.private { "1" } else { "0" })
                .arg(l.code.as_deref().unwrap_or(""));
        }
        inv.arg(counted.len());
        for (key, id) in &counted {
            inv.arg(key).arg(id);
        }
        let m = &self.inner.metrics;
        let reply: RenewReply = match self.eval(&inv).await {
            Ok(r) => r,
            Err(e) => {
                DirectoryMetrics::add(&m.renewal_failures, 1);
                // Not dropped: the next renewal counts these players too. (Were they gone
                // meanwhile, their seats are free in the counts, and dropping is right.)
                self.note_counted(counted);
                return Err(e);
            }
        };
        let now = Instant::now();
        if let Some(prev) = *last_ok
            && now.duration_since(prev) > cfg.lease
        {
            DirectoryMetrics::add(&m.lease_lapses, 1);
            warn!(
                node = %cfg.node_id,
                since_ms = millis(now.duration_since(prev)),
                "lease had lapsed; re-registered this node and its lobbies"
            );
        }
        *last_ok = Some(now);
        let old_slot = self.inner.slot.swap(reply.slot, Ordering::AcqRel);
        if old_slot != 0 && old_slot != reply.slot {
            warn!(node = %cfg.node_id, old_slot, slot = reply.slot, "slot changed: lobby cluster ids changed");
        }
        self.install_secret(reply.secret.into_bytes());
        DirectoryMetrics::add(&m.renewals, 1);
        DirectoryMetrics::add(&m.reservations_expired, reply.expired);
        m.lobbies_published
            .store(lobbies.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Public live lobbies of every node, fullest first, ties by cluster id; at most
    /// `limit` (capped at [`MAX_PAGE`]). Draining nodes' lobbies are left out.
    pub async fn list_public(&self, limit: usize) -> Result<Vec<ListedLobby>, Error> {
        let mut inv = scripts::LIST_SCRIPT.prepare_invoke();
        inv.arg(&self.inner.config.key_prefix)
            .arg(limit.min(MAX_PAGE))
            .arg(self.inner.config.scan_limit);
        let list: Vec<LobbyReply> = self.eval(&inv).await?;
        Ok(list.into_iter().map(listed).collect())
    }

    /// A live public lobby by cluster id, unless its node is draining. Like `JoinLobby`
    /// on one node, an id never finds a private lobby: those are found by code.
    pub async fn lookup_id(&self, cluster_id: u32) -> Result<Option<ListedLobby>, Error> {
        self.lookup("gid", cluster_id.to_string()).await
    }

    /// A live private lobby by its code (canonical form, as the registry stores it),
    /// unless its node is draining.
    pub async fn lookup_code(&self, code: &str) -> Result<Option<ListedLobby>, Error> {
        self.lookup("code", code.to_owned()).await
    }

    /// A live lobby by its key (public or private), unless its node is draining.
    pub async fn lookup_key(&self, key: &LobbyKey) -> Result<Option<ListedLobby>, Error> {
        self.lookup("key", key.redis_key()).await
    }

    async fn lookup(&self, mode: &str, value: String) -> Result<Option<ListedLobby>, Error> {
        let mut inv = scripts::LOOKUP_SCRIPT.prepare_invoke();
        inv.arg(&self.inner.config.key_prefix).arg(mode).arg(value);
        let found: Option<LobbyReply> = self.eval(&inv).await?;
        Ok(found.map(listed))
    }

    /// Reserves a seat in `lobby` for one player, atomically: only if its players plus
    /// live reservations are under its cap. The seat returns when the reservation expires
    /// unredeemed. `options` travel with the reservation to the lobby's node
    /// ([`Redeemed::options`]).
    pub async fn reserve(
        &self,
        lobby: &LobbyKey,
        options: &JoinOptions,
    ) -> Result<Reservation, Error> {
        self.reserve_by("key", lobby.redis_key(), options).await
    }

    /// [`reserve`](Self::reserve) a seat in the public lobby with this cluster id (what
    /// `JoinLobby` names), in one round trip.
    pub async fn reserve_id(
        &self,
        cluster_id: u32,
        options: &JoinOptions,
    ) -> Result<Reservation, Error> {
        self.reserve_by("gid", cluster_id.to_string(), options)
            .await
    }

    /// [`reserve`](Self::reserve) a seat in the private lobby with this code (canonical
    /// form), in one round trip.
    pub async fn reserve_code(
        &self,
        code: &str,
        options: &JoinOptions,
    ) -> Result<Reservation, Error> {
        self.reserve_by("code", code.to_owned(), options).await
    }

    async fn reserve_by(
        &self,
        mode: &str,
        value: String,
        options: &JoinOptions,
    ) -> Result<Reservation, Error> {
        let id = new_reservation_id()?;
        let cfg = &self.inner.config;
        let mut inv = scripts::RESERVE_SCRIPT.prepare_invoke();
        inv.arg(&cfg.key_prefix)
            .arg(mode)
            .arg(value)
            .arg(hex(&id))
            .arg(millis(cfg.reservation_ttl))
            .arg(millis(cfg.lease))
            .arg(options_json(options)?);
        let reply: SeatReply = self.eval(&inv).await?;
        self.seat(id, reply)
    }

    /// Quick-join across the cluster: a seat in the fullest public live lobby with room
    /// (counting live reservations), or else a seat in a new *pending* lobby of
    /// `quick_lobby_size` seats on the least-loaded live node that is not draining. One
    /// script: two concurrent quick-joins can never both take the last seat, and the new
    /// lobby is listed at once, so the quick-joins right behind fill it instead of each
    /// opening one. Its node opens it when the first seat is redeemed there
    /// ([`Redeemed::open`]); never opened, it expires with its last reservation.
    /// `options` travel with the reservation (and are a pending lobby's creation
    /// options).
    pub async fn quick_join(&self, options: &JoinOptions) -> Result<Reservation, Error> {
        let id = new_reservation_id()?;
        let cfg = &self.inner.config;
        let mut inv = scripts::QUICK_SCRIPT.prepare_invoke();
        inv.arg(&cfg.key_prefix)
            .arg(hex(&id))
            .arg(millis(cfg.reservation_ttl))
            .arg(millis(cfg.lease))
            .arg(cfg.scan_limit)
            .arg(options_json(options)?)
            .arg(cfg.quick_lobby_size)
            .arg(PENDING_NAME);
        let reply: SeatReply = self.eval(&inv).await?;
        self.seat(id, reply)
    }

    fn seat(&self, id: [u8; RESERVATION_ID_LEN], reply: SeatReply) -> Result<Reservation, Error> {
        if let Some(err) = reply.err {
            return Err(match err.as_str() {
                "NOT_FOUND" => Error::LobbyNotFound,
                "FULL" => Error::LobbyFull,
                "DRAINING" => Error::Draining,
                "NO_NODE" => Error::NoNode,
                other => Error::Protocol(format!("reservation refused with {other:?}")),
            });
        }
        let bad = || Error::Protocol("incomplete reservation reply".into());
        let node = reply.node.ok_or_else(bad)?;
        let url = reply.url.ok_or_else(bad)?;
        let expires_at_ms = reply.expires.ok_or_else(bad)?;
        let local = reply.lobby.ok_or_else(bad)?;
        let lobby = match reply.kind.as_deref() {
            Some("join") => Some(local),
            Some("create") => None,
            _ => return Err(bad()),
        };
        let token = ReservationToken {
            id,
            expires_at_ms,
            lobby: local,
            node: node.clone(),
        };
        let secret = self.current_secret();
        DirectoryMetrics::add(&self.inner.metrics.reservations_made, 1);
        Ok(Reservation {
            node,
            url,
            lobby,
            cluster_id: reply.gid.unwrap_or(0),
            expires_at_ms,
            token: token.encode(&secret),
        })
    }

    /// Redeems a reservation token a player brought to this node: checks its signature
    /// and that it names this node, then uses it up in Redis (a second redeem fails).
    /// The seat stays held for one lease more, until this node's next renewal counts the
    /// player: seat the player before then, or [`release`](Self::release) it if the
    /// player is not seated. The answer carries the reservation's join options.
    pub async fn redeem(&self, token: &[u8]) -> Result<Redeemed, Error> {
        let secrets = self.secrets();
        let token = match ReservationToken::decode(token, &secrets) {
            Err(ReservationError::BadSignature) => {
                // Redis may have a new secret that this node's last renewal did not see.
                self.refresh_secret().await?;
                ReservationToken::decode(token, &self.secrets())?
            }
            other => other?,
        };
        if token.node != self.inner.config.node_id {
            return Err(ReservationError::WrongNode.into());
        }
        let cfg = &self.inner.config;
        let key = LobbyKey {
            node: token.node.clone(),
            lobby: token.lobby,
        };
        let id = token.id_hex();
        let mut inv = scripts::REDEEM_SCRIPT.prepare_invoke();
        inv.arg(&cfg.key_prefix)
            .arg(&id)
            .arg(key.redis_key())
            .arg(millis(cfg.lease));
        let reply: RedeemReply = self.eval(&inv).await?;
        match reply.err.as_deref() {
            None => {
                DirectoryMetrics::add(&self.inner.metrics.reservations_used, 1);
                let options = if reply.options.is_empty() {
                    Vec::new()
                } else {
                    serde_json::from_str(&reply.options).map_err(|e| {
                        Error::Protocol(format!("join options {:?}: {e}", reply.options))
                    })?
                };
                Ok(Redeemed {
                    lobby: (token.lobby != 0).then_some(token.lobby),
                    open: reply.pending,
                    options,
                    key: key.redis_key(),
                    id,
                })
            }
            Some("GONE") => Err(ReservationError::Expired.into()),
            Some("USED") => Err(ReservationError::AlreadyUsed.into()),
            Some("MISMATCH") => Err(ReservationError::Mismatch.into()),
            Some(other) => Err(Error::Protocol(format!("redeem refused with {other:?}"))),
        }
    }

    /// The player of a [`redeem`](Self::redeem)ed reservation took its seat here (the
    /// lobby's count, which this node publishes, includes it now): the next renewal drops
    /// the hold as it writes that count, so the seat is counted once, not twice until
    /// the hold ends. Call it only after the player's seat is claimed in the lobby.
    pub fn seated(&self, redeemed: &Redeemed) {
        self.note_counted(vec![(redeemed.key.clone(), redeemed.id.clone())]);
    }

    fn note_counted(&self, holds: Vec<(String, String)>) {
        let mut c = self
            .inner
            .counted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let room = MAX_COUNTED.saturating_sub(c.len());
        c.extend(holds.into_iter().take(room));
    }

    /// Gives back the seat a [`redeem`](Self::redeem)ed reservation holds, at once: its
    /// player was not seated (the game refused the join, or the lobby closed meanwhile).
    /// Without this the seat stays taken until the hold ends (one lease). Answers
    /// whether a hold was still there to release.
    pub async fn release(&self, redeemed: &Redeemed) -> Result<bool, Error> {
        let mut inv = scripts::RELEASE_SCRIPT.prepare_invoke();
        inv.arg(&self.inner.config.key_prefix)
            .arg(&redeemed.key)
            .arg(&redeemed.id);
        #[derive(Deserialize)]
        struct Reply {
            released: u32,
        }
        let reply: Reply = self.eval(&inv).await?;
        let released = reply.released > 0;
        if released {
            DirectoryMetrics::add(&self.inner.metrics.reservations_released, 1);
        }
        Ok(released)
    }

    /// Marks this node draining, at once: its lobbies leave listings, lookups and
    /// quick-join, and no new reservation lands on it. They stay in the directory (for
    /// operators) until [`deregister`](Self::deregister).
    pub async fn drain(&self) -> Result<(), Error> {
        self.inner.draining.store(true, Ordering::Release);
        info!(node = %self.node_id(), "draining: lobbies leave the directory's listings");
        self.renew_now().await
    }

    /// Removes this node and all its lobbies from the directory (before the node exits);
    /// later renewals write nothing.
    pub async fn deregister(&self) -> Result<(), Error> {
        let _renewing = self.inner.renewing.lock().await;
        self.inner.gone.store(true, Ordering::Release);
        let mut inv = scripts::DEREGISTER_SCRIPT.prepare_invoke();
        inv.arg(&self.inner.config.key_prefix)
            .arg(&self.inner.config.node_id);
        #[derive(Deserialize)]
        struct Reply {
            lobbies: u64,
        }
        let reply: Reply = self.eval(&inv).await?;
        info!(node = %self.node_id(), lobbies = reply.lobbies, "left the cluster directory");
        Ok(())
    }

    /// Live nodes (for operators and `/admin/api/overview`).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, Error> {
        let mut inv = scripts::NODES_SCRIPT.prepare_invoke();
        inv.arg(&self.inner.config.key_prefix);
        let nodes: Vec<NodeReply> = self.eval(&inv).await?;
        Ok(nodes
            .into_iter()
            .map(|n| NodeInfo {
                node: n.node,
                public_url: n.public_url,
                load: n.load,
                lobbies: n.lobbies,
                draining: n.draining,
                started_ms: n.started,
                slot: n.slot,
            })
            .collect())
    }

    /// Removes entries whose lease is over. Readers never see them anyway; this frees
    /// Redis memory. The renewal task runs it every `cleanup_every` renewals.
    pub async fn cleanup(&self) -> Result<CleanupReport, Error> {
        let mut inv = scripts::CLEANUP_SCRIPT.prepare_invoke();
        inv.arg(&self.inner.config.key_prefix).arg(CLEANUP_BATCH);
        self.eval(&inv).await
    }

    fn spawn_renewal(&self) -> Renewal {
        let cancel = CancellationToken::new();
        let dir = self.clone();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let cfg = &dir.inner.config;
            let mut tick = tokio::time::interval(cfg.renew_interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick.tick().await;
            let mut count: u32 = 0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    result = dir.renew_now() => if let Err(e) = result {
                        warn!(node = %cfg.node_id, error = %e, "directory renewal failed; retrying");
                    }
                }
                count = count.wrapping_add(1);
                if count % cfg.cleanup_every == 0 {
                    match dir.cleanup().await {
                        Ok(r) if r.lobbies + r.nodes > 0 => {
                            debug!(
                                lobbies = r.lobbies,
                                nodes = r.nodes,
                                "removed expired entries"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => debug!(error = %e, "directory clean-up failed"),
                    }
                }
            }
            debug!(node = %cfg.node_id, "directory renewal stopped");
        });
        Renewal {
            cancel,
            task: Some(task),
        }
    }

    /// Runs one script with the operation timeout and parses its JSON answer.
    async fn eval<T: DeserializeOwned>(&self, inv: &ScriptInvocation<'_>) -> Result<T, Error> {
        let m = &self.inner.metrics;
        let mut con = self.inner.con.clone();
        let limit = self.inner.config.op_timeout;
        let result: Result<String, Error> =
            match tokio::time::timeout(limit, inv.invoke_async::<String>(&mut con)).await {
                Err(_) => Err(Error::Timeout(limit)),
                Ok(Err(e)) => Err(redis_error(e)),
                Ok(Ok(s)) => Ok(s),
            };
        match result {
            Ok(s) => {
                m.redis_up.store(true, Ordering::Relaxed);
                serde_json::from_str(&s).map_err(|e| Error::Protocol(format!("{e}: {s}")))
            }
            Err(e) => {
                DirectoryMetrics::add(&m.redis_errors, 1);
                if connection_lost(&e) {
                    m.redis_up.store(false, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    async fn refresh_secret(&self) -> Result<(), Error> {
        let mut con = self.inner.con.clone();
        let key = format!("{}secret", self.inner.config.key_prefix);
        let limit = self.inner.config.op_timeout;
        let secret: Option<Vec<u8>> =
            match tokio::time::timeout(limit, redis::cmd("GET").arg(key).query_async(&mut con))
                .await
            {
                Err(_) => return Err(Error::Timeout(limit)),
                Ok(r) => r.map_err(redis_error)?,
            };
        if let Some(s) = secret {
            self.install_secret(s);
        }
        Ok(())
    }

    fn install_secret(&self, secret: Vec<u8>) {
        let mut keys = self
            .inner
            .secrets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.first() != Some(&secret) {
            keys.insert(0, secret);
            keys.truncate(2);
        }
    }

    fn secrets(&self) -> Vec<Vec<u8>> {
        self.inner
            .secrets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn current_secret(&self) -> Vec<u8> {
        self.secrets().into_iter().next().unwrap_or_default()
    }
}

fn redis_error(e: RedisError) -> Error {
    Error::Redis(e)
}

/// Whether `e` means Redis is out of reach (not a refused command).
fn connection_lost(e: &Error) -> bool {
    match e {
        Error::Timeout(_) => true,
        Error::Redis(r) => {
            r.is_io_error()
                || r.is_connection_dropped()
                || r.is_connection_refusal()
                || r.is_timeout()
        }
        _ => false,
    }
}

fn listed(l: LobbyReply) -> ListedLobby {
    ListedLobby {
        key: LobbyKey {
            node: l.node,
            lobby: l.lobby,
        },
        cluster_id: l.gid,
        name: l.name,
        players: l.players,
        max_players: l.max,
        reserved: l.reserved,
        private: l.private,
    }
}

/// Join options as the scripts store them: a JSON array of `[key, value]` pairs, or
/// the empty string for none (nothing is written then).
fn options_json(options: &JoinOptions) -> Result<String, Error> {
    if options.is_empty() {
        return Ok(String::new());
    }
    serde_json::to_string(options).map_err(|e| Error::Protocol(format!("join options: {e}")))
}

fn new_reservation_id() -> Result<[u8; RESERVATION_ID_LEN], Error> {
    let mut id = [0u8; RESERVATION_ID_LEN];
    getrandom::fill(&mut id).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_split_back() {
        assert_eq!(cluster_id(0, 7), 7);
        let id = cluster_id(MAX_SLOTS, MAX_LOCAL_LOBBY_ID);
        assert_eq!(id, u32::MAX);
        assert_eq!(split_cluster_id(id), (MAX_SLOTS, MAX_LOCAL_LOBBY_ID));
        assert_eq!(split_cluster_id(cluster_id(5, 9)), (5, 9));
    }
}
