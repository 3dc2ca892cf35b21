//! Test helpers: a private `redis-server` per test, and small nodes built on it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use ticksync_cluster::testing::RedisServer;
use ticksync_cluster::{Directory, DirectoryConfig, LobbyEntry, Renewal};

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
