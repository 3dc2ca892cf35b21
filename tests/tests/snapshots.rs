//! Snapshots from the real server: both players see a moving entity move the right way,
//! by the simulation's rules within quantization error, at the tick rate, with each
//! player's acknowledgement advancing.

use std::collections::HashMap;
use std::time::Duration;

use glam::Vec2;
use ticksync_client::{Client, Incoming};
use ticksync_server::games::arena::{self, Arena};
use ticksync_tests::*;

/// Where the player of `seat`'s entity is in `client`'s state.
fn pos(client: &Client, seat: u16) -> Option<Vec2> {
    position_of(client, seat).map(Vec2::from)
}

/// The arena's position step: 1000 units in 65535 steps.
const STEP: f32 = arena::ARENA_SIZE / 65535.0;

#[tokio::test]
async fn both_players_see_a_held_direction_move_the_entity() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (mut mover, _, moving) = Client::quick_player(&url, "mover").await.expect("mover");
    let (mut watcher, _, watching) = Client::quick_player(&url, "watcher")
        .await
        .expect("watcher");
    assert_eq!(moving.lobby_id, watching.lobby_id);
    let me = moving.seat;

    // Hold "right" at the tick rate for a second, reading our own snapshots meanwhile.
    let mut seen_by_mover: HashMap<u32, Vec2> = HashMap::new();
    let mut acks = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(33));
    let start = tokio::time::Instant::now();
    let mut seq = 0;
    while start.elapsed() < Duration::from_secs(1) {
        tokio::select! {
            _ = ticker.tick() => {
                seq += 1;
                send_dir(&mut mover, seq, 1.0, 0.0)
                    .await.expect("send input");
            }
            message = mover.recv() => {
                if let Incoming::Snapshot(s) = message.expect("recv") {
                    acks.push(s.ack_seq);
                    if let Some(p) = pos(&mover, me) { seen_by_mover.insert(s.tick, p); }
                }
            }
        }
    }

    // The spawn point, before any input, is the simulation's.
    let first_tick = *seen_by_mover.keys().min().expect("snapshots");
    let spawn = Arena::spawn_point(me - 1);
    assert!(
        seen_by_mover[&first_tick].distance(spawn) <= STEP,
        "spawned at {spawn}"
    );

    // While the input is held, each tick moves exactly speed * dt to the right.
    let dt = 1.0 / 30.0;
    let per_tick = arena::SPEED * dt;
    let mut ticks: Vec<_> = seen_by_mover.keys().copied().collect();
    ticks.sort_unstable();
    let mut checked = 0;
    for pair in ticks.windows(2) {
        let (a, b) = (seen_by_mover[&pair[0]], seen_by_mover[&pair[1]]);
        if a.x <= spawn.x + 0.5 || b.x >= arena::ARENA_SIZE - arena::RADIUS - 1.0 {
            continue;
        }
        let expected = per_tick * (pair[1] - pair[0]) as f32;
        assert!(
            (b.x - a.x - expected).abs() <= 2.0 * STEP,
            "tick {pair:?}: {a} -> {b}"
        );
        assert!((b.y - a.y).abs() <= 2.0 * STEP);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} moving intervals seen");

    // Acks advance and never go backwards.
    assert!(acks.windows(2).all(|w| w[0] <= w[1]), "{acks:?}");
    assert!(*acks.last().expect("acks") >= seq.saturating_sub(5));

    // The watcher sees the same entity at the same positions for the same ticks (its
    // socket still holds the snapshots of the past second), moving right.
    let mut watched = Vec::new();
    let watch_until = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < watch_until {
        if let Ok(Incoming::Snapshot(s)) = watcher.recv_timeout(Duration::from_secs(2)).await {
            if let (Some(p), Some(q)) = (pos(&watcher, me), seen_by_mover.get(&s.tick)) {
                assert_eq!(p, *q, "tick {}", s.tick);
                watched.push(p.x);
            }
        }
    }
    let matched = watched.len();
    assert!(
        watched.last().copied().unwrap_or(0.0) > watched.first().copied().unwrap_or(0.0) + 50.0,
        "the watcher saw the mover move right: {watched:?}"
    );
    assert!(matched > 0, "the watcher saw none of the mover's ticks");
    server.stop().await;
}

#[tokio::test]
async fn snapshots_arrive_at_the_tick_rate_with_advancing_acks() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (mut a, welcome, _) = Client::quick_player(&url, "a").await.expect("a");
    let (mut b, _, _) = Client::quick_player(&url, "b").await.expect("b");
    assert_eq!(welcome.tick_rate, 30);

    let window = Duration::from_secs(2);
    let start = tokio::time::Instant::now();
    let mut counts = [0u32; 2];
    let mut last_ack = 0;
    let mut last_tick = None;
    let mut seq = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(33));
    while start.elapsed() < window {
        tokio::select! {
            _ = ticker.tick() => {
                seq += 1;
                send_dir(&mut a, seq, 0.0, -1.0)
                    .await.expect("send");
            }
            m = a.recv() => if let Incoming::Snapshot(s) = m.expect("recv") {
                counts[0] += 1;
                assert!(s.ack_seq >= last_ack);
                last_ack = s.ack_seq;
                if let Some(t) = last_tick { assert!(s.tick > t, "ticks increase"); }
                last_tick = Some(s.tick);
            },
            m = b.recv() => if let Incoming::Snapshot(s) = m.expect("recv") {
                counts[1] += 1;
                assert_eq!(s.ack_seq, 0, "b sent no input");
                assert_eq!(b.state().map(|st| st.entities().count()), Some(2));
            },
        }
    }
    // 60 expected; generous bounds for a noisy machine.
    for count in counts {
        assert!((40..=70).contains(&count), "{count} snapshots in 2 s");
    }
    assert!(last_ack > 30, "ack only reached {last_ack} of {seq}");
    server.stop().await;
}

#[tokio::test]
async fn delta_snapshots_rebuild_the_same_state_in_fewer_bytes() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (mut mover, _, moving) = Client::quick_player(&url, "mover").await.expect("mover");
    let (mut full, _, _) = Client::quick_player(&url, "full").await.expect("full");
    let (mut delta, _, _) = Client::quick_player(&url, "delta").await.expect("delta");
    full.set_deltas(false).await.expect("options");
    let me = moving.seat;

    let mut by_full: HashMap<u32, Vec<(u32, [f32; 2])>> = HashMap::new();
    let mut by_delta: HashMap<u32, Vec<(u32, [f32; 2])>> = HashMap::new();
    let (full_bytes_before, delta_bytes_before) = (full.bytes_in(), delta.bytes_in());
    let mut ticker = tokio::time::interval(Duration::from_millis(33));
    let start = tokio::time::Instant::now();
    let mut seq = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        tokio::select! {
            _ = ticker.tick() => {
                seq += 1;
                // Turn now and then, so velocities change too.
                let angle = (seq / 10) as f32;
                send_dir(&mut mover, seq, angle.cos(), angle.sin())
                    .await.expect("input");
            }
            m = mover.recv() => { m.expect("mover"); }
            m = full.recv() => if let Incoming::Snapshot(s) = m.expect("full") { by_full.insert(s.tick, positions(&full)); },
            m = delta.recv() => if let Incoming::Snapshot(s) = m.expect("delta") { by_delta.insert(s.tick, positions(&delta)); },
        }
    }
    assert!(
        delta.deltas_received() > 20,
        "only {} deltas",
        delta.deltas_received()
    );
    let mut compared = 0;
    for (tick, d) in &by_delta {
        if let Some(f) = by_full.get(tick) {
            assert_eq!(d, f, "tick {tick}");
            compared += 1;
        }
    }
    assert!(compared > 20, "{compared} ticks compared");
    assert!(pos(&delta, me).is_some());
    assert!(
        full.deltas_received() <= 1,
        "full snapshots once the Options were read"
    );
    let full_bytes = full.bytes_in() - full_bytes_before;
    let delta_bytes = delta.bytes_in() - delta_bytes_before;
    assert!(
        delta_bytes * 10 < full_bytes * 9,
        "deltas {delta_bytes} B vs full {full_bytes} B"
    );
    server.stop().await;
}
