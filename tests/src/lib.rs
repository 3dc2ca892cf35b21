//! Helpers for the end-to-end tests: start the real server on `127.0.0.1:0` and stop it,
//! talk plain HTTP to it, and put a TCP [`Proxy`] between a client and the server that can
//! freeze a link the way a pulled cable does, so that a test awaits the server's verdict
//! (it closes the link) instead of sleeping until it "should" have come.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ticksync_client::{Client, Value};
use ticksync_protocol::{ClientMessage, GameOptions, JoinTarget};
use ticksync_server::Config;
use ticksync_server::game::GameFactory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub mod cluster;

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

/// `QuickJoin` without options.
pub fn quick_join() -> ClientMessage {
    ClientMessage::QuickJoin {
        options: GameOptions::none(),
    }
}

/// `CreateLobby` without options.
pub fn create_lobby(name: impl Into<String>, max_players: u16, private: bool) -> ClientMessage {
    ClientMessage::CreateLobby {
        name: name.into(),
        max_players,
        private,
        options: GameOptions::none(),
    }
}

/// `JoinLobby` of a lobby id, without options.
pub fn join_id(id: u32) -> ClientMessage {
    ClientMessage::JoinLobby {
        target: JoinTarget::Id(id),
        options: GameOptions::none(),
    }
}

/// `JoinLobby` of a join code, without options.
pub fn join_code(code: impl Into<String>) -> ClientMessage {
    ClientMessage::JoinLobby {
        target: JoinTarget::Code(code.into()),
        options: GameOptions::none(),
    }
}

/// Sends an arena (or hill) input: the direction `(x, y)`, as input `seq`.
pub async fn send_dir(
    client: &mut Client,
    seq: u32,
    x: f32,
    y: f32,
) -> Result<(), ticksync_client::ClientError> {
    client
        .send_input_values(seq, seq, &[Value::Vec2([x, y])])
        .await
}

/// The `pos` of every entity the client's state holds, by id.
pub fn positions(client: &Client) -> Vec<(u32, [f32; 2])> {
    let Some(state) = client.state() else {
        return Vec::new();
    };
    state
        .entities()
        .filter_map(|e| {
            let fields = state.entity_values(e.id)?;
            fields
                .into_iter()
                .find_map(|(name, v)| match (name.as_str(), v) {
                    ("pos", Value::Vec2(p)) => Some((e.id, p)),
                    _ => None,
                })
        })
        .collect()
}

/// The `pos` of the entity this client's player controls.
pub fn my_position(client: &Client) -> Option<[f32; 2]> {
    position_of(client, client.state()?.me().0)
}

/// The `pos` of the entity the player of `seat` controls, as this client sees it.
pub fn position_of(client: &Client, seat: u16) -> Option<[f32; 2]> {
    let state = client.state()?;
    let id = state.entities().find(|e| e.controlled_by.0 == seat)?.id;
    positions(client)
        .into_iter()
        .find(|(e, _)| *e == id)
        .map(|(_, p)| p)
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
    use ticksync_client::{ClientError, Incoming};
    use ticksync_protocol::ServerMessage;
    let mut error = None;
    loop {
        match client.recv_timeout(Duration::from_secs(5)).await {
            Ok(Incoming::Message(ServerMessage::Error { code, .. })) => error = Some(code),
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => return (error, code),
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}

/// What a proxied link does with its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Both ways, as they come.
    Pass,
    /// Nothing passes: the client's bytes stay unread, the server's are read and held
    /// (so that the server's writes and its close are seen), like a pulled cable.
    Frozen,
    /// The cable is back, too late: the held bytes go to the client, then the link
    /// ends as the server ended it.
    Released,
}

/// One link's controls, kept by the proxy.
#[derive(Debug)]
struct LinkCtl {
    mode: watch::Sender<Mode>,
    /// Turns true when the server closed its side.
    server_closed: watch::Receiver<bool>,
}

/// A TCP proxy on a loopback port in front of `target`. Each accepted connection is one
/// link to `target`; [`Proxy::freeze`] freezes the links open at that moment. Dropping
/// the proxy ends every link.
#[derive(Debug)]
pub struct Proxy {
    /// Its address.
    pub addr: SocketAddr,
    links: Arc<std::sync::Mutex<Vec<LinkCtl>>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns the links' tasks (a `JoinSet`): aborting it ends them.
        self.task.abort();
    }
}

/// Links frozen by [`Proxy::freeze`].
#[derive(Debug)]
pub struct Frozen {
    links: Vec<LinkCtl>,
}

impl Proxy {
    /// Starts a proxy to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let registered = Arc::clone(&links);
        let task = tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mode, mode_rx) = watch::channel(Mode::Pass);
                let (closed_tx, server_closed) = watch::channel(false);
                registered.lock().expect("links").push(LinkCtl {
                    mode,
                    server_closed,
                });
                tasks.spawn(pump(client, server, mode_rx, closed_tx));
                // Reap the links that ended.
                while tasks.try_join_next().is_some() {}
            }
        });
        Proxy { addr, links, task }
    }

    /// The WebSocket URL through the proxy.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Freezes every link open now (later connections pass normally).
    pub fn freeze(&self) -> Frozen {
        let links: Vec<LinkCtl> = std::mem::take(&mut *self.links.lock().expect("links"));
        for link in &links {
            link.mode.send_replace(Mode::Frozen);
        }
        Frozen { links }
    }
}

impl Frozen {
    /// Waits until the server has closed every frozen link; false if it did not within
    /// `limit`.
    pub async fn server_closed(&mut self, limit: Duration) -> bool {
        let all = async {
            for link in &mut self.links {
                if link.server_closed.wait_for(|closed| *closed).await.is_err() {
                    // The link's task ended: it saw the server close first.
                }
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }

    /// The cable comes back: the client gets what the server sent meanwhile, then the
    /// end of the stream.
    pub fn release(self) {
        for link in &self.links {
            link.mode.send_replace(Mode::Released);
        }
    }
}

/// Moves one link's bytes until both sides are done (see [`Mode`]).
async fn pump(
    client: TcpStream,
    server: TcpStream,
    mut mode: watch::Receiver<Mode>,
    server_closed: watch::Sender<bool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    let mut held = Vec::new();
    let (mut client_open, mut server_open) = (true, true);
    let mut now = Mode::Pass;
    while client_open || server_open {
        tokio::select! {
            changed = mode.changed(), if now != Mode::Released => {
                now = if changed.is_ok() { *mode.borrow_and_update() } else { Mode::Released };
                if now == Mode::Released {
                    let _ = client_write.write_all(&held).await;
                    held.clear();
                    if !server_open {
                        let _ = client_write.shutdown().await;
                    }
                }
            }
            read = client_read.read(&mut from_client), if client_open && now != Mode::Frozen => {
                match read {
                    Ok(0) | Err(_) => {
                        client_open = false;
                        let _ = server_write.shutdown().await;
                    }
                    // After the release the server is gone or going: drain the client
                    // (unread data would make the close a reset).
                    Ok(_) if now == Mode::Released => {}
                    Ok(n) => {
                        if server_write.write_all(&from_client[..n]).await.is_err() {
                            client_open = false;
                        }
                    }
                }
            }
            read = server_read.read(&mut from_server), if server_open => {
                match read {
                    Ok(0) | Err(_) => {
                        server_open = false;
                        server_closed.send_replace(true);
                        if now != Mode::Frozen {
                            let _ = client_write.shutdown().await;
                        }
                    }
                    Ok(n) if now == Mode::Frozen => held.extend_from_slice(&from_server[..n]),
                    Ok(n) => {
                        let _ = client_write.write_all(&from_server[..n]).await;
                    }
                }
            }
        }
        if !server_open && now == Mode::Frozen && !client_open {
            break;
        }
    }
}
