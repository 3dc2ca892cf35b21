//! Cluster mode against a real Redis: every test starts its own `redis-server` on a free
//! port (no persistence) and its nodes, in this process on port 0 or as real
//! `ticksync-server` processes stopped by PID, and stops them all. Join options travel
//! with a redirect (a test game, `teams`, shows what it was given).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use ticksync_client::{Client, Incoming};
use ticksync_protocol::{ClientMessage, ErrorCode, GameOptions, JoinTarget};
use ticksync_tests::cluster::{ADMIN_TOKEN, NodeProcess, RedisServer, node_config, spawn_node};
use ticksync_tests::{http_get, http_request, spawn_server};

/// Polls `f` every 50 ms until it gives `Some`, failing after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/lobbies`: lobby id → (name, players, max players).
async fn listing(addr: std::net::SocketAddr) -> BTreeMap<u64, (String, u64, u64)> {
    let (status, _, body) = http_get(addr, "/api/lobbies").await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    list.as_array()
        .expect("an array")
        .iter()
        .map(|l| {
            (
                l["id"].as_u64().expect("id"),
                (
                    l["name"].as_str().expect("name").to_owned(),
                    l["players"].as_u64().expect("players"),
                    l["max_players"].as_u64().expect("max"),
                ),
            )
        })
        .collect()
}

fn names(list: &BTreeMap<u64, (String, u64, u64)>) -> BTreeSet<String> {
    list.values().map(|(n, _, _)| n.clone()).collect()
}

/// `POST /api/matchmake` with `body`: (status, JSON).
async fn matchmake(addr: std::net::SocketAddr, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (status, _, body) = http_request(
        addr,
        "POST",
        "/api/matchmake",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// `GET /admin/api/overview`'s `cluster` part.
async fn cluster_view(addr: std::net::SocketAddr) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (status, _, body) = http_request(
        addr,
        "GET",
        "/admin/api/overview",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let overview: Value = serde_json::from_str(&body).expect("JSON");
    overview["cluster"].clone()
}

/// One Prometheus sample of `/metrics` (the first line starting with `name`).
async fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    let (_, _, body) = http_get(addr, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A player that created a public lobby `name` of `max` seats on the node at `url`.
async fn host(url: &str, player: &str, name: &str, max: u16) -> (Client, u32) {
    let mut client = Client::connect(url).await.expect("connect");
    client.hello(player).await.expect("welcome");
    let joined = client
        .join(&ClientMessage::CreateLobby {
            name: name.into(),
            max_players: max,
            private: false,
            options: GameOptions::none(),
        })
        .await
        .expect("created");
    (client, joined.lobby_id)
}

/// Snapshots `client` receives within `span`.
async fn snapshots_within(client: &mut Client, span: Duration) -> u32 {
    let deadline = tokio::time::Instant::now() + span;
    let mut n = 0;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return n;
        }
        match tokio::time::timeout(left, client.recv()).await {
            Err(_) => return n,
            Ok(Ok(Incoming::Snapshot(_))) => n += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the game was interrupted: {e}"),
        }
    }
}

#[tokio::test]
async fn redis_unreachable_at_start_is_a_clear_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = std::process::Command::new(ticksync_tests::cluster::server_binary())
        .args(["--bind", "127.0.0.1:0", "--redis-url", &url])
        .env("RUST_LOG", "off")
        .output()
        .expect("run ticksync-server");
    assert!(!out.status.success(), "exits with an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cluster mode") && stderr.contains("redis"),
        "says why: {stderr}"
    );

    // The library says so too.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = ticksync_server::Config {
        redis_url: Some(url),
        ..ticksync_tests::test_config()
    };
    let result = ticksync_server::run(listener, config, std::future::pending()).await;
    assert!(
        matches!(result, Err(ticksync_server::Error::Cluster(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn listings_agree_across_three_nodes() {
    let redis = RedisServer::start();
    let nodes = [
        spawn_node(&redis, "a").await,
        spawn_node(&redis, "b").await,
        spawn_node(&redis, "c").await,
    ];
    let mut hosts = Vec::new();
    for (node, name) in nodes.iter().zip(["room a", "room b", "room c"]) {
        hosts.push(host(&node.ws_url(), "host", name, 4).await);
    }
    let want: BTreeSet<String> = ["room a", "room b", "room c"].map(String::from).into();
    // Published when created, not at the next renewal.
    let first = eventually(
        Duration::from_secs(2),
        "every node lists every lobby",
        || {
            let addr = nodes[0].addr;
            let want = want.clone();
            async move {
                let list = listing(addr).await;
                (names(&list) == want).then_some(list)
            }
        },
    )
    .await;
    for node in &nodes[1..] {
        assert_eq!(
            listing(node.addr).await,
            first,
            "the same listing everywhere"
        );
    }
    // The ids the listing shows are the ids the lobbies' own nodes gave them (unique
    // across the cluster: the node's slot is in the high bits).
    let ids: BTreeSet<u64> = hosts.iter().map(|(_, id)| u64::from(*id)).collect();
    assert_eq!(ids, first.keys().copied().collect(), "cluster-wide ids");
    assert!(
        first
            .values()
            .all(|(_, players, max)| (*players, *max) == (1, 4))
    );

    let view = cluster_view(nodes[0].addr).await;
    assert_eq!(view["node"], "a");
    assert_eq!(view["redis_up"], true);
    let live: BTreeSet<&str> = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["node"].as_str().expect("id"))
        .collect();
    assert_eq!(live, ["a", "b", "c"].into());
    assert!(metric(nodes[1].addr, "ticksync_cluster_renewals_total").await >= 1.0);
    assert_eq!(
        metric(nodes[1].addr, "ticksync_cluster_redis_up").await,
        1.0
    );

    for node in nodes {
        node.stop().await;
    }
    drop(hosts);
}

#[tokio::test]
async fn an_unused_reservation_expires_and_its_seat_returns() {
    let redis = RedisServer::start();
    let a = spawn_node(&redis, "a").await;
    let (_host, lobby) = host(&a.ws_url(), "host", "pair", 2).await;
    eventually(Duration::from_secs(2), "the lobby is listed", || async {
        listing(a.addr)
            .await
            .contains_key(&u64::from(lobby))
            .then_some(())
    })
    .await;
    let body = format!("{{\"lobby_id\": {lobby}}}");
    let (status, first) = matchmake(a.addr, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["lobby_id"], lobby);
    assert!(
        first["url"].as_str().is_some_and(|u| u == a.ws_url()),
        "{first}"
    );
    assert!(first["reservation"].as_str().is_some_and(|r| r.len() > 60));
    // One player and one reservation: the lobby of two is full for everyone.
    let (status, _) = matchmake(a.addr, &body).await;
    assert_eq!(status, 409, "the reserved seat is not given twice");
    // Unused, the reservation ends (1.5 s here) and its seat returns.
    let started = Instant::now();
    eventually(Duration::from_secs(4), "the seat returns", || async {
        (matchmake(a.addr, &body).await.0 == 200).then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before it expired"
    );
    // The expired reservation no longer seats anyone.
    let mut late = Client::connect(&a.ws_url()).await.expect("connect");
    late.hello("late").await.expect("welcome");
    let refused = late
        .join(&ClientMessage::JoinReserved {
            reservation: first["reservation"].as_str().expect("reservation").into(),
        })
        .await;
    assert!(
        matches!(refused, Err(ticksync_client::ClientError::Server { code, .. })
            if code == ErrorCode::ReservationFailed.as_u16()),
        "{refused:?}"
    );
    eventually(Duration::from_secs(3), "counted as expired", || async {
        (metric(a.addr, "ticksync_cluster_reservations_expired_total").await >= 1.0).then_some(())
    })
    .await;
    a.stop().await;
}

#[tokio::test]
async fn a_killed_node_vanishes_within_its_lease() {
    let redis = RedisServer::start();
    let a = NodeProcess::node(&redis, "a", &[]);
    let mut b = NodeProcess::node(&redis, "b", &[]);
    let (mut player_a, _) = host(&a.ws_url(), "pa", "on a", 4).await;
    let (_player_b, _) = host(&b.ws_url(), "pb", "on b", 4).await;
    let both: BTreeSet<String> = ["on a", "on b"].map(String::from).into();
    eventually(Duration::from_secs(3), "both lobbies listed", || {
        let both = both.clone();
        async move { (names(&listing(a.addr).await) == both).then_some(()) }
    })
    .await;
    b.kill9();
    let killed = Instant::now();
    eventually(
        Duration::from_secs(5),
        "the killed node's lobby unlisted",
        || async { (names(&listing(a.addr).await) == ["on a".to_owned()].into()).then_some(()) },
    )
    .await;
    let gone_after = killed.elapsed();
    assert!(gone_after < Duration::from_secs(5), "{gone_after:?}");
    // No quick-join is sent to it any more.
    for _ in 0..10 {
        let (status, answer) = matchmake(a.addr, "{}").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["url"].as_str(),
            Some(a.ws_url().as_str()),
            "{answer}"
        );
    }
    let view = cluster_view(a.addr).await;
    let live: Vec<&str> = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["node"].as_str().expect("id"))
        .collect();
    assert_eq!(live, ["a"]);
    // The other node's players never noticed (30 ticks a second).
    let n = snapshots_within(&mut player_a, Duration::from_secs(1)).await;
    assert!(n >= 20, "{n} snapshots in a second");
}

#[tokio::test]
async fn redis_restarted_mid_game_interrupts_nothing() {
    let mut redis = RedisServer::start();
    let a = spawn_node(&redis, "a").await;
    let b = spawn_node(&redis, "b").await;
    let (mut pa, _) = host(&a.ws_url(), "pa", "on a", 4).await;
    let (mut pb, on_b) = host(&b.ws_url(), "pb", "on b", 4).await;
    let both: BTreeSet<String> = ["on a", "on b"].map(String::from).into();
    eventually(Duration::from_secs(3), "both lobbies listed", || {
        let both = both.clone();
        async move { (names(&listing(b.addr).await) == both).then_some(()) }
    })
    .await;

    redis.kill();
    // Local play goes on: snapshots at the tick rate, new local lobbies, local listings.
    let n = snapshots_within(&mut pa, Duration::from_secs(1)).await;
    assert!(n >= 20, "{n} snapshots in a second without Redis");
    let (_late, _) = host(&b.ws_url(), "late", "made without redis", 4).await;
    let local = names(&listing(b.addr).await);
    assert!(
        local.contains("on b") && local.contains("made without redis"),
        "{local:?}"
    );
    eventually(Duration::from_secs(3), "redis_up goes to 0", || async {
        (metric(a.addr, "ticksync_cluster_redis_up").await == 0.0).then_some(())
    })
    .await;
    // What needs another node gets a clear refusal.
    assert_eq!(matchmake(a.addr, "{}").await.0, 503);
    let mut far = Client::connect(&a.ws_url()).await.expect("connect");
    far.hello("far").await.expect("welcome");
    let refused = far
        .join(&ClientMessage::JoinLobby {
            target: JoinTarget::Id(on_b),
            options: GameOptions::none(),
        })
        .await;
    assert!(
        matches!(refused, Err(ticksync_client::ClientError::Server { code, .. })
            if code == ErrorCode::ClusterUnavailable.as_u16()),
        "{refused:?}"
    );

    redis.restart();
    let back = Instant::now();
    let all: BTreeSet<String> = ["on a", "on b", "made without redis"]
        .map(String::from)
        .into();
    for node in [&a, &b] {
        eventually(
            Duration::from_secs(5),
            "the directory is whole again",
            || {
                let all = all.clone();
                async move { (names(&listing(node.addr).await) == all).then_some(()) }
            },
        )
        .await;
    }
    assert!(back.elapsed() < Duration::from_secs(5));
    let n = snapshots_within(&mut pb, Duration::from_secs(1)).await;
    assert!(n >= 20, "{n} snapshots in a second after the restart");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn draining_a_node_under_play_loses_nobody() {
    let redis = RedisServer::start();
    let a = spawn_node(&redis, "a").await;
    let mut b = NodeProcess::node(&redis, "b", &["--drain-timeout", "20s"]);
    let (mut player, lobby) = host(&b.ws_url(), "stays", "on b", 4).await;
    eventually(Duration::from_secs(3), "b's lobby listed", || async {
        listing(a.addr)
            .await
            .contains_key(&u64::from(lobby))
            .then_some(())
    })
    .await;

    b.terminate();
    // At once: out of the listings and of quick-join, not ready.
    eventually(Duration::from_secs(1), "b's lobby unlisted", || async {
        (!listing(a.addr).await.contains_key(&u64::from(lobby))).then_some(())
    })
    .await;
    for _ in 0..5 {
        let (status, answer) = matchmake(a.addr, "{}").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["url"].as_str(), Some(a.ws_url().as_str()));
    }
    assert_eq!(http_get(b.addr, "/readyz").await.0, 503);
    // Nobody new lands on it.
    let mut newcomer = Client::connect(&b.ws_url()).await.expect("connect");
    let refused = newcomer.hello("new").await;
    assert!(refused.is_err(), "a draining node takes no new player");
    // Its player plays on.
    let n = snapshots_within(&mut player, Duration::from_secs(1)).await;
    assert!(n >= 20, "{n} snapshots in a second while draining");
    assert!(
        b.wait_exit(Duration::from_millis(100)).is_none(),
        "still running"
    );
    // The last player leaves: the node exits, long before its drain timeout, and
    // leaves nothing in the directory.
    player.close().await;
    let status = b
        .wait_exit(Duration::from_secs(8))
        .expect("exits once empty");
    assert!(status.success(), "{status:?}");
    let view = cluster_view(a.addr).await;
    let live: Vec<&str> = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["node"].as_str().expect("id"))
        .collect();
    assert_eq!(live, ["a"], "b left the directory before it exited");
    a.stop().await;
}

#[tokio::test]
async fn a_drain_ends_at_its_timeout_with_shutting_down() {
    let redis = RedisServer::start();
    let mut b = NodeProcess::node(&redis, "b", &["--drain-timeout", "1s"]);
    let (mut player, _) = host(&b.ws_url(), "stays", "on b", 4).await;
    b.terminate();
    let asked = Instant::now();
    // Plays on until the timeout, then is told and closed with 1001.
    let (error, code) = ticksync_tests::error_then_close(&mut player).await;
    let waited = asked.elapsed();
    assert_eq!(
        error,
        Some(ticksync_protocol::ErrorCode::ShuttingDown.as_u16())
    );
    assert_eq!(code, ticksync_protocol::close::GOING_AWAY);
    assert!(
        waited >= Duration::from_millis(900),
        "not before the timeout: {waited:?}"
    );
    let status = b.wait_exit(Duration::from_secs(8)).expect("exits");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn joins_by_id_and_by_code_follow_the_lobby_across_nodes() {
    let redis = RedisServer::start();
    let a = spawn_node(&redis, "a").await;
    let b = spawn_node(&redis, "b").await;
    let (_host, public) = host(&b.ws_url(), "host", "public on b", 4).await;
    let mut owner = Client::connect(&b.ws_url()).await.expect("connect");
    owner.hello("owner").await.expect("welcome");
    let private = owner
        .join(&ClientMessage::CreateLobby {
            name: "private on b".into(),
            max_players: 4,
            private: true,
            options: GameOptions::none(),
        })
        .await
        .expect("created");
    let code = private.code.clone().expect("a code");
    // Players find lobbies in listings, and codes from friends: by then every node
    // can reach them (b publishes new lobbies at once, at most every 50 ms).
    eventually(Duration::from_secs(2), "b's lobbies published", || async {
        (metric(b.addr, "ticksync_cluster_lobbies_published").await >= 2.0).then_some(())
    })
    .await;

    let mut by_id = Client::connect(&a.ws_url()).await.expect("connect");
    by_id.hello("by id").await.expect("welcome");
    let joined = by_id
        .join(&ClientMessage::JoinLobby {
            target: JoinTarget::Id(public),
            options: GameOptions::none(),
        })
        .await
        .expect("joined across nodes");
    assert_eq!(joined.lobby_id, public);
    assert_eq!(by_id.redirects(), 1, "sent to b");
    by_id
        .recv_snapshot(Duration::from_secs(2))
        .await
        .expect("plays on b");

    // The code as a person types it, on the other node.
    let mut by_code = Client::connect(&a.ws_url()).await.expect("connect");
    by_code.hello("by code").await.expect("welcome");
    let typed = code.to_lowercase().replace('-', " ");
    let joined = by_code
        .join(&ClientMessage::JoinLobby {
            target: JoinTarget::Code(typed),
            options: GameOptions::none(),
        })
        .await
        .expect("joined by code across nodes");
    assert_eq!(joined.lobby_id, private.lobby_id);
    assert_eq!(joined.players.len(), 2, "the owner and this player");
    assert!(metric(a.addr, "ticksync_cluster_redirects_total").await >= 2.0);
    assert!(metric(b.addr, "ticksync_cluster_reservations_used_total").await >= 2.0);
    a.stop().await;
    b.stop().await;
}

/// `GET /api/lobbies` as a list: (id, players, max players), in the order given.
async fn raw_listing(addr: std::net::SocketAddr) -> Vec<(u32, u32, u32)> {
    let (_, _, body) = http_get(addr, "/api/lobbies").await;
    let list: Value = serde_json::from_str(&body).expect("JSON");
    let field = |l: &Value, f: &str| {
        l[f].as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or_else(|| panic!("{f} in {l}"))
    };
    list.as_array()
        .expect("an array")
        .iter()
        .map(|l| (field(l, "id"), field(l, "players"), field(l, "max_players")))
        .collect()
}

#[tokio::test]
async fn thirty_quick_joins_through_three_nodes_never_overfill() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"] {
        let config = ticksync_server::Config {
            quick_lobby_size: 4,
            ..node_config(&redis, id)
        };
        nodes.push(spawn_server(config).await);
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.ws_url()).collect();
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..30 {
        let url = urls[i % 3].clone();
        joins.spawn(async move {
            let (client, _, joined) = Client::quick_player(&url, &format!("p{i}"))
                .await
                .expect("quick-joined");
            (client, joined.lobby_id)
        });
    }
    let mut seated: BTreeMap<u32, u32> = BTreeMap::new();
    let mut clients = Vec::new();
    while let Some(done) = joins.join_next().await {
        let (client, lobby) = done.expect("no panic");
        *seated.entry(lobby).or_default() += 1;
        clients.push(client);
    }
    assert_eq!(seated.values().sum::<u32>(), 30);
    assert!(seated.values().all(|&n| n <= 4), "overfilled: {seated:?}");
    assert!(seated.len() >= 8, "30 players in lobbies of 4: {seated:?}");
    let redirected: u32 = clients.iter().map(Client::redirects).sum();
    assert!(redirected > 0, "some quick-joins were sent to another node");
    // Every node lists every lobby once, with its true count, and none over its cap.
    for node in &nodes {
        eventually(Duration::from_secs(3), "listings show every player", || {
            let seated = seated.clone();
            async move {
                let list = raw_listing(node.addr).await;
                let ids: BTreeSet<u32> = list.iter().map(|l| l.0).collect();
                assert_eq!(ids.len(), list.len(), "a lobby listed twice: {list:?}");
                assert!(list.iter().all(|l| l.1 <= l.2), "over a cap: {list:?}");
                let listed: BTreeMap<u32, u32> = list
                    .iter()
                    .filter(|l| l.1 > 0)
                    .map(|l| (l.0, l.1))
                    .collect();
                (listed == seated).then_some(())
            }
        })
        .await;
    }
    drop(clients);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn forty_quick_joins_at_once_through_three_nodes_fill_four_lobbies() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"] {
        let config = ticksync_server::Config {
            quick_lobby_size: 10,
            ..node_config(&redis, id)
        };
        nodes.push(ticksync_tests::spawn_server(config).await);
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.ws_url()).collect();
    // All at once: no lobby exists, and none is published by a node before the rush is
    // over; the pending lobbies in the directory are what the later joins find.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(40));
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = urls[i % 3].clone();
        let start = std::sync::Arc::clone(&start);
        joins.spawn(async move {
            let mut client = Client::connect(&url).await.expect("connect");
            client.hello(&format!("q{i}")).await.expect("welcome");
            start.wait().await;
            let joined = client
                .join(&ClientMessage::QuickJoin {
                    options: GameOptions::none(),
                })
                .await
                .expect("quick-joined");
            (client, joined.lobby_id)
        });
    }
    let mut seated: BTreeMap<u32, u32> = BTreeMap::new();
    let mut clients = Vec::new();
    while let Some(done) = joins.join_next().await {
        let (client, lobby) = done.expect("no panic");
        *seated.entry(lobby).or_default() += 1;
        clients.push(client);
    }
    assert_eq!(seated.values().sum::<u32>(), 40);
    assert!(seated.values().all(|&n| n <= 10), "overfilled: {seated:?}");
    assert_eq!(seated.len(), 4, "40 players in lobbies of 10: {seated:?}");
    // The lobbies are spread over the nodes (the least-loaded one opens the next).
    let homes: BTreeSet<u32> = seated.keys().map(|id| id >> 22).collect();
    assert_eq!(homes.len(), 3, "{seated:?}");
    for node in &nodes {
        eventually(Duration::from_secs(3), "listings show every player", || {
            let seated = seated.clone();
            async move {
                let list = raw_listing(node.addr).await;
                let ids: BTreeSet<u32> = list.iter().map(|l| l.0).collect();
                assert_eq!(ids.len(), list.len(), "a lobby listed twice: {list:?}");
                assert!(list.iter().all(|l| l.1 <= l.2), "over a cap: {list:?}");
                let listed: BTreeMap<u32, u32> = list.iter().map(|l| (l.0, l.1)).collect();
                (listed == seated).then_some(())
            }
        })
        .await;
    }
    drop(clients);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_resume_token_shown_to_the_wrong_node_resumes_where_the_player_is() {
    let redis = RedisServer::start();
    let a = spawn_node(&redis, "a").await;
    let b = spawn_node(&redis, "b").await;
    let (player, lobby) = host(&b.ws_url(), "roamer", "on b", 4).await;
    let welcome = player.welcome().expect("welcomed");
    // The link drops without a goodbye: the player keeps its seat for its grace.
    drop(player);
    let (mut back, again) = Client::resume(
        &a.ws_url(),
        "roamer",
        welcome.session_token,
        Duration::from_secs(5),
    )
    .await
    .expect("resumed");
    assert_eq!(back.redirects(), 1, "a sent it to b");
    assert_eq!(again.player_id, welcome.player_id, "the same player");
    let joined = back
        .recv_message_until(Duration::from_secs(3), |m| match m {
            ticksync_protocol::ServerMessage::Joined(j) => Some(j.clone()),
            _ => None,
        })
        .await
        .expect("back in its lobby");
    assert_eq!(joined.lobby_id, lobby);
    assert!(metric(a.addr, "ticksync_cluster_resume_redirects_total").await >= 1.0);
    a.stop().await;
    b.stop().await;
}

/// A game that shows what it was given: each joining player gets a private `Seen` event
/// with its `team` join option and the lobby's `map` creation option; a `spectator` is
/// refused with a reason naming the player.
mod teams {
    use ticksync_protocol::Messages;
    use ticksync_server::game::{
        Ctx, Game, GameFactory, GameOptions, NoMessages, PlayerInput, PlayerRef, Writer, factory,
    };

    #[derive(Messages, Debug, Clone, PartialEq)]
    pub(crate) enum Event {
        Seen {
            #[state(max_len = 64)]
            team: String,
            #[state(max_len = 64)]
            map: String,
        },
    }

    pub(crate) struct Teams {
        map: String,
    }

    impl Game for Teams {
        const NAME: &'static str = "teams";
        type Entity = NoMessages;
        type Lobby = ();
        type Private = ();
        type Input = ();
        type Message = NoMessages;
        type Event = Event;

        fn on_join(
            &mut self,
            ctx: &mut Ctx<'_, Event>,
            player: PlayerRef,
            name: &str,
            options: &GameOptions,
        ) -> Result<(), String> {
            let team = options.get("team").unwrap_or("none");
            if team == "spectator" {
                return Err(format!("{name}: no spectators in this game"));
            }
            let map = self.map.clone();
            ctx.send(
                player,
                Event::Seen {
                    team: team.to_owned(),
                    map,
                },
            );
            Ok(())
        }

        fn step(&mut self, _: &mut Ctx<'_, Event>, _: &[PlayerInput<()>], _: u32, _: f32) {}

        fn write(&self, _: &mut Writer<'_, Self>) {}
    }

    pub(crate) fn game() -> std::sync::Arc<dyn GameFactory> {
        factory(|spec| {
            Ok(Teams {
                map: spec.options.get("map").unwrap_or("plain").to_owned(),
            })
        })
        .expect("a valid schema")
    }
}

/// A cluster node running the teams game.
async fn teams_node(redis: &RedisServer, id: &str) -> ticksync_tests::TestServer {
    ticksync_tests::spawn_server_with_game(node_config(redis, id), teams::game()).await
}

fn options(pairs: &[(&str, &str)]) -> GameOptions {
    pairs
        .iter()
        .fold(GameOptions::none(), |o, (k, v)| o.with(*k, *v))
}

/// The (team, map) of the next `Seen` event `client` gets.
async fn seen(client: &mut Client) -> (String, String) {
    let text = |v: Option<&ticksync_client::Value>| match v {
        Some(ticksync_client::Value::Str(s)) => s.clone(),
        other => panic!("not a string: {other:?}"),
    };
    client
        .recv_until(Duration::from_secs(3), |m| match m {
            Incoming::Event(e) if e.name == "Seen" => {
                Some((text(e.get("team")), text(e.get("map"))))
            }
            _ => None,
        })
        .await
        .expect("the game's Seen event")
}

/// A player said Hello on the node at `url`.
async fn visitor(url: &str, name: &str) -> Client {
    let mut client = Client::connect(url).await.expect("connect");
    client.hello(name).await.expect("welcome");
    client
}

/// `owner` creates a public lobby `name` of `max` seats with the creation option `map`;
/// returns its id once the node at `elsewhere` lists it too.
async fn create_listed(
    owner: &mut Client,
    name: &str,
    max: u16,
    map: &str,
    elsewhere: std::net::SocketAddr,
) -> u32 {
    let id = owner
        .join(&ClientMessage::CreateLobby {
            name: name.into(),
            max_players: max,
            private: false,
            options: options(&[("map", map)]),
        })
        .await
        .expect("created")
        .lobby_id;
    eventually(
        Duration::from_secs(2),
        &format!("{name} listed elsewhere"),
        || async {
            listing(elsewhere)
                .await
                .contains_key(&u64::from(id))
                .then_some(())
        },
    )
    .await;
    id
}

/// The error code and message of a refused join.
fn refusal(
    result: Result<ticksync_protocol::Joined, ticksync_client::ClientError>,
) -> (u16, String) {
    match result {
        Err(ticksync_client::ClientError::Server { code, message }) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn join_options_follow_a_redirect_and_a_refused_join_gives_its_seat_back() {
    let redis = RedisServer::start();
    let a = teams_node(&redis, "a").await;
    let b = teams_node(&redis, "b").await;
    // A lobby of three on b, made with the creation option map=dunes.
    let mut owner = visitor(&b.ws_url(), "owner").await;
    let trio = create_listed(&mut owner, "trio", 3, "dunes", a.addr).await;
    assert_eq!(seen(&mut owner).await, ("none".into(), "dunes".into()));

    // Quick-join through a: sent to b's trio, and b's game sees the options.
    let mut red = visitor(&a.ws_url(), "red").await;
    let joined = red
        .join(&ClientMessage::QuickJoin {
            options: options(&[("team", "red")]),
        })
        .await
        .expect("quick-joined across nodes");
    assert_eq!((joined.lobby_id, red.redirects()), (trio, 1));
    assert_eq!(seen(&mut red).await, ("red".into(), "dunes".into()));

    // A join by id through a that b's game refuses: the single node's answer (JoinRefused
    // with the game's reason), and the seat it held is free again at once.
    let mut sam = visitor(&a.ws_url(), "sam").await;
    let (code, message) = refusal(
        sam.join(&ClientMessage::JoinLobby {
            target: JoinTarget::Id(trio),
            options: options(&[("team", "spectator")]),
        })
        .await,
    );
    assert_eq!(code, ErrorCode::JoinRefused.as_u16());
    assert_eq!(message, "sam: no spectators in this game");
    assert_eq!(sam.redirects(), 1, "refused by b, the lobby's node");
    // The held seat would keep trio full for a lease (1.5 s); it was given back.
    let refused_at = Instant::now();
    let mut blue = visitor(&a.ws_url(), "blue").await;
    blue.join(&ClientMessage::JoinLobby {
        target: JoinTarget::Id(trio),
        options: options(&[("team", "blue")]),
    })
    .await
    .expect("the refused player's seat");
    assert!(
        refused_at.elapsed() < Duration::from_millis(1_200),
        "within the hold, so the seat came back by release"
    );
    assert_eq!(seen(&mut blue).await, ("blue".into(), "dunes".into()));
    let (code, _) = refusal(
        visitor(&a.ws_url(), "late")
            .await
            .join(&ClientMessage::JoinLobby {
                target: JoinTarget::Id(trio),
                options: GameOptions::none(),
            })
            .await,
    );
    assert_eq!(
        code,
        ErrorCode::LobbyFull.as_u16(),
        "three seats, three players"
    );
    assert!(metric(b.addr, "ticksync_cluster_reservations_released_total").await >= 1.0);

    // Nothing has room: a quick-join through b gets a ticket for the least-loaded node,
    // a, which makes the lobby with the quick-joiner's options as creation options.
    let mut gold = visitor(&b.ws_url(), "gold").await;
    gold.join(&ClientMessage::QuickJoin {
        options: options(&[("team", "gold"), ("map", "ice")]),
    })
    .await
    .expect("a new lobby on a");
    assert_eq!(gold.redirects(), 1, "sent to a");
    assert_eq!(seen(&mut gold).await, ("gold".into(), "ice".into()));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn matchmake_options_reach_the_lobby_s_game_through_the_reservation() {
    let redis = RedisServer::start();
    let a = teams_node(&redis, "a").await;
    let b = teams_node(&redis, "b").await;
    let mut owner = visitor(&b.ws_url(), "owner").await;
    let duo = create_listed(&mut owner, "duo", 2, "reef", a.addr).await;

    // Options over the limits or not strings: refused before anything is reserved.
    for bad in [
        r#"{"options": {"Bad Key": "x"}}"#.to_owned(),
        r#"{"options": {"team": 5}}"#.to_owned(),
        r#"{"options": ["team", "red"]}"#.to_owned(),
        r#"{"options": {"team": "red", "team": "blue"}}"#.to_owned(),
        format!(r#"{{"options": {{"team": "{}"}}}}"#, "x".repeat(65)),
    ] {
        let (status, reply) = matchmake(a.addr, &bad).await;
        assert_eq!(status, 400, "{bad}: {reply}");
    }

    // The backend asks a for a seat in duo for a spectator: b's game refuses when the
    // player comes, with its reason, and the seat returns at once.
    let body = format!(r#"{{"lobby_id": {duo}, "options": {{"team": "spectator"}}}}"#);
    let (status, spectator) = matchmake(a.addr, &body).await;
    assert_eq!(status, 200, "{spectator}");
    assert_eq!(spectator["url"], b.ws_url());
    let mut sam = visitor(&b.ws_url(), "sam").await;
    let (code, message) = refusal(
        sam.join(&ClientMessage::JoinReserved {
            reservation: spectator["reservation"].as_str().expect("token").into(),
        })
        .await,
    );
    assert_eq!(code, ErrorCode::JoinRefused.as_u16());
    assert_eq!(message, "sam: no spectators in this game");

    // The seat is free again: a seat for a red player. The player shows only the
    // reservation; what the game sees is what the backend asked for.
    let body = format!(r#"{{"lobby_id": {duo}, "options": {{"team": "red"}}}}"#);
    let (status, red) = matchmake(a.addr, &body).await;
    assert_eq!(status, 200, "the released seat: {red}");
    let mut player = visitor(&b.ws_url(), "ruby").await;
    let joined = player
        .join(&ClientMessage::JoinReserved {
            reservation: red["reservation"].as_str().expect("token").into(),
        })
        .await
        .expect("seated");
    assert_eq!(joined.lobby_id, duo);
    assert_eq!(seen(&mut player).await, ("red".into(), "reef".into()));
    // And the lobby is full now.
    let (status, _) = matchmake(a.addr, &format!(r#"{{"lobby_id": {duo}}}"#)).await;
    assert_eq!(status, 409);
    a.stop().await;
    b.stop().await;
}

/// The sources of `connect-src` in the CSP of `GET /` on `addr`.
async fn connect_src(addr: std::net::SocketAddr) -> BTreeSet<String> {
    let (status, head, _) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    let policy = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy:"))
        .expect("a CSP");
    let directive = policy
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("connect-src "))
        .expect("a connect-src");
    directive.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn the_csp_of_a_node_lists_the_cluster_s_live_nodes_and_nothing_else() {
    let mut redis = RedisServer::start();
    let a = spawn_node(&redis, "a").await;
    let b = spawn_node(&redis, "b").await;
    // Operator input as it comes: a path, a query and capitals (cut off, lowercased), and
    // a public URL that is no WebSocket origin at all (never listed).
    let d = spawn_server(ticksync_server::Config {
        public_url: Some("ws://Node-D.Example:9000/deep/ws?x=1".to_owned()),
        ..node_config(&redis, "d")
    })
    .await;
    let e = spawn_server(ticksync_server::Config {
        public_url: Some("http://evil.example/ws; script-src *".to_owned()),
        ..node_config(&redis, "e")
    })
    .await;
    let origin = |node: &ticksync_tests::TestServer| format!("ws://{}", node.addr);
    let want = |origins: &[String]| -> BTreeSet<String> {
        std::iter::once("'self'".to_owned())
            .chain(origins.iter().cloned())
            .collect()
    };
    let all = want(&[
        origin(&a),
        origin(&b),
        "ws://node-d.example:9000".to_owned(),
    ]);
    // Every node learns of the others within a renewal (500 ms here).
    for node in [&a, &b, &d, &e] {
        let addr = node.addr;
        let all = all.clone();
        eventually(
            Duration::from_secs(3),
            "connect-src lists every node",
            || {
                let all = all.clone();
                async move {
                    let got = connect_src(addr).await;
                    (got == all).then_some(())
                }
            },
        )
        .await;
    }
    for source in connect_src(a.addr).await {
        assert!(
            source == "'self'"
                || (source.starts_with("ws://") && !source[5..].contains(['/', '*', ';'])),
            "only ws origins, no path: {source}"
        );
        assert!(!source.contains("evil"), "{source}");
    }

    // A node gone: its origin leaves within the lease (1.5 s).
    let b_origin = origin(&b);
    b.stop().await;
    let without_b = want(&[origin(&a), "ws://node-d.example:9000".to_owned()]);
    eventually(Duration::from_secs(4), "b's origin unlisted", || {
        let without_b = without_b.clone();
        async move { (connect_src(a.addr).await == without_b).then_some(()) }
    })
    .await;
    assert!(!connect_src(d.addr).await.contains(&b_origin));

    // Redis down: the last known list, not 'self' alone (pages mid-redirect still work).
    redis.kill();
    eventually(Duration::from_secs(3), "a sees Redis down", || async {
        (metric(a.addr, "ticksync_cluster_redis_up").await == 0.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(connect_src(a.addr).await, without_b);

    for node in [a, d, e] {
        node.stop().await;
    }
}
