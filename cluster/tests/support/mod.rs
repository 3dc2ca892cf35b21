//! Test helpers: a private `redis-server` per test, and small nodes built on it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticksync_cluster::{Directory, DirectoryConfig, LobbyEntry, Renewal};

/// A `redis-server` of its own on a free loopback port, no persistence; killed by PID when
/// dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one and waits until it answers PING (5 s at most per attempt).
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer { child: None, port };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start (is Debian's redis-server installed?)");
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        if wait_ping(self.port, Duration::from_secs(5)) {
            true
        } else {
            self.kill();
            false
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A fresh, empty server on the same port (as after a crash and restart).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn wait_ping(port: u16, limit: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 16];
            if s.write_all(b"PING\r\n").is_ok()
                && matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Test settings: leases of 900 ms renewed every 200 ms, reservations of 1.5 s.
pub fn config(redis: &RedisServer, node: &str) -> DirectoryConfig {
    let mut c = DirectoryConfig::new(redis.url(), node, format!("ws://{node}.test/ws"));
    c.lease = Duration::from_millis(900);
    c.renew_interval = Duration::from_millis(200);
    c.reservation_ttl = Duration::from_millis(1_500);
    c.op_timeout = Duration::from_millis(300);
    c.cleanup_every = 3;
    c
}

/// One node: its directory, its renewal task and the lobby list it reports.
pub struct Node {
    pub dir: Directory,
    pub renewal: Option<Renewal>,
    pub lobbies: Arc<Mutex<Vec<LobbyEntry>>>,
}

impl Node {
    /// A node with these lobbies, registered.
    pub async fn start(config: DirectoryConfig, lobbies: Vec<LobbyEntry>) -> Node {
        let lobbies = Arc::new(Mutex::new(lobbies));
        let source = Arc::clone(&lobbies);
        let (dir, renewal) =
            Directory::connect(config, move || source.lock().expect("lobbies lock").clone())
                .await
                .expect("connect the directory");
        Node {
            dir,
            renewal: Some(renewal),
            lobbies,
        }
    }

    /// Replaces the reported lobbies and publishes them at once.
    pub async fn set_lobbies(&self, lobbies: Vec<LobbyEntry>) {
        *self.lobbies.lock().expect("lobbies lock") = lobbies;
        self.dir.renew_now().await.expect("renew");
    }

    /// Simulates a `kill -9`: renewal stops, nothing is cleaned up.
    pub async fn kill(&mut self) {
        if let Some(r) = self.renewal.take() {
            r.stop().await;
        }
    }
}

/// A public lobby.
pub fn lobby(id: u32, players: u16, max_players: u16) -> LobbyEntry {
    LobbyEntry {
        id,
        name: format!("lobby {id}"),
        players,
        max_players,
        private: false,
        code: None,
    }
}

/// A private lobby with a code.
pub fn private_lobby(id: u32, players: u16, max_players: u16, code: &str) -> LobbyEntry {
    LobbyEntry {
        private: true,
        code: Some(code.to_owned()),
        ..lobby(id, players, max_players)
    }
}

/// Polls `f` every 25 ms until it gives `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
