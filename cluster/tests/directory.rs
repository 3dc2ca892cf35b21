//! The directory against a real `redis-server` (one per test), with several nodes in one
//! process.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use support::{Node, RedisServer, config, eventually, lobby, private_lobby};
use ticksync_cluster::{
    Directory, DirectoryConfig, Error, ListedLobby, LobbyKey, PENDING_LOBBY_BASE, ReservationError,
    cluster_id,
};
use tokio::task::JoinSet;

const LIMIT: Duration = Duration::from_secs(5);
/// The first pending lobby quick-join opens on a node.
const FIRST_PENDING: u32 = PENDING_LOBBY_BASE + 1;

/// Whether a quick-join's seat is in a pending lobby (one it or another opened).
fn in_pending(lobby: Option<u32>) -> bool {
    lobby.is_some_and(|l| l >= PENDING_LOBBY_BASE)
}

fn key(node: &str, lobby: u32) -> LobbyKey {
    LobbyKey {
        node: node.to_owned(),
        lobby,
    }
}

fn keys(list: &[ListedLobby]) -> Vec<(String, u32)> {
    list.iter()
        .map(|l| (l.key.node.clone(), l.key.lobby))
        .collect()
}

async fn three(redis: &RedisServer) -> (Node, Node, Node) {
    let a = Node::start(config(redis, "a"), vec![]).await;
    let b = Node::start(config(redis, "b"), vec![]).await;
    let c = Node::start(config(redis, "c"), vec![]).await;
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_agree_across_nodes() {
    let redis = RedisServer::start();
    let (a, b, c) = three(&redis).await;
    assert_eq!((a.dir.slot(), b.dir.slot(), c.dir.slot()), (1, 2, 3));
    a.set_lobbies(vec![
        lobby(1, 3, 10),
        lobby(2, 10, 10),
        private_lobby(3, 1, 4, "ABCDE-FGHJK"),
    ])
    .await;
    b.set_lobbies(vec![lobby(1, 3, 10), lobby(2, 0, 4)]).await;
    c.set_lobbies(vec![lobby(1, 7, 8)]).await;

    let from_a = a.dir.list_public(100).await.expect("list");
    assert_eq!(from_a, b.dir.list_public(100).await.expect("list"));
    assert_eq!(from_a, c.dir.list_public(100).await.expect("list"));
    // Fullest first; the tie (3 players) by cluster id: a holds the lower slot.
    assert_eq!(
        keys(&from_a),
        [
            ("a".into(), 2),
            ("c".into(), 1),
            ("a".into(), 1),
            ("b".into(), 1),
            ("b".into(), 2)
        ]
    );
    assert_eq!(from_a[1].cluster_id, cluster_id(3, 1));
    assert_eq!((from_a[1].players, from_a[1].max_players), (7, 8));
    assert!(from_a.iter().all(|l| !l.private && l.reserved == 0));
    let unique: HashSet<_> = from_a.iter().map(|l| l.key.clone()).collect();
    assert_eq!(unique.len(), from_a.len(), "a lobby listed twice");

    // A bounded page.
    assert_eq!(
        keys(&c.dir.list_public(2).await.expect("list")),
        keys(&from_a[..2])
    );

    // The private lobby: not listed, found by code and by cluster id from any node.
    let found = c
        .dir
        .lookup_code("ABCDE-FGHJK")
        .await
        .expect("lookup")
        .expect("found by code");
    assert_eq!(found.key, key("a", 3));
    assert!(found.private);
    assert_eq!(found.cluster_id, cluster_id(1, 3));
    assert_eq!(
        b.dir.lookup_id(found.cluster_id).await.expect("lookup"),
        None
    );
    assert_eq!(
        b.dir.lookup_key(&key("a", 3)).await.expect("lookup"),
        Some(found)
    );
    let by_id = b.dir.lookup_id(cluster_id(3, 1)).await.expect("lookup");
    assert_eq!(by_id.as_ref(), Some(&from_a[1]));
    // Reserving by id and by code, in one round trip each; not the other way round.
    let r = b
        .dir
        .reserve_id(cluster_id(3, 1), &[])
        .await
        .expect("by id");
    assert_eq!(
        (r.node.as_str(), r.lobby, r.url.as_str()),
        ("c", Some(1), "ws://c.test/ws")
    );
    let r = c
        .dir
        .reserve_code("ABCDE-FGHJK", &[])
        .await
        .expect("by code");
    assert_eq!(
        (r.node.as_str(), r.lobby, r.cluster_id),
        ("a", Some(3), cluster_id(1, 3))
    );
    assert!(matches!(
        c.dir.reserve_id(cluster_id(1, 3), &[]).await,
        Err(Error::LobbyNotFound)
    ));
    assert!(matches!(
        c.dir.reserve_code("ZZZZZ-ZZZZZ", &[]).await,
        Err(Error::LobbyNotFound)
    ));
    assert!(matches!(
        c.dir.reserve_id(cluster_id(1, 1) + 99, &[]).await,
        Err(Error::LobbyNotFound)
    ));
    assert_eq!(
        b.dir.lookup_code("ZZZZZ-ZZZZZ").await.expect("lookup"),
        None
    );
    assert_eq!(
        b.dir.lookup_id(cluster_id(9, 1)).await.expect("lookup"),
        None
    );

    // Nodes and their loads.
    let nodes = a.dir.nodes().await.expect("nodes");
    let loads: BTreeMap<_, _> = nodes
        .iter()
        .map(|n| (n.node.clone(), (n.load, n.lobbies)))
        .collect();
    assert_eq!(
        loads,
        BTreeMap::from([
            ("a".into(), (14, 3)),
            ("b".into(), (3, 2)),
            ("c".into(), (7, 1))
        ])
    );

    // Counts follow the nodes' true figures at each renewal; a closed lobby leaves at once.
    b.set_lobbies(vec![lobby(2, 4, 4)]).await;
    let after = a.dir.list_public(100).await.expect("list");
    assert_eq!(
        keys(&after),
        [
            ("a".into(), 2),
            ("c".into(), 1),
            ("b".into(), 2),
            ("a".into(), 1)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_reservations_on_a_lobby_of_ten_give_ten() {
    let redis = RedisServer::start();
    let (a, b, c) = three(&redis).await;
    a.set_lobbies(vec![lobby(1, 0, 10)]).await;
    let mut set = JoinSet::new();
    for i in 0..30 {
        let dir = [&a.dir, &b.dir, &c.dir][i % 3].clone();
        set.spawn(async move { dir.reserve(&key("a", 1), &[]).await });
    }
    let (mut made, mut full) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.expect("task") {
            Ok(res) => {
                assert_eq!((res.node.as_str(), res.lobby), ("a", Some(1)));
                assert_eq!(res.url, "ws://a.test/ws");
                made += 1;
            }
            Err(Error::LobbyFull) => full += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((made, full), (10, 20));
    let listed = b.dir.list_public(10).await.expect("list");
    assert_eq!((listed[0].players, listed[0].reserved), (0, 10));
    let made_by: u64 = [&a, &b, &c]
        .iter()
        .map(|n| n.dir.metrics().reservations_made)
        .sum();
    assert_eq!(made_by, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unredeemed_reservation_expires_and_its_seat_returns() {
    let redis = RedisServer::start();
    let a = Node::start(config(&redis, "a"), vec![lobby(1, 0, 1)]).await;
    let b = Node::start(config(&redis, "b"), vec![]).await;
    let first = b.dir.reserve(&key("a", 1), &[]).await.expect("a seat");
    let taken = Instant::now();
    assert!(matches!(
        b.dir.reserve(&key("a", 1), &[]).await,
        Err(Error::LobbyFull)
    ));
    let second = eventually(LIMIT, "the seat returns", || async {
        b.dir.reserve(&key("a", 1), &[]).await.ok()
    })
    .await;
    assert!(
        taken.elapsed() >= Duration::from_millis(1_300),
        "{:?}",
        taken.elapsed()
    );
    assert!(second.expires_at_ms > first.expires_at_ms);
    // The stale token fails; the owner counted the expiry at a renewal.
    assert!(matches!(
        a.dir.redeem(&first.token).await,
        Err(Error::Reservation(ReservationError::Expired))
    ));
    eventually(LIMIT, "owner counts the expiry", || async {
        (a.dir.metrics().reservations_expired >= 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_is_signed_single_use_and_for_its_node() {
    let redis = RedisServer::start();
    let a = Node::start(config(&redis, "a"), vec![lobby(1, 0, 2)]).await;
    let b = Node::start(config(&redis, "b"), vec![]).await;
    let r = b.dir.reserve(&key("a", 1), &[]).await.expect("a seat");
    assert_eq!(r.cluster_id, cluster_id(1, 1));

    assert!(matches!(
        b.dir.redeem(&r.token).await,
        Err(Error::Reservation(ReservationError::WrongNode))
    ));
    let mut forged = r.token.clone();
    forged[25..29].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        a.dir.redeem(&forged).await,
        Err(Error::Reservation(ReservationError::BadSignature))
    ));
    assert!(matches!(
        a.dir.redeem(b"not a token").await,
        Err(Error::Reservation(ReservationError::Malformed))
    ));
    assert_eq!(
        a.dir.redeem(&r.token).await.expect("first redeem").lobby,
        Some(1)
    );
    assert!(matches!(
        a.dir.redeem(&r.token).await,
        Err(Error::Reservation(ReservationError::AlreadyUsed))
    ));
    assert_eq!(a.dir.metrics().reservations_used, 1);

    // The redeemed seat stays held until the owner reports the player: no overfill in
    // between. One more seat, then full.
    b.dir
        .reserve(&key("a", 1), &[])
        .await
        .expect("the second seat");
    assert!(matches!(
        b.dir.reserve(&key("a", 1), &[]).await,
        Err(Error::LobbyFull)
    ));
    a.set_lobbies(vec![lobby(1, 1, 2)]).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await; // past the hold (one lease)
    assert!(matches!(
        b.dir.reserve(&key("a", 1), &[]).await,
        Err(Error::LobbyFull)
    ));
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_options_travel_with_the_reservation_and_a_released_seat_returns_at_once() {
    let redis = RedisServer::start();
    let a = Node::start(
        config(&redis, "a"),
        vec![lobby(1, 0, 2), private_lobby(2, 0, 4, "ABCDE-FGHJK")],
    )
    .await;
    let b = Node::start(config(&redis, "b"), vec![]).await;
    // In order, as sent; any UTF-8 in values (cjson passes it through, escapes '/'),
    // control characters and all.
    let options = pairs(&[
        ("team", "red"),
        ("class", "médic/2 \"q\" 🚀"),
        ("note", "tab\tnul\u{0}\\"),
    ]);
    let by_key = b.dir.reserve(&key("a", 1), &options).await.expect("a seat");
    let by_id = b
        .dir
        .reserve_id(cluster_id(1, 1), &pairs(&[("team", "blue")]))
        .await
        .expect("the second seat");
    let by_code = b
        .dir
        .reserve_code("ABCDE-FGHJK", &pairs(&[("role", "host")]))
        .await
        .expect("by code");
    let plain = b.dir.reserve(&key("a", 2), &[]).await.expect("no options");
    let first = a.dir.redeem(&by_key.token).await.expect("redeem");
    assert_eq!((first.lobby, first.options.clone()), (Some(1), options));
    assert_eq!(
        a.dir.redeem(&by_id.token).await.expect("redeem").options,
        pairs(&[("team", "blue")])
    );
    assert_eq!(
        a.dir.redeem(&by_code.token).await.expect("redeem").options,
        pairs(&[("role", "host")])
    );
    assert!(
        a.dir
            .redeem(&plain.token)
            .await
            .expect("redeem")
            .options
            .is_empty()
    );
    // The options are read once: used tokens carry nothing more.
    assert!(matches!(
        a.dir.redeem(&by_key.token).await,
        Err(Error::Reservation(ReservationError::AlreadyUsed))
    ));

    // Both seats of lobby 1 are held until a counts its players. The first player was
    // refused by the game: its seat is given back at once, not at the hold's end.
    assert!(matches!(
        b.dir.reserve(&key("a", 1), &[]).await,
        Err(Error::LobbyFull)
    ));
    assert!(a.dir.release(&first).await.expect("release"));
    assert!(!a.dir.release(&first).await.expect("twice"), "once");
    assert_eq!(a.dir.metrics().reservations_released, 1);
    b.dir
        .reserve(&key("a", 1), &[])
        .await
        .expect("the released seat, at once");
    assert!(matches!(
        b.dir.reserve(&key("a", 1), &[]).await,
        Err(Error::LobbyFull)
    ));

    // A seat in a new pending lobby carries them too (its creation options).
    let c = Node::start(config(&redis, "c"), vec![]).await;
    a.set_lobbies(vec![lobby(1, 2, 2), private_lobby(2, 0, 4, "ABCDE-FGHJK")])
        .await;
    let ticket = b
        .dir
        .quick_join(&pairs(&[("map", "dunes")]))
        .await
        .expect("a ticket");
    assert_eq!(ticket.lobby, Some(FIRST_PENDING));
    let redeemer = [&a, &b, &c]
        .into_iter()
        .find(|n| n.dir.node_id() == ticket.node)
        .expect("a node");
    let redeemed = redeemer.dir.redeem(&ticket.token).await.expect("redeem");
    assert_eq!(
        (redeemed.lobby, redeemed.open, redeemed.options.clone()),
        (Some(FIRST_PENDING), Some(8), pairs(&[("map", "dunes")]))
    );
    assert!(redeemer.dir.release(&redeemed).await.expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_redeemed_just_before_expiry_stays_held_until_counted() {
    let redis = RedisServer::start();
    let mut cfg = config(&redis, "a");
    cfg.reservation_ttl = Duration::from_millis(400);
    let a = Node::start(cfg, vec![lobby(1, 0, 1)]).await;
    let r = a.dir.reserve(&key("a", 1), &[]).await.expect("a seat");
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.dir.redeem(&r.token).await.expect("redeemed in time");
    let redeemed = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await; // past the reservation's expiry
    let refused = a.dir.reserve(&key("a", 1), &[]).await;
    if redeemed.elapsed() < Duration::from_millis(850) {
        assert!(matches!(refused, Err(Error::LobbyFull)), "{refused:?}");
    }
    // The owner seats the player and reports it: the lobby stays full after the hold.
    a.set_lobbies(vec![lobby(1, 1, 1)]).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(matches!(
        a.dir.reserve(&key("a", 1), &[]).await,
        Err(Error::LobbyFull)
    ));
    // The player leaves: the seat is free again at once.
    a.set_lobbies(vec![lobby(1, 0, 1)]).await;
    a.dir
        .reserve(&key("a", 1), &[])
        .await
        .expect("the seat is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_vanishes_within_its_lease() {
    let redis = RedisServer::start();
    let (a, mut b, c) = three(&redis).await;
    a.set_lobbies(vec![lobby(1, 5, 6)]).await;
    b.set_lobbies(vec![lobby(1, 2, 10), private_lobby(2, 1, 2, "KKKKK-KKKKK")])
        .await;
    c.set_lobbies(vec![lobby(1, 4, 6)]).await;
    assert_eq!(c.dir.list_public(100).await.expect("list").len(), 3);

    b.kill().await;
    let killed = Instant::now();
    eventually(LIMIT, "b's lobbies leave every listing", || async {
        let gone_a = a
            .dir
            .list_public(100)
            .await
            .ok()?
            .iter()
            .all(|l| l.key.node != "b");
        let gone_c = c
            .dir
            .list_public(100)
            .await
            .ok()?
            .iter()
            .all(|l| l.key.node != "b");
        (gone_a && gone_c).then_some(())
    })
    .await;
    assert!(
        killed.elapsed() <= Duration::from_millis(900 + 600),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(
        a.dir.lookup_code("KKKKK-KKKKK").await.expect("lookup"),
        None
    );
    assert!(matches!(
        c.dir.reserve(&key("b", 1), &[]).await,
        Err(Error::LobbyNotFound)
    ));
    assert!(
        a.dir
            .nodes()
            .await
            .expect("nodes")
            .iter()
            .all(|n| n.node != "b")
    );
    // b was the least-loaded: no quick-join goes there now. a/1 and c/1 hold 1 + 2 seats.
    let mut picked = Vec::new();
    loop {
        let r = c.dir.quick_join(&[]).await.expect("quick-join");
        picked.push((r.node.clone(), r.lobby));
        if in_pending(r.lobby) {
            break;
        }
        assert!(picked.len() < 10);
    }
    assert_eq!(
        picked,
        [
            ("a".into(), Some(1)),
            ("c".into(), Some(1)),
            ("c".into(), Some(1)),
            // Loads with the seats just reserved: a 5 + 1, c 4 + 2; the tie goes by id.
            ("a".into(), Some(FIRST_PENDING))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_re_registers_once() {
    let redis = RedisServer::start();
    let a = Node::start(config(&redis, "a"), vec![lobby(1, 1, 4)]).await;
    let mut b = Node::start(config(&redis, "b"), vec![lobby(1, 2, 4)]).await;
    b.kill().await;
    eventually(LIMIT, "b vanishes", || async {
        let list = a.dir.list_public(100).await.ok()?;
        (list.len() == 1).then_some(())
    })
    .await;
    // b wakes up: its next renewal puts it back, once.
    b.dir.renew_now().await.expect("renew");
    let list = a.dir.list_public(100).await.expect("list");
    assert_eq!(keys(&list), [("b".into(), 1), ("a".into(), 1)]);
    assert_eq!(b.dir.metrics().lease_lapses, 1);
    assert_eq!(b.dir.slot(), 2, "its slot was still free: ids unchanged");
    b.dir.renew_now().await.expect("renew");
    assert_eq!(a.dir.list_public(100).await.expect("list").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_and_restarted_heals_within_seconds() {
    let mut redis = RedisServer::start();
    let (a, b, c) = three(&redis).await;
    a.set_lobbies(vec![lobby(1, 1, 4), private_lobby(2, 1, 4, "PPPPP-PPPPP")])
        .await;
    b.set_lobbies(vec![lobby(1, 2, 4)]).await;
    c.set_lobbies(vec![lobby(1, 3, 4), lobby(2, 0, 4)]).await;
    let before = a.dir.list_public(100).await.expect("list");
    assert_eq!(before.len(), 4);

    redis.kill();
    let err = eventually(LIMIT, "calls fail while Redis is down", || async {
        b.dir.list_public(100).await.err()
    })
    .await;
    assert!(err.is_unavailable(), "{err}");
    let err = b
        .dir
        .reserve(&key("a", 1), &[])
        .await
        .expect_err("no Redis");
    assert!(err.is_unavailable(), "{err}");
    assert!(!b.dir.metrics().redis_up);
    assert!(b.dir.metrics().redis_errors >= 2);

    redis.restart();
    let restarted = Instant::now();
    let healed = eventually(LIMIT, "every lobby listed again", || async {
        let list = c.dir.list_public(100).await.ok()?;
        (list.len() == 4).then_some(list)
    })
    .await;
    assert!(restarted.elapsed() < LIMIT);
    assert_eq!(keys(&healed), keys(&before));
    eventually(LIMIT, "the private code is back", || async {
        b.dir.lookup_code("PPPPP-PPPPP").await.ok()?
    })
    .await;
    eventually(LIMIT, "every node re-registered", || async {
        let nodes = a.dir.nodes().await.ok()?;
        (nodes.len() == 3).then_some(())
    })
    .await;
    assert!(a.dir.metrics().redis_up);
    assert!(a.dir.metrics().renewal_failures >= 1);
    // A fresh secret was made; a reservation made now redeems.
    let r = eventually(LIMIT, "a reservation after the restart", || async {
        b.dir.reserve(&key("c", 2), &[]).await.ok()
    })
    .await;
    let redeemed = eventually(LIMIT, "c redeems it", || async {
        c.dir.redeem(&r.token).await.ok()
    })
    .await;
    assert_eq!(redeemed.lobby, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_removes_a_nodes_lobbies() {
    let redis = RedisServer::start();
    let (a, b, c) = three(&redis).await;
    a.set_lobbies(vec![lobby(1, 8, 10)]).await;
    b.set_lobbies(vec![lobby(1, 9, 10), private_lobby(2, 1, 4, "DDDDD-DDDDD")])
        .await;
    c.set_lobbies(vec![lobby(1, 9, 10)]).await;
    let pending = a
        .dir
        .reserve(&key("b", 1), &[])
        .await
        .expect("a seat before the drain");

    b.dir.drain().await.expect("drain");
    assert!(b.dir.is_draining());
    // At once, for every node: no waiting for a lease.
    for dir in [&a.dir, &b.dir, &c.dir] {
        let list = dir.list_public(100).await.expect("list");
        assert_eq!(keys(&list), [("c".into(), 1), ("a".into(), 1)]);
        assert_eq!(dir.lookup_code("DDDDD-DDDDD").await.expect("lookup"), None);
        assert!(matches!(
            dir.reserve(&key("b", 1), &[]).await,
            Err(Error::Draining)
        ));
    }
    let nodes = a.dir.nodes().await.expect("nodes");
    assert!(nodes.iter().any(|n| n.node == "b" && n.draining));
    // b has the fewest players (10 vs 8 and 9) but is draining: creates go to a.
    let mut seen = Vec::new();
    loop {
        let r = a.dir.quick_join(&[]).await.expect("quick-join");
        assert_ne!(r.node, "b");
        seen.push((r.node.clone(), r.lobby));
        if in_pending(r.lobby) {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            ("c".into(), Some(1)),
            ("a".into(), Some(1)),
            ("a".into(), Some(1)),
            ("a".into(), Some(FIRST_PENDING))
        ]
    );
    // The renewal task keeps it marked draining (listed: c/1, a/1 and a's pending one).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = c.dir.list_public(100).await.expect("list");
    assert_eq!(
        keys(&list),
        [
            ("c".into(), 1),
            ("a".into(), 1),
            ("a".into(), FIRST_PENDING)
        ]
    );
    // A player already on its way is still let in (the server decides what to do).
    assert_eq!(
        b.dir.redeem(&pending.token).await.expect("redeem").lobby,
        Some(1)
    );

    b.dir.deregister().await.expect("deregister");
    assert!(
        a.dir
            .nodes()
            .await
            .expect("nodes")
            .iter()
            .all(|n| n.node != "b")
    );
    assert_eq!(a.dir.lookup_key(&key("b", 1)).await.expect("lookup"), None);
    b.dir.renew_now().await.expect("a no-op now");
    assert!(
        a.dir
            .nodes()
            .await
            .expect("nodes")
            .iter()
            .all(|n| n.node != "b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_join_picks_the_fullest_then_the_least_loaded_node() {
    let redis = RedisServer::start();
    let (a, b, c) = three(&redis).await;
    a.set_lobbies(vec![
        lobby(1, 6, 10),
        private_lobby(2, 1, 10, "QQQQQ-QQQQQ"),
    ])
    .await;
    b.set_lobbies(vec![lobby(1, 8, 10), lobby(2, 10, 10)]).await;
    c.set_lobbies(vec![lobby(1, 2, 2), lobby(2, 1, 2)]).await;
    let mut order = Vec::new();
    for i in 0..9 {
        let dir = [&a.dir, &b.dir, &c.dir][i % 3];
        let r = dir.quick_join(&[]).await.expect("quick-join");
        order.push((r.node.clone(), r.lobby));
    }
    // Fullest is the most players (b/1, then a/1, then c/2), full lobbies skipped.
    assert_eq!(
        order,
        [
            ("b".into(), Some(1)),
            ("b".into(), Some(1)),
            ("a".into(), Some(1)),
            ("a".into(), Some(1)),
            ("a".into(), Some(1)),
            ("a".into(), Some(1)),
            ("c".into(), Some(2)),
            // Every public lobby full: a pending lobby on the least-loaded node (c: 3
            // players and a seat), listed at once, so the next quick-join takes a seat
            // in it instead of opening another.
            ("c".into(), Some(FIRST_PENDING)),
            ("c".into(), Some(FIRST_PENDING)),
        ]
    );
    let ticket = c.dir.quick_join(&[]).await.expect("quick-join");
    assert_eq!(
        (ticket.node.as_str(), ticket.url.as_str()),
        ("c", "ws://c.test/ws")
    );
    assert_eq!(ticket.cluster_id, cluster_id(c.dir.slot(), FIRST_PENDING));
    let listed = a.dir.list_public(100).await.expect("list");
    let new = listed
        .iter()
        .find(|l| l.key == key("c", FIRST_PENDING))
        .expect("the pending lobby is listed");
    assert_eq!((new.players, new.reserved, new.max_players), (0, 3, 8));
    let redeemed = c.dir.redeem(&ticket.token).await.expect("redeem");
    assert_eq!(
        (redeemed.lobby, redeemed.open),
        (Some(FIRST_PENDING), Some(8)),
        "c is to open it, with its seats"
    );
    assert!(matches!(
        c.dir.redeem(&ticket.token).await,
        Err(Error::Reservation(ReservationError::AlreadyUsed))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_quick_joins_through_three_nodes_never_overfill() {
    let redis = RedisServer::start();
    let (a, b, c) = three(&redis).await;
    a.set_lobbies(vec![lobby(1, 0, 10)]).await;
    b.set_lobbies(vec![lobby(1, 5, 10)]).await;
    c.set_lobbies(vec![lobby(1, 9, 10)]).await;
    let mut set = JoinSet::new();
    for i in 0..30 {
        let dir: Directory = [&a.dir, &b.dir, &c.dir][i % 3].clone();
        set.spawn(async move { dir.quick_join(&[]).await });
    }
    let mut seats: BTreeMap<(String, Option<u32>), u32> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let r = r.expect("task").expect("quick-join");
        *seats.entry((r.node, r.lobby)).or_default() += 1;
    }
    // 16 free seats, filled fullest first. Then every node's load (players + seats held)
    // is 10: the tie opens a pending lobby of 8 on a, which the next 7 fill (whichever
    // node they came through); then b, least loaded, opens one for the last 6.
    assert_eq!(
        seats,
        BTreeMap::from([
            (("a".into(), Some(1)), 10),
            (("a".into(), Some(FIRST_PENDING)), 8),
            (("b".into(), Some(1)), 5),
            (("b".into(), Some(FIRST_PENDING)), 6),
            (("c".into(), Some(1)), 1),
        ])
    );
    // Listed once each, pending ones too; none over its cap; every seat counted once.
    let list = a.dir.list_public(100).await.expect("list");
    assert_eq!(list.len(), 5, "{list:?}");
    let mut taken = 0;
    for l in &list {
        let used = u32::from(l.players) + l.reserved;
        assert!(used <= u32::from(l.max_players), "{l:?}");
        taken += used;
    }
    assert_eq!(taken, 14 + 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_lobby_never_opened_expires_and_its_seats_fail_cleanly() {
    let redis = RedisServer::start();
    let mut cfg = config(&redis, "a");
    cfg.reservation_ttl = Duration::from_millis(400);
    cfg.quick_lobby_size = 4;
    let a = Node::start(cfg, vec![]).await;
    let mut cfg = config(&redis, "b");
    cfg.reservation_ttl = Duration::from_millis(400);
    let b = Node::start(cfg, vec![lobby(1, 5, 5)]).await;
    // b is full; a, with no players, gets the pending lobby, and never opens it (as if it
    // had died before the players came). Both quick-joins take a seat in it.
    let first = b.dir.quick_join(&[]).await.expect("a seat");
    let second = a.dir.quick_join(&[]).await.expect("a seat");
    assert_eq!(
        (first.node.as_str(), first.lobby),
        ("a", Some(FIRST_PENDING))
    );
    assert_eq!(second.lobby, first.lobby);
    eventually(LIMIT, "the pending lobby expires", || async {
        let list = a.dir.list_public(100).await.ok()?;
        list.iter()
            .all(|l| l.key != key("a", FIRST_PENDING))
            .then_some(())
    })
    .await;
    assert_eq!(
        a.dir
            .lookup_key(&key("a", FIRST_PENDING))
            .await
            .expect("lookup"),
        None
    );
    assert!(matches!(
        a.dir.redeem(&first.token).await,
        Err(Error::Reservation(ReservationError::Expired))
    ));
    assert!(matches!(
        a.dir.reserve(&key("a", FIRST_PENDING), &[]).await,
        Err(Error::LobbyNotFound)
    ));
    // The next quick-join opens a fresh one.
    let next = a.dir.quick_join(&[]).await.expect("a seat");
    assert_eq!(next.lobby, Some(FIRST_PENDING + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seated_player_s_hold_goes_with_the_renewal_that_counts_it() {
    let redis = RedisServer::start();
    let a = Node::start(config(&redis, "a"), vec![lobby(1, 0, 2)]).await;
    let r = a.dir.reserve(&key("a", 1), &[]).await.expect("a seat");
    let redeemed = a.dir.redeem(&r.token).await.expect("redeem");
    // Seated: the node counts the player, and says so.
    a.set_lobbies(vec![lobby(1, 1, 2)]).await;
    let l = a.dir.lookup_key(&key("a", 1)).await.expect("lookup");
    assert_eq!(
        l.map(|l| (l.players, l.reserved)),
        Some((1, 1)),
        "counted and held: one seat looks taken twice until the node says it seated the player"
    );
    a.dir.seated(&redeemed);
    a.dir.renew_now().await.expect("renew");
    let l = a.dir.lookup_key(&key("a", 1)).await.expect("lookup");
    assert_eq!(l.map(|l| (l.players, l.reserved)), Some((1, 0)));
    a.dir
        .reserve(&key("a", 1), &[])
        .await
        .expect("the second seat is free");
    assert!(
        !a.dir.release(&redeemed).await.expect("release"),
        "no hold left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_start_is_a_clear_error() {
    let redis = RedisServer::start();
    let mut cfg: DirectoryConfig = config(&redis, "a");
    drop(redis);
    cfg.op_timeout = Duration::from_millis(200);
    let err = Directory::connect(cfg, Vec::<ticksync_cluster::LobbyEntry>::new)
        .await
        .expect_err("no Redis");
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_s_pending_lobby_leaves_the_listings_at_once() {
    let redis = RedisServer::start();
    let a = Node::start(config(&redis, "a"), vec![lobby(1, 3, 3)]).await;
    let b = Node::start(config(&redis, "b"), vec![]).await;
    let r = a.dir.quick_join(&[]).await.expect("a seat");
    assert_eq!((r.node.as_str(), r.lobby), ("b", Some(FIRST_PENDING)));
    let list = a.dir.list_public(100).await.expect("list");
    assert_eq!(keys(&list), [("a".into(), 1), ("b".into(), FIRST_PENDING)]);

    b.dir.drain().await.expect("drain");
    let list = a.dir.list_public(100).await.expect("list");
    assert_eq!(keys(&list), [("a".into(), 1)], "b's pending lobby too");
    assert_eq!(
        a.dir
            .lookup_key(&key("b", FIRST_PENDING))
            .await
            .expect("lookup"),
        None
    );
    assert!(matches!(
        a.dir.reserve(&key("b", FIRST_PENDING), &[]).await,
        Err(Error::Draining)
    ));
    // The next quick-join opens one on a, the only node not draining.
    let next = a.dir.quick_join(&[]).await.expect("a seat");
    assert_eq!((next.node.as_str(), next.lobby), ("a", Some(FIRST_PENDING)));
}
