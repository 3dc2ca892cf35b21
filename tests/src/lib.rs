//! Helpers for the end-to-end tests: start the real server on `127.0.0.1:0` and stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ticksync_server::Config;
use ticksync_server::game::GameFactory;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server running in this process on a loopback port.
#[derive(Debug)]
pub struct TestServer {
    /// Its address.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Test settings: the defaults, on port 0.
pub fn test_config() -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    }
}

/// Starts the arena server with `config` (its `bind` is ignored: port 0 on loopback).
pub async fn spawn_server(config: Config) -> TestServer {
    spawn_inner(config, None).await
}

/// Starts a server running `game`.
pub async fn spawn_server_with_game(config: Config, game: Arc<dyn GameFactory>) -> TestServer {
    spawn_inner(config, Some(game)).await
}

async fn spawn_inner(config: Config, game: Option<Arc<dyn GameFactory>>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        let result = match game {
            Some(game) => ticksync_server::run_with_game(listener, config, game, shutdown).await,
            None => ticksync_server::run(listener, config, shutdown).await,
        };
        result.expect("server runs");
    });
    TestServer { addr, stop, task }
}
