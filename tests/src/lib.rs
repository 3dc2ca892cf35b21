//! Helpers for the end-to-end tests: start the real server on `127.0.0.1:0` and stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ticksync_server::Config;
use ticksync_server::game::GameFactory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

    /// Starts the shutdown (as SIGTERM would) without waiting.
    pub fn begin_shutdown(&self) {
        self.stop.cancel();
    }

    /// Waits for the server to finish; false if it did not within `limit`.
    pub async fn finished_within(self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.task).await.is_ok()
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

/// A plain HTTP/1.1 request to the server: (status, lowercased head, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("a response in time")
        .expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// `GET path`: (status, lowercased head, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_request(addr, "GET", path, &[], "").await
}

/// Reads until the server closes the connection; returns the code of the last `Error`
/// message before the close (if any) and the close code.
pub async fn error_then_close(client: &mut ticksync_client::Client) -> (Option<u16>, u16) {
    use ticksync_client::ClientError;
    use ticksync_protocol::ServerMessage;
    let mut error = None;
    loop {
        match client.recv_timeout(Duration::from_secs(5)).await {
            Ok(ServerMessage::Error { code, .. }) => error = Some(code),
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => return (error, code),
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}
