//! The admin API (`/admin/api/...`), off unless `--admin-token` is set. Every request
//! carries `Authorization: Bearer <token>`, compared in constant time. Every action is
//! logged with the token's id (a hash prefix, never the token) and what it did.
//!
//! - `GET  /admin/api/overview?page=N`: server figures, and one page (the N-th, from 1)
//!   of [`PAGE_SIZE`] lobbies, by id, with their players and tick statistics. It costs
//!   one pass over the players and one over the lobbies, on a blocking thread, not a
//!   runtime worker.
//! - `POST /admin/api/lobbies/{id}/close` `{"reason": "..."}`: close a lobby.
//! - `POST /admin/api/players/{id}/kick` `{"reason": "..."}`: disconnect a player.
//! - `POST /admin/api/notice` `{"text": "...", "lobby_id": 3}`: show a notice to a lobby,
//!   or to everyone without `lobby_id`. Control characters are taken out (line breaks
//!   and tabs become spaces), and so are invisible and text-direction characters.
//!
//! - `POST /admin/api/drain`: drain this node as SIGTERM does (see `--drain-timeout`):
//!   no new players, its lobbies leave the cluster's listings, it exits when its lobbies
//!   are empty or the timeout runs out.
//! - `POST /api/matchmake` `{}`, `{"lobby_id": N}` or `{"code": "..."}` (cluster mode;
//!   the same bearer tokens), each with an optional `"options": {"team": "red"}` (string
//!   pairs, the limits of `GameOptions`): a seat for one of the game backend's players,
//!   `{"url", "reservation", "lobby_id", "expires_at_ms"}`; the player connects to
//!   `url` and sends `JoinReserved` with the reservation, and the lobby's game sees the
//!   options in its join (the player cannot change them).
//!
//! Wrong tokens are counted and logged (`net/quota.rs`); an address that presents more
//! than `--auth-failures-per-minute` of them is answered 429 for a while, right token or
//! not.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use ticksync_protocol::GameOptions;
use ticksync_protocol::limits::{clip_text, is_invisible};

use crate::directory::cluster::{ClusterView, Refusal, Want, reservation_string};
use crate::net::admission::ip_key;
use crate::net::quota::Guess;
use crate::shared::Shared;
use crate::wire::outbox::Control;

type Body = Full<Bytes>;

/// Largest admin request body.
const MAX_BODY: usize = 4 * 1024;

/// Lobbies per page of the overview.
pub(crate) const PAGE_SIZE: usize = 50;

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": text }))
}

/// Constant-time equality (the length may leak; the content does not).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token's id for logs: the first 8 hex digits of its SHA-256.
pub(crate) fn token_id(token: &str) -> String {
    Sha256::digest(token.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of the configured token `req` presents, or the response refusing it.
fn authorize(
    req: &Request<Incoming>,
    client: SocketAddr,
    shared: &Shared,
) -> Result<String, Box<Response<Body>>> {
    let tokens = &shared.config.admin_token;
    if tokens.is_empty() {
        return Err(Box::new(message(
            StatusCode::NOT_FOUND,
            "the admin API is off (set --admin-token)",
        )));
    }
    let key = ip_key(client.ip());
    if !shared.guesses.may_try(key, Guess::AdminToken) {
        let mut response = message(
            StatusCode::TOO_MANY_REQUESTS,
            "too many wrong tokens from your address; try again later",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return Err(Box::new(response));
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(presented) = presented else {
        let mut response = message(StatusCode::UNAUTHORIZED, "missing bearer token");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(Box::new(response));
    };
    // Compare against every token so the time does not tell which one came close.
    let matched = tokens
        .iter()
        .map(|t| ct_eq(t.as_bytes(), presented.as_bytes()))
        .fold(false, |any, m| any | m);
    if matched {
        Ok(token_id(presented))
    } else {
        shared.guesses.failed(key, Guess::AdminToken);
        Err(Box::new(message(StatusCode::FORBIDDEN, "wrong token")))
    }
}

#[derive(Debug, Deserialize)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
struct NoticeBody {
    text: String,
    #[serde(default)]
    lobby_id: Option<u32>,
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    req: Request<Incoming>,
) -> Result<T, Box<Response<Body>>> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large or unreadable",
            )
        })?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| Box::new(message(StatusCode::BAD_REQUEST, &e.to_string())))
}

/// Serves one admin request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    client: SocketAddr,
    shared: Arc<Shared>,
) -> Response<Body> {
    let who = match authorize(&req, client, &shared) {
        Ok(who) => who,
        Err(response) => return *response,
    };
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let parts: Vec<&str> = path.split('/').skip(3).collect();
    match (req.method().clone(), parts.as_slice()) {
        (Method::GET, ["overview"]) => {
            let page = req
                .uri()
                .query()
                .and_then(|q| crate::auth::query_param(q, "page"))
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(1);
            // One pass over every player and lobby: not on a runtime worker, where it
            // would delay ticks and sessions.
            let cluster = match shared.cluster() {
                Some(cluster) => Some(cluster.view().await),
                None => None,
            };
            let overview = tokio::task::spawn_blocking(move || overview(&shared, page)).await;
            match overview {
                Ok(mut overview) => {
                    overview.cluster = cluster;
                    json(StatusCode::OK, &overview)
                }
                Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "overview failed"),
            }
        }
        (Method::POST, ["lobbies", id, "close"]) => {
            let Ok(id) = id.parse::<u32>() else {
                return message(StatusCode::BAD_REQUEST, "bad lobby id");
            };
            let body: ReasonBody = match read_json(req).await {
                Ok(body) => body,
                Err(response) => return *response,
            };
            let reason = non_empty(&body.reason, "closed by an operator");
            let Some(handle) = shared.registry.get(id) else {
                return message(StatusCode::NOT_FOUND, "no such lobby");
            };
            // Never refused: the close waits on the handle for the lobby's next tick.
            handle.close(reason.clone());
            shared.stats.admin_actions.fetch_add(1, Ordering::Relaxed);
            info!(admin = %who, lobby = id, reason = %reason, "admin closed a lobby");
            json(StatusCode::OK, &serde_json::json!({ "closed": id }))
        }
        (Method::POST, ["players", id, "kick"]) => {
            let Ok(id) = id.parse::<u32>() else {
                return message(StatusCode::BAD_REQUEST, "bad player id");
            };
            let body: ReasonBody = match read_json(req).await {
                Ok(body) => body,
                Err(response) => return *response,
            };
            let reason = non_empty(&body.reason, "removed by an operator");
            let Some(player) = shared.players.by_id(id) else {
                return message(StatusCode::NOT_FOUND, "no such player");
            };
            if !player.control(Control::Kick(reason.clone())) {
                return message(StatusCode::CONFLICT, "the player is not connected");
            }
            shared.stats.admin_actions.fetch_add(1, Ordering::Relaxed);
            info!(admin = %who, player_id = id, reason = %reason, "admin kicked a player");
            json(StatusCode::OK, &serde_json::json!({ "kicked": id }))
        }
        (Method::POST, ["notice"]) => {
            let body: NoticeBody = match read_json(req).await {
                Ok(body) => body,
                Err(response) => return *response,
            };
            let text = clip_text(plain_text(&body.text).trim()).to_owned();
            if text.is_empty() {
                return message(StatusCode::BAD_REQUEST, "empty notice");
            }
            let mut reached = 0;
            for player in shared.players.all() {
                let in_scope = body
                    .lobby_id
                    .is_none_or(|id| player.lobby().is_some_and(|(h, _)| h.id() == id));
                if in_scope && player.control(Control::Notice(text.clone())) {
                    reached += 1;
                }
            }
            shared.stats.admin_actions.fetch_add(1, Ordering::Relaxed);
            info!(admin = %who, lobby = ?body.lobby_id, reached, "admin sent a notice");
            json(StatusCode::OK, &serde_json::json!({ "reached": reached }))
        }
        (Method::POST, ["drain"]) => {
            shared.stats.admin_actions.fetch_add(1, Ordering::Relaxed);
            info!(admin = %who, "admin asked this node to drain");
            shared.drain_requested.cancel();
            json(StatusCode::OK, &serde_json::json!({ "draining": true }))
        }
        _ => message(StatusCode::NOT_FOUND, "no such admin endpoint"),
    }
}

#[derive(Debug, Default, Deserialize)]
struct MatchmakeBody {
    #[serde(default)]
    lobby_id: Option<u32>,
    #[serde(default)]
    code: Option<String>,
    /// The player's join options: a JSON object of strings, kept in its order (and a key
    /// given twice kept twice, for the limits check to refuse).
    #[serde(default, deserialize_with = "string_pairs")]
    options: GameOptions,
}

/// A JSON object of string values as ordered pairs.
fn string_pairs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<GameOptions, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = GameOptions;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of string values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<GameOptions, A::Error> {
            let mut pairs = Vec::new();
            // Bounded by the body's size (MAX_BODY); the limits are checked after.
            while let Some(pair) = map.next_entry::<String, String>()? {
                pairs.push(pair);
            }
            Ok(GameOptions(pairs))
        }
    }
    d.deserialize_map(Pairs)
}

/// `POST /api/matchmake`: a reservation for a game backend's player (module doc).
pub(crate) async fn matchmake(
    req: Request<Incoming>,
    client: SocketAddr,
    shared: Arc<Shared>,
) -> Response<Body> {
    if let Err(response) = authorize(&req, client, &shared) {
        return *response;
    }
    let Some(cluster) = shared.cluster() else {
        return message(
            StatusCode::NOT_FOUND,
            "matchmaking needs cluster mode (--redis-url)",
        );
    };
    if shared.is_draining() {
        return message(StatusCode::SERVICE_UNAVAILABLE, "this node is draining");
    }
    let body: MatchmakeBody = match read_json(req).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    if let Err(problem) = body.options.check() {
        return message(StatusCode::BAD_REQUEST, &problem.to_string());
    }
    let want = match (body.lobby_id, body.code) {
        (Some(id), _) => Want::Id(id),
        (None, Some(code)) => Want::Code(code),
        (None, None) => Want::Quick,
    };
    match cluster.reserve(want, &body.options).await {
        Ok(r) => json(
            StatusCode::OK,
            &serde_json::json!({
                "url": r.url,
                "reservation": reservation_string(&r.token),
                "lobby_id": r.cluster_id,
                "expires_at_ms": r.expires_at_ms,
            }),
        ),
        Err(Refusal::NotFound) => message(StatusCode::NOT_FOUND, "no such lobby"),
        Err(Refusal::Full) => message(StatusCode::CONFLICT, "the lobby is full"),
        Err(Refusal::Unavailable | Refusal::Reservation(_)) => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster directory (Redis) is unavailable",
        ),
    }
}

/// `text` without control characters (line breaks and tabs become spaces) and without
/// invisible or text-direction characters: what players see is what the operator typed,
/// never a terminal escape, a NUL or a reversed line.
fn plain_text(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if c.is_control() || is_invisible(c) => None,
            c => Some(c),
        })
        .collect()
}

fn non_empty(text: &str, default: &str) -> String {
    let text = plain_text(text);
    match clip_text(text.trim()) {
        "" => default.to_owned(),
        text => text.to_owned(),
    }
}

#[derive(Debug, Serialize)]
struct Overview {
    uptime_s: u64,
    draining: bool,
    connections: usize,
    sessions: u64,
    players: usize,
    lobbies_open: usize,
    bytes_in: u64,
    bytes_out: u64,
    snapshots_sent: u64,
    snapshots_skipped: u64,
    ticks: u64,
    ticks_overrun: u64,
    /// This page (from 1), lobbies per page, pages and lobbies in all.
    page: usize,
    /// See `page`.
    page_size: usize,
    /// See `page`.
    pages: usize,
    /// See `page`.
    lobbies_total: usize,
    /// Cumulative tick-time histogram: bucket bounds (µs) and counts (the last: above).
    tick_buckets_us: &'static [u64],
    tick_counts: Vec<u64>,
    lobbies: Vec<LobbyView>,
    /// Cluster mode: this node and every live node.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterView>,
}

#[derive(Debug, Serialize)]
struct LobbyView {
    id: u32,
    name: String,
    private: bool,
    max_players: u16,
    ticks: u64,
    tick_p50_us: Option<u64>,
    tick_p99_us: Option<u64>,
    tick_lateness_p99_us: Option<u64>,
    inputs_dropped: u64,
    players: Vec<PlayerView>,
}

#[derive(Debug, Serialize)]
struct PlayerView {
    player_id: u32,
    name: String,
    seat: u16,
    connected: bool,
    rtt_ms: f64,
    connected_for_s: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// The overview's `page`-th page: one pass over the players (grouped by lobby) and one
/// over the lobbies, whatever their numbers.
fn overview(shared: &Shared, page: usize) -> Overview {
    let s = &shared.stats;
    let mut by_lobby: HashMap<u32, Vec<PlayerView>> = HashMap::new();
    let mut players = 0;
    for r in shared.players.all() {
        let Some((lobby, seat)) = r.lobby() else {
            continue;
        };
        players += 1;
        by_lobby.entry(lobby.id()).or_default().push(PlayerView {
            player_id: r.player_id,
            name: r.name.clone(),
            seat,
            connected: r.connected(),
            rtt_ms: f64::from(r.rtt_us.load(Ordering::Relaxed)) / 1000.0,
            connected_for_s: r.since.elapsed().as_secs(),
            bytes_in: r.bytes_in.load(Ordering::Relaxed),
            bytes_out: r.bytes_out.load(Ordering::Relaxed),
        });
    }
    let mut handles = shared.registry.handles();
    handles.sort_by_key(|h| h.id());
    let lobbies_total = handles.len();
    let pages = lobbies_total.div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let lobbies: Vec<LobbyView> = handles
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|h| {
            let st = h.figures();
            let mut players = by_lobby.remove(&h.id()).unwrap_or_default();
            players.sort_by_key(|p| p.seat);
            LobbyView {
                id: h.id(),
                name: h.name().to_owned(),
                private: h.is_private(),
                max_players: h.max_players(),
                ticks: st.ticks,
                tick_p50_us: st.tick_p50_us,
                tick_p99_us: st.tick_p99_us,
                tick_lateness_p99_us: st.tick_lateness_p99_us,
                inputs_dropped: st.inputs_rate_limited,
                players,
            }
        })
        .collect();
    let (tick_counts, _) = s.tick_time.read();
    Overview {
        uptime_s: shared.started.elapsed().as_secs(),
        draining: shared.is_draining(),
        connections: shared.conns.total(),
        sessions: s.sessions_open.load(Ordering::Relaxed),
        players,
        lobbies_open: lobbies_total,
        bytes_in: s.bytes_in.load(Ordering::Relaxed),
        bytes_out: s.bytes_out.load(Ordering::Relaxed),
        snapshots_sent: s.snapshots_sent.load(Ordering::Relaxed),
        snapshots_skipped: s.snapshots_skipped.load(Ordering::Relaxed),
        ticks: s.ticks.load(Ordering::Relaxed),
        ticks_overrun: s.ticks_overrun.load(Ordering::Relaxed),
        page,
        page_size: PAGE_SIZE,
        pages,
        lobbies_total,
        tick_buckets_us: &crate::stats::BUCKETS_US,
        tick_counts,
        lobbies,
        cluster: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_and_token_ids() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        let id = token_id("secret");
        assert_eq!(id.len(), 8);
        assert!(!id.contains("secret"));
    }

    #[test]
    fn notices_lose_control_and_invisible_characters() {
        assert_eq!(
            plain_text("a\u{0}b\u{1b}[31mc\r\nd\te\u{202e}f\u{200b}g"),
            "ab[31mc  d efg"
        );
        assert_eq!(
            plain_text("Server restarts in 5 min ✓"),
            "Server restarts in 5 min ✓"
        );
    }
}
