//! ticksync's cluster directory: the nodes of one cluster share their lobbies through one
//! Redis (Debian's 7.0 is enough), so any node can list every lobby, reserve a seat on
//! another node and send the player there.
//!
//! # Layout
//! - [`directory`]: a node's [`Directory`] (registration, renewal task, listings, lookups,
//!   reservations, quick-join, draining) and the types it answers with.
//! - `scripts`: the Lua scripts that do every read and write atomically in Redis.
//! - [`token`]: the signed reservation token a player carries to the lobby's node.
//! - [`config`]: [`DirectoryConfig`]; [`error`]: [`Error`]; [`metrics`]: counters.
//!
//! # Leases, and whose clock
//! Every entry carries a lease (3 s by default) that the node's renewal task (every 1 s)
//! extends. Expiry times are Redis' own `TIME`, read inside the scripts, and every
//! liveness check compares against the same clock: nodes' clocks never meet, so skew
//! between machines cannot keep a dead node's lobbies listed or hide a live one. A
//! reader never sees a lobby whose lease is over, even if nobody cleans up.
//!
//! # Data in Redis (prefix `P`, default `ticksync:`)
//! | key                      | type   | holds                                                                 |
//! |--------------------------|--------|-----------------------------------------------------------------------|
//! | `P:node:<node>`          | string | JSON `{public_url, load, lobbies, draining, started, slot}`, `PX` lease |
//! | `P:nodes`                | zset   | node ids scored by lease expiry (ms, Redis time)                      |
//! | `P:slot:<n>`             | string | the node holding slot `n` (1..=1023), `PX` lease                      |
//! | `P:lobbies`              | zset   | `<node>/<local id>` scored by lease expiry: the source of liveness   |
//! | `P:lobby:<node>/<id>`    | hash   | node, lobby, gid, name, players, max, private, code, draining (no TTL: liveness is `P:lobbies`; clean-up removes it); a *pending* lobby (made by quick-join, not yet opened by its node) has `pending = 1` and no `draining`, until the node's first renewal that includes it |
//! | `P:pendid:<node>`        | string | counter of the pending lobby ids quick-join allocated for the node (local ids from `PENDING_LOBBY_BASE` up), `PX` one day |
//! | `P:public`               | zset   | public lobbies of non-draining nodes, scored `players·2³² + (2³²−1−gid)` (fullest first, then lowest id) |
//! | `P:code:<code>`          | string | the lobby key of a private lobby's code, `PX` lease                   |
//! | `P:nodelobbies:<node>`   | set    | the lobby keys the node last published (to drop closed ones at once)  |
//! | `P:resv:<node>/<id>`     | zset   | reservation ids holding seats, scored by expiry; `u:<id>` once redeemed |
//! | `P:pending:<node>`       | zset   | `<key>\|<id>` of the node's reservations and holds (`u:`; `<node>/0`: a create ticket of an older node), by expiry: quick-join's load, and how renewals find expired ones |
//! | `P:rsv:<id>`             | string | a reservation's lobby key (`<node>/0`: create ticket), then `U` once used; `PX` ttl |
//! | `P:rsvopt:<id>`          | string | the reservation's join options, JSON `[["key","value"],...]` (absent: none); `PX` ttl; read and deleted when redeemed |
//! | `P:secret`               | string | the cluster's HMAC key, created once with the first node's random offer |
//!
//! # The cluster secret
//! Reservation tokens are signed with HMAC-SHA256 under a secret that the first node
//! stores in Redis (`SET` only when absent, inside the renewal script) and that every node
//! reads back at each renewal. Nothing to configure or keep in step across nodes; and the
//! secret guards against what needs guarding, players forging or altering tokens:
//! whoever can read Redis can rewrite the directory anyway, and Redis' record of each
//! reservation stays the authority. After Redis loses its data a new secret is made and
//! tokens signed before it fail, as their records are gone too.

pub mod config;
pub mod directory;
pub mod error;
pub mod metrics;
mod scripts;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use config::{DirectoryConfig, random_node_id, validate_node_id};
pub use directory::{
    CleanupReport, Directory, JoinOptions, ListedLobby, LobbyEntry, LobbyKey, LobbySource,
    MAX_LOCAL_LOBBY_ID, MAX_PAGE, MAX_SLOTS, NodeInfo, PENDING_LOBBY_BASE, Redeemed, Renewal,
    Reservation, SLOT_SPAN, cluster_id, split_cluster_id,
};
pub use error::{Error, ReservationError};
pub use metrics::{DirectoryMetrics, MetricsSnapshot};
pub use token::ReservationToken;
