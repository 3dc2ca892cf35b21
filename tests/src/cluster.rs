//! Cluster-mode helpers: a private `redis-server` per test, and nodes as real
//! `ticksync-server` processes (stopped by PID: SIGTERM or SIGKILL) or in-process servers
//! on port 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use ticksync_cluster::testing::RedisServer;
use ticksync_server::Config;

use crate::{TestServer, spawn_server, test_config};

/// The admin token the test nodes are started with.
pub const ADMIN_TOKEN: &str = "cluster-test-admin";

/// Settings of a test node: cluster mode on `redis`, id `node`, a lease of 1.5 s (renewed
/// every 500 ms), reservations of 1.5 s, an admin token, no per-address lobby quota.
pub fn node_config(redis: &RedisServer, node: &str) -> Config {
    Config {
        redis_url: Some(redis.url()),
        node_id: Some(node.to_owned()),
        cluster_lease: Duration::from_millis(1_500),
        reservation_ttl: Duration::from_millis(1_500),
        admin_token: vec![ADMIN_TOKEN.to_owned()],
        max_lobbies_per_ip: 1_000,
        lobby_creates_per_minute: 10_000,
        ..test_config()
    }
}

/// An in-process node.
pub async fn spawn_node(redis: &RedisServer, node: &str) -> TestServer {
    spawn_server(node_config(redis, node)).await
}

/// The `ticksync-server` binary (built by `cargo build -p ticksync-server`, as ./test.sh
/// does before the tests): `$TICKSYNC_SERVER_BIN`, or the one next to this test's
/// target directory.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TICKSYNC_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> → target/debug/ticksync-server
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join("ticksync-server");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p ticksync-server --bin ticksync-server` first",
        path.display()
    );
    path
}

/// A node as a real `ticksync-server` process on a free loopback port.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its address.
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts the binary with `args` (after `--bind 127.0.0.1:0`) and waits for the line
    /// naming its address.
    pub fn start(args: &[&str]) -> NodeProcess {
        let mut child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ticksync-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the server's first line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        NodeProcess {
            addr,
            child: Some(child),
        }
    }

    /// A cluster node on `redis` with the test settings of [`node_config`].
    pub fn node(redis: &RedisServer, node: &str, extra: &[&str]) -> NodeProcess {
        let url = redis.url();
        let mut args = vec![
            "--redis-url",
            &url,
            "--node-id",
            node,
            "--cluster-lease",
            "1500ms",
            "--reservation-ttl",
            "1500ms",
            "--admin-token",
            ADMIN_TOKEN,
            "--max-lobbies-per-ip",
            "1000",
            "--lobby-creates-per-minute",
            "10000",
        ];
        args.extend_from_slice(extra);
        NodeProcess::start(&args)
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `kill -9`: no goodbye, nothing cleaned up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (by PID).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Waits for the process to exit; its status, or None if it did not within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
