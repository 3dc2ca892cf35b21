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
