//! Cluster mode (`--redis-url`): this node's place in the cluster's directory
//! (`ticksync-cluster`, in Redis), and the routing of joins that it makes possible.
//!
//! - The node registers at start (Redis unreachable: the server does not start), renews
//!   every third of `--cluster-lease` with the true player count of every lobby, and
//!   publishes a lobby that opens or closes at once (a coalescing publisher task).
//! - Every join goes through the directory while Redis answers, the node's own lobbies
//!   included: a seat is reserved atomically in Redis first, so a player sent here from
//!   another node never finds its reserved seat taken by a local join. A reservation for
//!   a lobby here is redeemed at once and the player seated; one for another node is
//!   answered with a redirect (the other node's URL and the signed reservation).
//! - Quick-join with no room anywhere gets a seat in a *pending* lobby that the directory
//!   made on the least-loaded node (listed at once, so the quick-joins right behind it
//!   fill it rather than each opening one); the first redemption on that node opens the
//!   lobby with the directory's id and seats ([`Routed::Open`]), later ones enter it.
//! - A redeemed seat stays held in Redis until the player is in the lobby's count: the
//!   session tells [`Cluster::seated`] once the lobby claimed the seat, and the next
//!   renewal writes the count and drops the hold in one script.
//! - Join options travel with the reservation, in Redis (`ticksync_cluster`'s
//!   `P:rsvopt:<id>`), never through the client: the node that reserves writes the
//!   options of the request (`JoinLobby`, `QuickJoin`, `POST /api/matchmake`), the
//!   lobby's node reads them when the player redeems, so the game there sees exactly
//!   what was asked and a player cannot alter them on the way. A redeemed seat whose
//!   player is not seated (the game refused the join) is given back at once.
//! - Redis lost while running: lobbies, players and local joins go on as on a single
//!   node; requests that need another node are refused (`Unavailable`); the renewal task
//!   re-registers everything within a renewal of Redis coming back.
//!
//! The session turns a [`Routed`] into messages; this module knows nothing of sockets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ticksync_cluster::{
    Directory, DirectoryConfig, Error as DirError, LobbyEntry, MAX_LOCAL_LOBBY_ID, MAX_PAGE,
    MetricsSnapshot, NodeInfo, Redeemed, Renewal, Reservation, ReservationError, split_cluster_id,
};
use ticksync_protocol::join_code::normalize;
use ticksync_protocol::limits::MAX_LISTED_LOBBIES;
use ticksync_protocol::{GameOptions, LobbyInfo, SessionToken};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::directory::players::Players;
use crate::directory::registry::Registry;
use crate::lobby::LobbyHandle;

/// How old a cluster-wide listing may be before it is asked for again: a storm of
/// listings costs Redis one script per this, not one each.
const LISTING_TTL: Duration = Duration::from_millis(250);
/// Least time between two publications of lobbies opening or closing.
const PUBLISH_GAP: Duration = Duration::from_millis(50);

/// What a player asked to join.
#[derive(Debug, Clone)]
pub(crate) enum Want {
    /// A public lobby by (cluster) id.
    Id(u32),
    /// A private lobby by join code (as typed: forgiving case, spaces and the dash).
    Code(String),
    /// The fullest public lobby with room anywhere, or a new one.
    Quick,
    /// The lobby of a reservation another node made (its string form).
    Reserved(String),
}

/// A seat this node redeemed in the directory, held there until the next renewal
/// counts the player; [`Cluster::release`] it if the player is not seated.
#[derive(Debug)]
pub(crate) struct Held(Redeemed);

impl Held {
    /// The join options the reservation was made with (by whichever node made it).
    pub(crate) fn options(&self) -> GameOptions {
        GameOptions(self.0.options.clone())
    }
}

/// Where a join goes.
#[derive(Debug)]
pub(crate) enum Routed {
    /// Into this local lobby; `held`: the seat the directory holds for the player
    /// (`None` for a lobby opened here since the last publication, or while Redis does
    /// not answer).
    Local {
        /// The lobby.
        handle: Arc<LobbyHandle>,
        /// The directory's hold on the seat.
        held: Option<Held>,
    },
    /// Quick-join: create a lobby on this node: the directory knows no node to open one
    /// on (this node is not in it yet), or a node of the previous version made a create
    /// ticket for this one (a rolling upgrade); `held`: that ticket, if one was redeemed.
    Create {
        /// The directory's hold on the ticket.
        held: Option<Held>,
    },
    /// Quick-join: open the pending lobby the directory made for this node (its seats
    /// already counted there) with this id and seats, or enter it if a concurrent
    /// redemption already opened it.
    Open {
        /// The lobby's id on this node (cluster id).
        id: u32,
        /// Its seats.
        seats: u16,
        /// The directory's hold on the player's seat in it.
        held: Held,
    },
    /// To another node: connect to `url` and present `reservation` (`JoinReserved`).
    Redirect {
        /// The node's public WebSocket URL.
        url: String,
        /// The reservation, in its string form ([`reservation_string`]).
        reservation: String,
    },
    /// Refused.
    Refused(Refusal),
    /// The directory did not answer (Redis down or slow): do what a single node does.
    Alone,
}

impl Routed {
    /// A local lobby with no hold in the directory.
    fn local(handle: Arc<LobbyHandle>) -> Routed {
        Routed::Local { handle, held: None }
    }

    /// The join options the directory kept with the redeemed reservation (`JoinReserved`:
    /// the options of the request that reserved the seat, on whichever node); None if
    /// nothing was redeemed.
    pub(crate) fn reserved_options(&self) -> Option<GameOptions> {
        match self {
            Routed::Local { held, .. } | Routed::Create { held } => {
                held.as_ref().map(Held::options)
            }
            Routed::Open { held, .. } => Some(held.options()),
            _ => None,
        }
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No live lobby has that id or code (or its node is draining).
    NotFound,
    /// The lobby's players and live reservations fill it.
    Full,
    /// The request needs another node and Redis does not answer.
    Unavailable,
    /// The reservation is malformed, forged, for another node, expired or used.
    Reservation(ReservationError),
}

/// The cluster as `/admin/api/overview` shows it.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ClusterView {
    /// This node's id.
    node: String,
    /// Its slot (the high bits of its lobby ids).
    slot: u32,
    /// Whether its last Redis call succeeded.
    redis_up: bool,
    /// Whether it is draining.
    draining: bool,
    /// Every live node (empty while Redis does not answer).
    nodes: Vec<NodeView>,
}

/// One live node in [`ClusterView`].
#[derive(Debug, serde::Serialize)]
struct NodeView {
    node: String,
    public_url: String,
    slot: u32,
    /// Players at its last renewal.
    players: u32,
    /// Lobbies at its last renewal.
    lobbies: u32,
    draining: bool,
}

/// The node's directory counters that the server adds to the directory's own.
#[derive(Debug, Default)]
pub(crate) struct ClusterCounters {
    /// Joins answered with a redirect to another node.
    pub(crate) redirects: AtomicU64,
    /// Resumes sent to the node that holds the player.
    pub(crate) resume_redirects: AtomicU64,
    /// Requests refused because they needed Redis and it did not answer.
    pub(crate) unavailable: AtomicU64,
    /// Joins done locally, as a single node would, while Redis did not answer.
    pub(crate) local_fallbacks: AtomicU64,
}

/// This node in the cluster.
pub(crate) struct Cluster {
    dir: Directory,
    renewal: Mutex<Option<Renewal>>,
    /// A lobby opened or closed: publish now rather than at the next renewal.
    changed: Arc<Notify>,
    /// Stops the publisher.
    stop: CancellationToken,
    listing: Mutex<Option<(Instant, Arc<[LobbyInfo]>)>>,
    /// The WebSocket origins of the live nodes (see [`Cluster::node_origins`]), refreshed
    /// every renewal interval by `track_origins`; the last known list while Redis is down.
    origins: Mutex<Arc<[String]>>,
    /// This node's own origin (from its public URL), always among `origins`.
    own_origin: Option<String>,
    /// Server-side counters (the directory keeps its own).
    pub(crate) counters: ClusterCounters,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.dir.node_id())
            .finish_non_exhaustive()
    }
}

/// The directory's settings from the server's.
pub(crate) fn directory_config(
    config: &Config,
    redis_url: &str,
    public_url: String,
) -> Result<DirectoryConfig, DirError> {
    let node_id = match &config.node_id {
        Some(id) => id.clone(),
        None => ticksync_cluster::random_node_id()
            .map_err(|e| DirError::Config(format!("no randomness for a node id: {e}")))?,
    };
    let mut c = DirectoryConfig::new(redis_url, node_id, public_url);
    c.key_prefix = config.redis_prefix.clone();
    c.lease = config.cluster_lease;
    c.renew_interval = config.cluster_lease / 3;
    c.reservation_ttl = config.reservation_ttl;
    c.quick_lobby_size = config.quick_lobby_size;
    // A Redis call may take a third of the lease: a slow Redis fails calls before the
    // lease is at risk.
    c.op_timeout = (config.cluster_lease / 3).min(Duration::from_secs(1));
    Ok(c)
}

impl Cluster {
    /// Joins the directory (registering this node and its lobbies now, or failing) and
    /// starts renewing and publishing.
    pub(crate) async fn join(
        config: DirectoryConfig,
        registry: Arc<Registry>,
        players: &Players,
    ) -> Result<Arc<Cluster>, DirError> {
        let source = Arc::clone(&registry);
        let every = config.renew_interval;
        let own_origin = ws_origin(&config.public_url);
        if own_origin.is_none() {
            warn!(url = %config.public_url, "the public URL is not a ws:// or wss:// URL with a plain host name or IPv4 address: pages of other nodes cannot be sent here (their CSP will not list it)");
        }
        let (dir, renewal) = Directory::connect(config, move || entries(&source.handles())).await?;
        registry.set_slot(dir.slot());
        players.set_token_slot(dir.slot());
        let cluster = Arc::new(Cluster {
            dir,
            renewal: Mutex::new(Some(renewal)),
            changed: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            listing: Mutex::new(None),
            origins: Mutex::new(own_origin.iter().cloned().collect()),
            own_origin,
            counters: ClusterCounters::default(),
        });
        if let Ok(nodes) = cluster.dir.nodes().await {
            cluster.remember_origins(&nodes);
        }
        tokio::spawn(publish(Arc::clone(&cluster), registry));
        tokio::spawn(track_origins(Arc::clone(&cluster), every));
        Ok(cluster)
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> &str {
        self.dir.node_id()
    }

    /// This node's slot.
    pub(crate) fn slot(&self) -> u32 {
        self.dir.slot()
    }

    /// The directory's counters.
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        self.dir.metrics()
    }

    /// The WebSocket origins (`ws://host:port`, `wss://host:port`: never a path) of the
    /// cluster's live nodes, this node's own included, as the directory last listed
    /// them: where a page served here may be redirected (the CSP's `connect-src`). No
    /// Redis call: a cached list, refreshed every renewal interval, kept while Redis is
    /// down. A node whose public URL is not a plain ws/wss origin is left out.
    pub(crate) fn node_origins(&self) -> Arc<[String]> {
        Arc::clone(&self.origins.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn remember_origins(&self, nodes: &[NodeInfo]) {
        let mut list: Vec<String> = self.own_origin.iter().cloned().collect();
        for origin in nodes.iter().filter_map(|n| ws_origin(&n.public_url)) {
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        list[usize::from(self.own_origin.is_some())..].sort_unstable();
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        if **origins != *list {
            debug!(origins = ?list, "cluster origins changed");
            *origins = list.into();
        }
    }

    /// A lobby opened or closed: publish it soon (coalesced), not at the next renewal.
    pub(crate) fn lobby_changed(&self) {
        self.changed.notify_one();
    }

    /// This node and every live node, for `/admin/api/overview` and `/monitor`.
    pub(crate) async fn view(&self) -> ClusterView {
        let m = self.metrics();
        let nodes = match self.dir.nodes().await {
            Ok(nodes) => nodes
                .into_iter()
                .map(|n| NodeView {
                    node: n.node,
                    public_url: n.public_url,
                    slot: n.slot,
                    players: n.load,
                    lobbies: n.lobbies,
                    draining: n.draining,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        ClusterView {
            node: self.node_id().to_owned(),
            slot: self.slot(),
            redis_up: m.redis_up,
            draining: self.dir.is_draining(),
            nodes,
        }
    }

    /// Public lobbies of every live node (at most the protocol's page), fullest first;
    /// this node's alone while Redis does not answer.
    pub(crate) async fn list(&self, registry: &Registry) -> Arc<[LobbyInfo]> {
        {
            let cache = self.listing.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, list)) = cache.as_ref() {
                if at.elapsed() < LISTING_TTL {
                    return Arc::clone(list);
                }
            }
        }
        match self.dir.list_public(MAX_LISTED_LOBBIES.min(MAX_PAGE)).await {
            Ok(lobbies) => {
                let list: Arc<[LobbyInfo]> = lobbies
                    .into_iter()
                    .map(|l| LobbyInfo {
                        id: l.cluster_id,
                        name: l.name,
                        players: l.players,
                        max_players: l.max_players,
                    })
                    .collect();
                *self.listing.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((Instant::now(), Arc::clone(&list)));
                list
            }
            Err(e) => {
                debug!(error = %e, "cluster listing failed; listing this node's lobbies");
                self.counters
                    .local_fallbacks
                    .fetch_add(1, Ordering::Relaxed);
                registry.list_public()
            }
        }
    }

    /// A reservation for a backend's player (`POST /api/matchmake`) with the player's
    /// join options (checked by the caller): never redeemed here, whichever node it is
    /// for.
    pub(crate) async fn reserve(
        &self,
        want: Want,
        options: &GameOptions,
    ) -> Result<Reservation, Refusal> {
        let options = &options.0;
        let result = match want {
            Want::Id(id) => self.dir.reserve_id(id, options).await,
            Want::Code(code) => match normalize(&code) {
                Some(code) => self.dir.reserve_code(&code, options).await,
                None => Err(DirError::LobbyNotFound),
            },
            Want::Quick | Want::Reserved(_) => self.dir.quick_join(options).await,
        };
        result.map_err(|e| self.refusal(&e))
    }

    /// The player of a held seat took it here: the next renewal counts the player and
    /// drops the hold, so the seat is not counted twice until the hold ends. Call it
    /// after the lobby claimed the seat (a successful join).
    pub(crate) fn seated(&self, held: &Held) {
        self.dir.seated(&held.0);
    }

    /// Gives a held seat back at once: its player was not seated (the game refused the
    /// join, or the lobby closed). If Redis does not answer, the hold ends by itself
    /// within a lease.
    pub(crate) async fn release(&self, held: Held) {
        match self.dir.release(&held.0).await {
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "could not give a held seat back; it frees itself within a lease")
            }
        }
    }

    /// Marks the node draining in the directory: its lobbies leave listings, lookups
    /// and quick-join at once.
    pub(crate) async fn drain(&self) {
        if let Err(e) = self.dir.drain().await {
            warn!(error = %e, "could not tell the directory this node is draining; it will at the next renewal");
        }
        self.forget_listing();
    }

    /// Leaves the directory (the node's last act): its lobbies and record are removed,
    /// renewing stops.
    pub(crate) async fn leave(&self) {
        self.stop.cancel();
        let renewal = self
            .renewal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Err(e) = self.dir.deregister().await {
            warn!(error = %e, "could not leave the directory; this node's entries end with their lease");
        }
        if let Some(renewal) = renewal {
            renewal.stop().await;
        }
    }

    fn forget_listing(&self) {
        *self.listing.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn refusal(&self, e: &DirError) -> Refusal {
        match e {
            DirError::LobbyNotFound | DirError::Draining => Refusal::NotFound,
            DirError::LobbyFull => Refusal::Full,
            DirError::Reservation(r) => Refusal::Reservation(*r),
            DirError::NoNode => Refusal::Unavailable,
            other => {
                if !other.is_unavailable() {
                    warn!(error = %other, "directory request failed");
                }
                self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                Refusal::Unavailable
            }
        }
    }
}

impl Cluster {
    /// Where a player's join goes (see the module doc). `options` (checked by the
    /// caller) are kept with a reservation for the lobby's node; for `Want::Reserved`
    /// they are the redeemed reservation's ([`Routed::reserved_options`]) and `options`
    /// is not used.
    pub(crate) async fn route(
        &self,
        registry: &Registry,
        want: Want,
        options: &GameOptions,
    ) -> Routed {
        let options = &options.0;
        match want {
            Want::Id(id) => {
                let reserved = self.dir.reserve_id(id, options).await;
                let local = || {
                    registry.get(id).filter(|h| !h.is_private()).or_else(|| {
                        // An id of this node's current slot (the lobby may predate it).
                        let (slot, local) = split_cluster_id(id);
                        (slot == self.slot())
                            .then(|| registry.get_local(local))
                            .flatten()
                            .filter(|h| !h.is_private())
                    })
                };
                self.after_reserve(registry, reserved, local).await
            }
            Want::Code(code) => {
                let Some(code) = normalize(&code) else {
                    return Routed::Refused(Refusal::NotFound);
                };
                let reserved = self.dir.reserve_code(&code, options).await;
                self.after_reserve(registry, reserved, || registry.by_code(&code))
                    .await
            }
            Want::Quick => match self.dir.quick_join(options).await {
                Ok(r) => self.place(registry, r).await,
                // No lobby with room and no node to create one: the cluster is draining
                // or this node has not been seen yet; this node creates one.
                Err(DirError::NoNode) if !self.dir.is_draining() => Routed::Create { held: None },
                Err(e) => self.fallback(&e),
            },
            Want::Reserved(text) => self.redeem(registry, &text).await,
        }
    }

    /// The URL of the node that made `token`, if it is another live node (a resume
    /// presented to the wrong node); None: this node's, or unknown.
    pub(crate) async fn home_of(&self, token: &SessionToken) -> Result<Option<String>, Refusal> {
        let slot = Players::token_slot_of(token);
        if slot == 0 || slot == self.slot() {
            return Ok(None);
        }
        match self.dir.nodes().await {
            Ok(nodes) => {
                let url = nodes
                    .into_iter()
                    .find(|n| n.slot == slot && n.node != self.node_id())
                    .map(|n| n.public_url);
                if url.is_some() {
                    self.counters
                        .resume_redirects
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok(url)
            }
            Err(e) => Err(self.refusal(&e)),
        }
    }

    async fn after_reserve(
        &self,
        registry: &Registry,
        reserved: Result<Reservation, DirError>,
        local: impl FnOnce() -> Option<Arc<LobbyHandle>>,
    ) -> Routed {
        match reserved {
            Ok(r) => self.place(registry, r).await,
            // Opened here since the last publication: this node's own, so no other node
            // can have promised its seats.
            // A draining node's lobbies are not found, here either.
            Err(DirError::LobbyNotFound) if self.dir.is_draining() => {
                Routed::Refused(Refusal::NotFound)
            }
            Err(DirError::LobbyNotFound) => match local() {
                Some(handle) => Routed::local(handle),
                None => Routed::Refused(Refusal::NotFound),
            },
            Err(e) if e.is_unavailable() => match local() {
                Some(handle) => {
                    self.counters
                        .local_fallbacks
                        .fetch_add(1, Ordering::Relaxed);
                    Routed::local(handle)
                }
                None => {
                    self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                    Routed::Refused(Refusal::Unavailable)
                }
            },
            Err(e) => Routed::Refused(self.refusal(&e)),
        }
    }

    /// A reservation made here: redeemed at once if it is for this node, else a redirect.
    async fn place(&self, registry: &Registry, r: Reservation) -> Routed {
        if r.node != self.node_id() {
            self.counters.redirects.fetch_add(1, Ordering::Relaxed);
            return Routed::Redirect {
                url: r.url,
                reservation: reservation_string(&r.token),
            };
        }
        let held = match self.dir.redeem(&r.token).await {
            Ok(redeemed) => Some(Held(redeemed)),
            // Redeeming turns the reservation into a hold until the next renewal counts
            // the player; without it the seat stays reserved until the reservation ends:
            // fewer seats for a while, never more.
            Err(e) => {
                debug!(error = %e, "could not redeem a reservation made here");
                None
            }
        };
        self.seat_held(registry, r.lobby, held).await
    }

    /// Where a redeemed reservation seats its player: `lobby` here, or a new lobby.
    async fn seat_held(
        &self,
        registry: &Registry,
        lobby: Option<u32>,
        held: Option<Held>,
    ) -> Routed {
        match lobby {
            None => Routed::Create { held },
            Some(local) => match (registry.get_local(local), held) {
                (Some(handle), held) => Routed::Local { handle, held },
                // A pending lobby of quick-join: this node opens it now.
                (None, Some(held)) if held.0.open.is_some() => Routed::Open {
                    id: ticksync_cluster::cluster_id(registry.slot(), local),
                    seats: held.0.open.unwrap_or_default(),
                    held,
                },
                (None, held) => {
                    // Closed since: nobody takes the seat.
                    if let Some(held) = held {
                        self.release(held).await;
                    }
                    Routed::Refused(Refusal::NotFound)
                }
            },
        }
    }

    async fn redeem(&self, registry: &Registry, text: &str) -> Routed {
        let Some(bytes) = parse_reservation(text) else {
            return Routed::Refused(Refusal::Reservation(ReservationError::Malformed));
        };
        match self.dir.redeem(&bytes).await {
            Ok(redeemed) => {
                let lobby = redeemed.lobby;
                self.seat_held(registry, lobby, Some(Held(redeemed))).await
            }
            Err(e) => Routed::Refused(self.refusal(&e)),
        }
    }

    fn fallback(&self, e: &DirError) -> Routed {
        if e.is_unavailable() {
            self.counters
                .local_fallbacks
                .fetch_add(1, Ordering::Relaxed);
            Routed::Alone
        } else {
            Routed::Refused(self.refusal(e))
        }
    }
}

/// Publishes lobbies opening and closing at once (coalesced: one renewal at most every
/// [`PUBLISH_GAP`], the first without waiting), and keeps new lobby ids on the node's slot if it changed.
async fn publish(cluster: Arc<Cluster>, registry: Arc<Registry>) {
    let changed = Arc::clone(&cluster.changed);
    loop {
        tokio::select! {
            () = cluster.stop.cancelled() => return,
            () = changed.notified() => {}
        }
        if let Err(e) = cluster.dir.renew_now().await {
            debug!(error = %e, "publishing lobby changes failed; the renewal will");
        }
        cluster.forget_listing();
        let slot = cluster.dir.slot();
        if registry.slot() != slot {
            info!(
                slot,
                "node slot changed: new lobbies take ids of the new slot"
            );
            registry.set_slot(slot);
        }
        // Changes meanwhile wait for the next round (one notification is kept).
        tokio::time::sleep(PUBLISH_GAP).await;
    }
}

/// Keeps [`Cluster::node_origins`] up to date: asks the directory for the live nodes
/// every `every` (the renewal interval); a failed ask keeps the last known list.
async fn track_origins(cluster: Arc<Cluster>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cluster.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match cluster.dir.nodes().await {
            Ok(nodes) => cluster.remember_origins(&nodes),
            Err(e) => {
                debug!(error = %e, "could not list the nodes; keeping the last known origins")
            }
        }
    }
}

/// The WebSocket origin of a node's public URL, lowercased, as a CSP source:
/// `ws://host[:port]` or `wss://host[:port]`, the path, query and fragment cut off. None
/// for anything else: another scheme, user info, an empty or malformed host or port, or
/// an IPv6 literal (a CSP source cannot name one). A public URL is operator input, and
/// this goes into a response header as it is.
fn ws_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ws" && scheme != "wss" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    match port {
        None => Some(format!("{scheme}://{host}")),
        Some(port) => {
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            match port.parse::<u16>() {
                Ok(0) | Err(_) => None,
                Ok(port) => Some(format!("{scheme}://{host}:{port}")),
            }
        }
    }
}

/// This node's lobbies as the directory publishes them: local part of the id, and the
/// seats taken or promised (joins on their way count, so a redirected player's seat is
/// never given twice).
fn entries(handles: &[Arc<LobbyHandle>]) -> Vec<LobbyEntry> {
    handles
        .iter()
        .filter(|h| !h.is_closed())
        .map(|h| LobbyEntry {
            id: h.id() & MAX_LOCAL_LOBBY_ID,
            name: h.name().to_owned(),
            players: u16::try_from(h.claimed()).unwrap_or(u16::MAX),
            max_players: h.max_players(),
            private: h.is_private(),
            code: h.code().map(str::to_owned),
        })
        .collect()
}

/// A reservation token as the wire carries it: lowercase hex of its bytes (see
/// `ticksync_cluster::token` for the bytes).
pub(crate) fn reservation_string(token: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(token.len() * 2);
    for b in token {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes of a reservation string; None if it is not even-length hex of a plausible
/// token length.
pub(crate) fn parse_reservation(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 2 != 0 || text.len() > 2 * ticksync_cluster::token::MAX_TOKEN_LEN {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use ticksync_cluster::testing::RedisServer as Redis;

    use super::*;

    fn none() -> GameOptions {
        GameOptions::none()
    }

    #[test]
    fn ws_origins_are_plain_ws_origins_or_nothing() {
        for (url, origin) in [
            ("ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8080"),
            ("WSS://Game.Example.COM/ws?x=1", "wss://game.example.com"),
            ("wss://a-b.example:443", "wss://a-b.example:443"),
            ("ws://node-2:09000#frag", "ws://node-2:9000"),
        ] {
            assert_eq!(ws_origin(url).as_deref(), Some(origin), "{url:?}");
        }
        for junk in [
            "http://127.0.0.1:8080/ws",
            "javascript://x",
            "ws://",
            "ws:///ws",
            "ws://user@host/ws",
            "ws://host:/ws",
            "ws://host:0/ws",
            "ws://host:65536/ws",
            "ws://host:80:81/ws",
            "ws://[::1]:8080/ws",
            "ws://a..b/ws",
            "ws://host; script-src *",
            "ws://host\r\nx-evil: 1",
            "ws://ho'st",
            "ws://*.example.com",
            "127.0.0.1:8080",
        ] {
            assert_eq!(ws_origin(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn reservation_strings_round_trip_and_refuse_junk() {
        let bytes: Vec<u8> = (0u8..=255).step_by(7).collect();
        let text = reservation_string(&bytes);
        assert_eq!(&text[..6], "00070e");
        assert_eq!(parse_reservation(&text), Some(bytes));
        assert_eq!(parse_reservation("ABcd"), Some(vec![0xab, 0xcd]));
        for junk in ["abc", "zz", "0x12", &"00".repeat(200)] {
            assert_eq!(parse_reservation(junk), None, "{junk:?}");
        }
    }

    struct Node {
        cluster: Arc<Cluster>,
        registry: Arc<Registry>,
        players: Players,
    }

    async fn node(redis: &Redis, id: &str) -> Node {
        let mut c = DirectoryConfig::new(redis.url(), id, format!("ws://{id}.test/ws"));
        c.lease = Duration::from_millis(900);
        c.renew_interval = Duration::from_millis(300);
        c.op_timeout = Duration::from_millis(250);
        let registry = Arc::new(Registry::default());
        let players = Players::default();
        let cluster = Cluster::join(c, Arc::clone(&registry), &players)
            .await
            .expect("joins the directory");
        Node {
            cluster,
            registry,
            players,
        }
    }

    impl Node {
        /// A lobby on this node, published at once.
        async fn lobby(&self, name: &str, max: u16, code: Option<&str>) -> Arc<LobbyHandle> {
            let id = self.registry.next_id();
            let (handle, _commands) =
                LobbyHandle::new(id, name.to_owned(), max, code.map(str::to_owned));
            assert!(
                self.registry.insert_new(Arc::clone(&handle)).is_ok(),
                "a fresh id"
            );
            self.cluster.dir.renew_now().await.expect("published");
            handle
        }
    }

    fn redirect(routed: Routed) -> (String, String) {
        match routed {
            Routed::Redirect { url, reservation } => (url, reservation),
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    fn local(routed: Routed) -> Arc<LobbyHandle> {
        match routed {
            Routed::Local { handle, .. } => handle,
            other => panic!("expected a local lobby, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn joins_route_to_the_lobby_s_node_and_reservations_hold_seats_once() {
        let redis = Redis::start();
        let a = node(&redis, "a").await;
        let b = node(&redis, "b").await;
        assert_ne!(a.cluster.slot(), b.cluster.slot());
        let pair = b.lobby("pair", 2, None).await;
        assert_eq!(
            split_cluster_id(pair.id()).0,
            b.cluster.slot(),
            "ids name the node"
        );

        // From a: a redirect to b with a reservation, which b redeems exactly once.
        let (url, reservation) = redirect(
            a.cluster
                .route(&a.registry, Want::Id(pair.id()), &none())
                .await,
        );
        assert_eq!(url, "ws://b.test/ws");
        assert!(
            matches!(
                a.cluster
                    .route(&a.registry, Want::Reserved(reservation.clone()), &none())
                    .await,
                Routed::Refused(Refusal::Reservation(ReservationError::WrongNode))
            ),
            "only the lobby's node redeems it"
        );
        let seated = local(
            b.cluster
                .route(&b.registry, Want::Reserved(reservation.clone()), &none())
                .await,
        );
        assert_eq!(seated.id(), pair.id());
        assert!(matches!(
            b.cluster
                .route(&b.registry, Want::Reserved(reservation), &none())
                .await,
            Routed::Refused(Refusal::Reservation(ReservationError::AlreadyUsed))
        ));
        // The redeemed seat stays held until b counts the player: one seat left of two.
        redirect(
            a.cluster
                .route(&a.registry, Want::Id(pair.id()), &none())
                .await,
        );
        assert!(matches!(
            a.cluster
                .route(&a.registry, Want::Id(pair.id()), &none())
                .await,
            Routed::Refused(Refusal::Full)
        ));
        // b's own join goes through the directory too: the lobby is full for it as well.
        assert!(matches!(
            b.cluster
                .route(&b.registry, Want::Id(pair.id()), &none())
                .await,
            Routed::Refused(Refusal::Full)
        ));
        assert!(matches!(
            b.cluster
                .route(&b.registry, Want::Reserved("zz".into()), &none())
                .await,
            Routed::Refused(Refusal::Reservation(ReservationError::Malformed))
        ));

        // A lobby of a's own: seated here, no redirect.
        let home = a.lobby("home", 4, None).await;
        assert_eq!(
            local(
                a.cluster
                    .route(&a.registry, Want::Id(home.id()), &none())
                    .await
            )
            .id(),
            home.id()
        );
        // A private lobby on b, by its code as typed.
        let secret = b.lobby("secret", 4, Some("K7QXM-2PDHR")).await;
        let (url, reservation) = redirect(
            a.cluster
                .route(&a.registry, Want::Code("k7qxm 2pdhr".into()), &none())
                .await,
        );
        assert_eq!(url, "ws://b.test/ws");
        assert_eq!(
            local(
                b.cluster
                    .route(&b.registry, Want::Reserved(reservation), &none())
                    .await
            )
            .id(),
            secret.id()
        );
        assert!(
            matches!(
                a.cluster
                    .route(&a.registry, Want::Id(secret.id()), &none())
                    .await,
                Routed::Refused(Refusal::NotFound)
            ),
            "an id never finds a private lobby"
        );
        assert!(matches!(
            a.cluster
                .route(&a.registry, Want::Code("AAAAA-AAAAA".into()), &none())
                .await,
            Routed::Refused(Refusal::NotFound)
        ));

        // A session token of b's, shown to a, names b.
        let (_, token) = b.players.create("ann".into()).expect("random");
        assert_eq!(
            a.cluster.home_of(&token).await,
            Ok(Some("ws://b.test/ws".into()))
        );
        assert_eq!(b.cluster.home_of(&token).await, Ok(None), "b's own");
        assert_eq!(a.cluster.counters.redirects.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn join_options_reach_the_lobby_s_node_and_a_released_seat_returns() {
        let redis = Redis::start();
        let a = node(&redis, "a").await;
        let b = node(&redis, "b").await;
        let one = b.lobby("one seat", 1, None).await;
        let options = GameOptions::none()
            .with("team", "red")
            .with("role", "spectator");
        let (_, reservation) = redirect(
            a.cluster
                .route(&a.registry, Want::Id(one.id()), &options)
                .await,
        );
        // b is handed nothing but the reservation (whatever the client says about
        // options is not asked for): the options come from the directory.
        let routed = b
            .cluster
            .route(&b.registry, Want::Reserved(reservation), &none())
            .await;
        assert_eq!(routed.reserved_options(), Some(options));
        let Routed::Local {
            handle,
            held: Some(held),
        } = routed
        else {
            panic!("expected a held local seat, got {routed:?}");
        };
        assert_eq!(handle.id(), one.id());
        // The only seat is held, until the game's refusal gives it back.
        assert!(matches!(
            a.cluster
                .route(&a.registry, Want::Id(one.id()), &none())
                .await,
            Routed::Refused(Refusal::Full)
        ));
        b.cluster.release(held).await;
        assert_eq!(b.cluster.metrics().reservations_released, 1);
        redirect(
            a.cluster
                .route(&a.registry, Want::Id(one.id()), &none())
                .await,
        );
        // The seat made for a backend (matchmake) carries them too.
        let two = b.lobby("two", 2, None).await;
        let made = a
            .cluster
            .reserve(
                Want::Id(two.id()),
                &GameOptions::none().with("team", "blue"),
            )
            .await
            .expect("a seat");
        let routed = b
            .cluster
            .route(
                &b.registry,
                Want::Reserved(reservation_string(&made.token)),
                &none(),
            )
            .await;
        assert_eq!(
            routed.reserved_options(),
            Some(GameOptions::none().with("team", "blue"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quick_join_fills_the_fullest_lobby_then_creates_and_local_play_outlives_redis() {
        let mut redis = Redis::start();
        let a = node(&redis, "a").await;
        let b = node(&redis, "b").await;
        // No lobby anywhere: a seat in a new pending lobby, on the node with the least
        // load: opened here, or a redirect to b, which opens it.
        let first = a.cluster.route(&a.registry, Want::Quick, &none()).await;
        assert!(
            matches!(
                first,
                Routed::Open { seats: 8, .. } | Routed::Redirect { .. }
            ),
            "{first:?}"
        );
        let on_b = b.lobby("on b", 3, None).await;
        let _small = a.lobby("on a", 3, None).await;
        // 3 + 3 + 7 seats left in three lobbies: every quick-join takes one of them (the
        // fullest first, ties by id, the pending one too), none opens another.
        for _ in 0..13 {
            match a.cluster.route(&a.registry, Want::Quick, &none()).await {
                Routed::Local { .. } | Routed::Redirect { .. } | Routed::Open { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        let listed = a.cluster.dir.list_public(100).await.expect("listing");
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert!(
            listed
                .iter()
                .all(|l| u32::from(l.players) + l.reserved == u32::from(l.max_players)),
            "every seat taken once: {listed:?}"
        );
        // All full: the next opens a new pending lobby.
        assert!(matches!(
            a.cluster.route(&a.registry, Want::Quick, &none()).await,
            Routed::Open { .. } | Routed::Redirect { .. }
        ));
        assert_eq!(
            a.cluster.dir.list_public(100).await.expect("listing").len(),
            4
        );

        redis.kill();
        // Without Redis: this node's lobbies still take players; others are unreachable.
        let here = a.registry.handles()[0].id();
        assert_eq!(
            local(a.cluster.route(&a.registry, Want::Id(here), &none()).await).id(),
            here
        );
        assert!(matches!(
            a.cluster
                .route(&a.registry, Want::Id(on_b.id()), &none())
                .await,
            Routed::Refused(Refusal::Unavailable)
        ));
        assert!(matches!(
            a.cluster.route(&a.registry, Want::Quick, &none()).await,
            Routed::Alone
        ));
        let listed = a.cluster.list(&a.registry).await;
        assert!(
            listed.iter().all(|l| l.id != on_b.id()),
            "this node's alone"
        );
        assert!(a.cluster.counters.local_fallbacks.load(Ordering::Relaxed) >= 2);
    }
}
