//! HTTP on the same port as the game: the demo client's files, `/ws` (the WebSocket
//! upgrade), `/api/lobbies`, `/healthz` (alive) and `/readyz` (accepting players).

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
            let body = serde_json::to_vec(&*shared.registry.list_public()).unwrap_or_default();
            with_type(Response::new(Full::from(body)), "application/json")
        }
        (&Method::GET | &Method::HEAD, path) => static_file(path),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    };
    secure(response.headers_mut());
    Ok(response)
}

/// The policy headers every response carries: pages load only this server's own files
/// and talk only to WebSocket servers (the demo client's `connect-src`); nothing sniffs
/// content types, frames the pages or learns where a visitor came from.
fn secure(headers: &mut hyper::HeaderMap) {
    const POLICY: [(&str, &str); 4] = [
        (
            "content-security-policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
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
