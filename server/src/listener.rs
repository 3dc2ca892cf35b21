//! The accept loop: one task per connection, at most `--max-connections` at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::{Shared, http};

/// Accepts connections until the server shuts down (the caller drops this future).
/// Accept errors are routine (a client reset before we took it, or no file descriptors
/// left): log, back off briefly if it is a resource problem, go on.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    loop {
        // Holding off `accept` at the cap leaves new connections in the kernel's queue.
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
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
        // Snapshots are small and latency-bound: never let Nagle hold them back.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "set_nodelay failed");
        }
        let conn_shared = Arc::clone(&shared);
        shared
            .tracker
            .spawn(serve(stream, peer, conn_shared, Arc::new(permit)));
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

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    permit: Arc<tokio::sync::OwnedSemaphorePermit>,
) {
    let cancel = shared.cancel.clone();
    let service_shared = Arc::clone(&shared);
    let service = service_fn(move |req| {
        http::handle(req, peer, Arc::clone(&service_shared), Arc::clone(&permit))
    });
    let conn = http1::Builder::new()
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}
