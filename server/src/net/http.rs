//! HTTP on the same port as the game: the demo client's files, `/ws` (the WebSocket
//! upgrade), `/api/game` (which game this server runs, for a page before it joins),
//! `/api/lobbies` (in cluster mode: every node's), `/api/matchmake` (cluster mode, see
//! `admin`), `/healthz` (alive) and `/readyz` (accepting players).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use crate::auth::query_param;
use crate::net::admission::ConnSlot;
use crate::net::deadline::Deadline;
use crate::net::{admin, metrics};
use crate::session;
use crate::shared::Shared;
use crate::stats::Refusal;
use crate::wire::outbox;

mod files {
    include!(concat!(env!("OUT_DIR"), "/static_files.rs"));
}

type Body = Full<Bytes>;

/// Serves one request. `slot` is the connection's place under the connection caps, which
/// an upgraded WebSocket session keeps for its whole life.
pub(crate) async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: Arc<ConnSlot>,
) -> Result<Response<Body>, Infallible> {
    // Behind a trusted proxy, the client is who the proxy says it is.
    let client = client_addr(&req, peer, &shared);
    let path = req.uri().path();
    let mut response = match (req.method(), path) {
        (&Method::GET, "/ws") => {
            // A trusted proxy's connection is counted under the client it names (a
            // no-op for any other connection, counted under its peer at accept).
            slot.forwarded(client.ip());
            upgrade(req, client, shared, slot)
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if shared.is_draining() {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else if shared.conns.total() >= shared.conns.limits().max_connections {
                text(StatusCode::SERVICE_UNAVAILABLE, "full\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        (&Method::GET, "/metrics") => with_type(
            Response::new(Full::from(metrics::render(&shared))),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (_, p) if p.starts_with("/admin/api/") => admin::handle(req, client, shared).await,
        (&Method::GET, "/api/lobbies") => {
            // Cluster mode: every live node's public lobbies.
            let list = match shared.cluster() {
                Some(cluster) => cluster.list(&shared.registry).await,
                None => shared.registry.list_public(),
            };
            let body = serde_json::to_vec(&*list).unwrap_or_default();
            with_type(Response::new(Full::from(body)), "application/json")
        }
        (&Method::GET, "/api/game") => {
            let body = serde_json::to_vec(&game_info(&shared)).unwrap_or_default();
            with_type(Response::new(Full::from(body)), "application/json")
        }
        (&Method::POST, "/api/matchmake") => admin::matchmake(req, client, shared).await,
        (&Method::GET | &Method::HEAD, path) => static_file(path),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    };
    secure(response.headers_mut());
    Ok(response)
}

/// `GET /api/game`: the game every lobby of this server plays, known before joining (the
/// schema itself arrives with `Joined`): its schema name, a title for people (the name
/// with `_` as spaces and each word capitalised), the schema's hash (16 hex digits, as a
/// client caching schemas keys them), the tick rate, and the names of its entity kinds,
/// message types and event types.
fn game_info(shared: &Shared) -> serde_json::Value {
    let schema = shared.game.schema();
    let names = |types: &[ticksync_protocol::schema::TypeDef]| {
        types.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
    };
    serde_json::json!({
        "game": schema.game,
        "title": title_of(&schema.game),
        "schema_hash": format!("{:016x}", schema.hash()),
        "tick_rate": shared.config.tick_rate,
        "entities": names(&schema.entities),
        "messages": names(&schema.messages),
        "events": names(&schema.events),
    })
}

/// `king_of_hill` → `King Of Hill`.
fn title_of(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The policy headers every response carries: pages load only this server's own files
/// and talk only to this server (`connect-src 'self'`: a `?server=` parameter cannot point
/// the page served here at another server, whose notices would show in its UI); nothing sniffs
/// content types, frames the pages or learns where a visitor came from.
fn secure(headers: &mut hyper::HeaderMap) {
    const POLICY: [(&str, &str); 4] = [
        (
            "content-security-policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ];
    for (name, value) in POLICY {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last
/// `X-Forwarded-For` address that is not itself a trusted proxy (proxies append, so what
/// lies left of that is the client's own claim and is not believed).
fn client_addr(req: &Request<Incoming>, peer: SocketAddr, shared: &Shared) -> SocketAddr {
    if !shared.conns.is_trusted_proxy(peer.ip()) {
        return peer;
    }
    let values: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values
        .iter()
        .rev()
        .flat_map(|v| v.rsplit(','))
        .map_while(|hop| hop.trim().parse::<std::net::IpAddr>().ok())
        .find(|ip| !shared.conns.is_trusted_proxy(*ip))
        .map_or(peer, |ip| SocketAddr::new(ip, peer.port()))
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = with_type(Response::new(Full::from(body)), "text/plain; charset=utf-8");
    *response.status_mut() = status;
    response
}

fn with_type(mut response: Response<Body>, content_type: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn static_file(path: &str) -> Response<Body> {
    let path = match path {
        "/" => "/index.html",
        "/monitor" | "/monitor/" => "/monitor/index.html",
        _ => path,
    };
    let Some((_, contents)) = files::FILES.iter().find(|(url, _)| *url == path) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let content_type = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    };
    with_type(
        Response::new(Full::from(Bytes::from_static(contents))),
        content_type,
    )
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Answers a WebSocket handshake with 101 and hands the connection to a session once
/// hyper lets go of it. A handshake from an origin not on the allowlist gets 403.
fn upgrade(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: Arc<ConnSlot>,
) -> Response<Body> {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let (Some(key), true, true, true) = (
        key,
        version_ok,
        header_has(&req, header::CONNECTION, "upgrade"),
        header_has(&req, header::UPGRADE, "websocket"),
    ) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)\n",
        );
    };
    let allowed = &shared.config.allowed_origins;
    if !allowed.is_empty() {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if !origin.is_some_and(|o| allowed.iter().any(|a| a == o)) {
            shared.stats.refuse(Refusal::Origin);
            return text(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
    }
    let join_token = req
        .uri()
        .query()
        .and_then(|q| query_param(q, "token"))
        .map(str::to_owned);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ws_config = shared.ws_config;
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(%peer, error = %e, "upgrade failed");
                return;
            }
        };
        // We serve hyper a plain TcpStream, so take it back: the session then reads and
        // writes the socket directly, without hyper's wrapper in between.
        match upgraded.downcast::<TokioIo<Deadline<TcpStream>>>() {
            Ok(parts) => {
                let conn = outbox::tcp(parts.io.into_inner().into_inner());
                // `read_buf` shares hyper's 8 KiB read buffer: copy what the client sent
                // early (if anything) and let the buffer go before the session starts,
                // or every connection would keep it for life.
                let early = parts.read_buf.to_vec();
                drop(parts.read_buf);
                let ws = if early.is_empty() {
                    WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config)).await
                } else {
                    WebSocketStream::from_partially_read(conn, early, Role::Server, Some(ws_config))
                        .await
                };
                session::run(ws, peer, shared, slot, join_token).await;
            }
            Err(upgraded) => {
                let conn = outbox::any(TokioIo::new(upgraded));
                let ws =
                    WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config)).await;
                session::run(ws, peer, shared, slot, join_token).await;
            }
        }
    });
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// Routing and the upgrade's refusals, over real loopback sockets through the real accept
/// loop and hyper.
#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::Config;

    struct Server {
        addr: SocketAddr,
        shared: Arc<Shared>,
        accepting: tokio::task::JoinHandle<()>,
    }

    impl Server {
        async fn start(config: Config) -> Server {
            let arena = crate::games::BuiltinGame::Arena
                .factory()
                .expect("arena's schema is valid");
            let shared = Shared::new(config, arena);
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let accepting = tokio::spawn(crate::net::listener::accept_loop(
                listener,
                Arc::clone(&shared),
            ));
            Server {
                addr,
                shared,
                accepting,
            }
        }

        /// One request on its own connection: (status, head, body).
        async fn request(&self, head: &str) -> (u16, String, Vec<u8>) {
            let mut stream = TcpStream::connect(self.addr).await.expect("connect");
            let request = format!("{head}\r\nHost: test\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut response = Vec::new();
            if head.starts_with("GET /ws") {
                // A 101 keeps the connection open: read just the head.
                let mut buf = [0u8; 1024];
                while !response.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                        .await
                        .expect("a response in time")
                        .expect("read");
                    assert!(n > 0, "closed before a response");
                    response.extend_from_slice(&buf[..n]);
                }
            } else {
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
                    .await
                    .expect("a response in time")
                    .expect("read");
            }
            let split = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a head");
            let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
            let body = response[split + 4..].to_vec();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status");
            (status, head, body)
        }

        async fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
            self.request(&format!("GET {path} HTTP/1.1")).await
        }

        async fn stop(self) {
            self.shared.cancel.cancel();
            self.shared.stop.cancel();
            tokio::time::timeout(Duration::from_secs(5), self.accepting)
                .await
                .expect("stops")
                .expect("no panic");
        }
    }

    fn file(url: &str) -> &'static [u8] {
        files::FILES
            .iter()
            .find(|(u, _)| *u == url)
            .map(|(_, contents)| *contents)
            .expect("embedded")
    }

    #[tokio::test]
    async fn routes_static_files_health_and_errors() {
        let server = Server::start(Config::default()).await;
        let (status, head, body) = server.get("/").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/html; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("cache-control: no-cache"), "{head}");
        assert_eq!(body, file("/index.html"));
        let (status, head, body) = server.get("/favicon.svg").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: image/svg+xml"), "{head}");
        assert_eq!(body, file("/favicon.svg"));
        let (status, head, _) = server.get("/style.css").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/css"), "{head}");
        let (status, _, body) = server.get("/monitor").await;
        assert_eq!(status, 200);
        assert_eq!(body, file("/monitor/index.html"));
        let (status, _, body) = server.request("HEAD / HTTP/1.1").await;
        assert_eq!((status, body.len()), (200, 0), "HEAD: no body");

        assert_eq!(server.get("/no/such/file.js").await.0, 404);
        assert_eq!(server.get("/../Cargo.toml").await.0, 404);
        let (status, _, body) = server.request("POST / HTTP/1.1").await;
        assert_eq!(
            (status, body.as_slice()),
            (405, &b"method not allowed\n"[..])
        );
        assert_eq!(server.request("DELETE /healthz HTTP/1.1").await.0, 405);

        let (status, head, body) = server.get("/healthz").await;
        assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
        assert!(
            head.contains("content-type: text/plain; charset=utf-8"),
            "{head}"
        );
        let (status, head, _) = server.get("/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn readyz_says_503_while_draining_or_at_the_cap() {
        let server = Server::start(Config {
            max_connections: 2,
            ..Config::default()
        })
        .await;
        let (status, _, body) = server.get("/readyz").await;
        assert_eq!((status, body.as_slice()), (200, &b"ready\n"[..]));
        // The asking connection counts: with one more open the server is at its cap.
        let _other = TcpStream::connect(server.addr).await.expect("connect");
        // The accept loop takes connections in order: `_other` is counted first.
        let (status, _, body) = server.get("/readyz").await;
        assert_eq!((status, body.as_slice()), (503, &b"full\n"[..]));
        drop(_other);

        let server2 = Server::start(Config::default()).await;
        server2.shared.start_draining();
        let (status, _, body) = server2.get("/readyz").await;
        assert_eq!((status, body.as_slice()), (503, &b"draining\n"[..]));
        assert_eq!(server2.get("/healthz").await.0, 200, "still alive");
        server.stop().await;
        server2.stop().await;
    }

    #[tokio::test]
    async fn api_lobbies_lists_public_lobbies_as_json() {
        let server = Server::start(Config::default()).await;
        let (status, head, body) = server.get("/api/lobbies").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(body, b"[]");
        let public = server
            .shared
            .create_lobby(
                "room".into(),
                4,
                false,
                Default::default(),
                Ipv4Addr::LOCALHOST.into(),
                false,
            )
            .expect("created");
        server
            .shared
            .create_lobby(
                "secret".into(),
                2,
                true,
                Default::default(),
                Ipv4Addr::LOCALHOST.into(),
                false,
            )
            .expect("created");
        let (_, _, body) = server.get("/api/lobbies").await;
        let listed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            listed,
            serde_json::json!([
                {"id": public.id(), "name": "room", "players": 0, "max_players": 4}
            ]),
            "public lobbies only, with these four fields"
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn api_game_names_the_game_before_anyone_joins() {
        let server = Server::start(Config::default()).await;
        let (status, head, body) = server.get("/api/game").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json"), "{head}");
        let info: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let schema = server.shared.game.schema();
        assert_eq!(
            info,
            serde_json::json!({
                "game": "arena",
                "title": "Arena",
                "schema_hash": format!("{:016x}", schema.hash()),
                "tick_rate": 30,
                "entities": ["Player"],
                "messages": [],
                "events": [],
            })
        );
        assert_eq!(server.request("POST /api/game HTTP/1.1").await.0, 405);
        server.stop().await;
    }

    #[test]
    fn titles_capitalise_each_word_of_the_name() {
        assert_eq!(title_of("shooter"), "Shooter");
        assert_eq!(title_of("king_of__the_hill"), "King Of The Hill");
        assert_eq!(title_of(""), "");
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[tokio::test]
    async fn upgrades_without_what_websocket_needs_are_refused() {
        let server = Server::start(Config::default()).await;
        let upgrade = |headers: &str| format!("GET /ws HTTP/1.1\r\n{headers}");
        let whole = format!(
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}"
        );
        for (what, headers) in [
            (
                "no key",
                whole.replace(&format!("\r\nSec-WebSocket-Key: {KEY}"), ""),
            ),
            ("version 8", whole.replace("Version: 13", "Version: 8")),
            (
                "no version",
                whole.replace("\r\nSec-WebSocket-Version: 13", ""),
            ),
            ("no Upgrade", whole.replace("Upgrade: websocket\r\n", "")),
            (
                "Connection: keep-alive",
                whole.replace("Connection: Upgrade", "Connection: keep-alive"),
            ),
            (
                "Upgrade: h2c",
                whole.replace("Upgrade: websocket", "Upgrade: h2c"),
            ),
        ] {
            let (status, _, body) = server.request(&upgrade(&headers)).await;
            assert_eq!(status, 400, "{what}");
            assert_eq!(
                body, b"expected a WebSocket upgrade (version 13)\n",
                "{what}"
            );
        }
        // Everything there (tokens in any case, in a list): switched, with the accept key
        // RFC 6455 derives from the sample nonce.
        let (status, head, _) = server
            .request(&upgrade(&whole.replace(
                "Connection: Upgrade",
                "Connection: keep-alive, UPGRADE",
            )))
            .await;
        assert_eq!(status, 101, "{head}");
        assert!(
            head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn origins_off_the_allowlist_are_refused_and_counted() {
        let server = Server::start(Config {
            allowed_origins: vec!["https://game.example".into()],
            ..Config::default()
        })
        .await;
        let upgrade = |origin: &str| {
            format!(
                "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}{origin}"
            )
        };
        for origin in [
            "\r\nOrigin: https://evil.example",
            "\r\nOrigin: https://game.example.evil",
            "\r\nOrigin: http://game.example",
            "",
        ] {
            let (status, _, body) = server.request(&upgrade(origin)).await;
            assert_eq!(
                (status, body.as_slice()),
                (403, &b"origin not allowed\n"[..]),
                "{origin:?}"
            );
        }
        assert_eq!(
            server.shared.stats.refused[Refusal::Origin as usize].load(Ordering::Relaxed),
            4
        );
        let (status, _, _) = server
            .request(&upgrade("\r\nOrigin: https://game.example"))
            .await;
        assert_eq!(status, 101);
        server.stop().await;
    }
}
