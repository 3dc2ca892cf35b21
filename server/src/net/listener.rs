//! The accept loop and connection caps: one task per connection, at most
//! `--max-connections` in all and `--max-connections-per-ip` from one address.
//!
//! The caps in force are the configured ones sized to the descriptor limit (see
//! `admission.rs`). A connection over a cap is still accepted, so that it can be told why: its WebSocket
//! upgrade is answered, then closed with an Error and close code 1013 (server full) or
//! 1008 (too many from this address). Past a small margin over the cap, connections are
//! dropped at once to protect the process's file descriptors.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::net::admission::ConnSlot;
use crate::net::deadline::Deadline;
use crate::net::http;
use crate::shared::Shared;
use crate::stats::Refusal;

/// Accepts connections until `shared.stop` fires. Accept errors are routine (a client
/// reset before we took it, or no file descriptors left): log, back off briefly if it is
/// a resource problem, go on.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let stop = shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => {
                debug!(error = %e, "accept failed for one connection");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = shared.admit(peer.ip()) else {
            shared.stats.refuse(Refusal::OverMargin);
            debug!(%peer, "over the connection cap's margin; dropped");
            continue;
        };
        shared
            .stats
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        tune(&stream, &shared, peer);
        shared
            .conn_tracker
            .spawn(serve(stream, peer, Arc::clone(&shared), Arc::new(slot)));
    }
}

fn tune(stream: &TcpStream, shared: &Shared, peer: SocketAddr) {
    // Snapshots are small and latency-bound: never let Nagle hold them back.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "set_nodelay failed");
    }
    let send_buffer = shared.config.socket_send_buffer;
    if send_buffer > 0 {
        if let Err(e) = SockRef::from(stream).set_send_buffer_size(send_buffer) {
            debug!(%peer, error = %e, "setting the send buffer failed");
        }
    }
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, slot: Arc<ConnSlot>) {
    let stop = shared.stop.clone();
    let service_shared = Arc::clone(&shared);
    let service = service_fn(move |req| {
        http::handle(req, peer, Arc::clone(&service_shared), Arc::clone(&slot))
    });
    // The header timeout is the handshake deadline: a client that connects and never
    // finishes its request is cut off. It also bounds idle keep-alive connections. The
    // write deadline cuts off a client that does not read its responses.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.handshake_timeout)
        .max_buf_size(16 * 1024)
        .serve_connection(
            TokioIo::new(Deadline::new(stream, shared.config.write_timeout)),
            service,
        )
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use socket2::SockRef;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::Config;

    fn shared(config: Config) -> Arc<Shared> {
        let arena = crate::games::BuiltinGame::Arena
            .factory()
            .expect("arena's schema is valid");
        Shared::new(config, arena)
    }

    /// A real loopback pair: (the server's end, the client's end).
    async fn pair() -> (TcpStream, SocketAddr, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, peer) = listener.accept().await.expect("accept");
        (server, peer, client)
    }

    #[test]
    fn a_failed_accept_of_one_connection_is_routine() {
        for kind in [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
        ] {
            assert!(is_per_connection(&io::Error::from(kind)), "{kind:?}");
        }
        // Out of descriptors (EMFILE, ENFILE) or memory: the process's problem, so the
        // loop backs off instead of spinning.
        for errno in [24, 23, 12] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(!is_per_connection(&e), "{e}");
        }
    }

    #[tokio::test]
    async fn tune_sets_nodelay_and_the_send_buffer() {
        let config = Config {
            socket_send_buffer: 64 * 1024,
            ..Config::default()
        };
        let shared = shared(config);
        let (server, peer, _client) = pair().await;
        assert!(!server.nodelay().expect("nodelay"), "off by default");
        tune(&server, &shared, peer);
        assert!(server.nodelay().expect("nodelay"));
        // Linux doubles what it is asked for (for its bookkeeping).
        let size = SockRef::from(&server)
            .send_buffer_size()
            .expect("SO_SNDBUF");
        assert!(
            (64 * 1024..=2 * 64 * 1024).contains(&size),
            "send buffer {size}"
        );

        // 0 leaves the kernel's default alone.
        let (server, peer, _client) = pair().await;
        let default = SockRef::from(&server)
            .send_buffer_size()
            .expect("SO_SNDBUF");
        let config = Config {
            socket_send_buffer: 0,
            ..Config::default()
        };
        tune(&server, &self::shared(config), peer);
        assert_eq!(
            SockRef::from(&server)
                .send_buffer_size()
                .expect("SO_SNDBUF"),
            default
        );
        assert!(server.nodelay().expect("nodelay"));
    }

    /// Past the caps plus their margin a connection is dropped at once, uncounted and
    /// unserved; the ones before it (over the cap, within the margin) are still served
    /// (they are told why in their WebSocket, see `tests/tests/bad_clients.rs`).
    #[tokio::test]
    async fn past_the_margin_connections_are_dropped_at_once() {
        let config = Config {
            max_connections: 1,
            ..Config::default()
        };
        let shared = shared(config);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepting = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        // How many connections the caps admit at all (within the cap or its margin).
        let margin = {
            let mut slots = Vec::new();
            while let Some(slot) = shared.admit(Ipv4Addr::LOCALHOST.into()) {
                slots.push(slot);
            }
            slots.len()
        };
        assert!(margin > 1, "a margin over the cap");
        let mut held = Vec::new();
        for _ in 0..margin {
            held.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // The accept loop takes connections in order: this one is the first past it.
        let mut dropped = TcpStream::connect(addr).await.expect("connect");
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), dropped.read(&mut buf))
            .await
            .expect("closed at once");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(
            shared.stats.refused[Refusal::OverMargin as usize].load(Ordering::Relaxed),
            1
        );
        assert_eq!(
            shared.conns.total(),
            margin,
            "the dropped one is not counted"
        );
        // The last one within the margin is served.
        let last = held.last_mut().expect("held");
        last.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), last.read_to_end(&mut response))
            .await
            .expect("answered")
            .expect("read");
        assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
        shared.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), accepting)
            .await
            .expect("the loop stops")
            .expect("no panic");
    }
}
