//! The input path end to end: a burst of inputs ends with the newest applied and
//! acknowledged (never an older one), one player's burst costs nobody else an input, a
//! leave is never lost, and an operator's close gets through a flood of joins.

use std::time::Duration;

use glam::Vec2;
use ticksync_client::{Client, Incoming, SnapshotInfo};
use ticksync_protocol::ServerMessage;
use ticksync_tests::*;
use tokio::time::{Instant, timeout};

/// This player's entity's position in the client's state.
fn pos(client: &Client) -> Option<Vec2> {
    my_position(client).map(Vec2::from)
}

/// A connected player that said Hello.
async fn player(url: &str, name: &str) -> Client {
    let mut client = Client::connect(url).await.expect("connect");
    client.hello(name).await.expect("welcome");
    client
}

/// The next snapshot whose acknowledgement satisfies `done`, within a few seconds.
async fn snapshot_until(client: &mut Client, done: impl Fn(&SnapshotInfo) -> bool) -> SnapshotInfo {
    timeout(Duration::from_secs(5), async {
        loop {
            if let Incoming::Snapshot(s) = client.recv().await.expect("recv") {
                if done(&s) {
                    return s;
                }
            }
        }
    })
    .await
    .expect("a snapshot in time")
}

#[tokio::test]
async fn a_burst_ends_with_the_newest_input_applied_and_acked() {
    let server = spawn_server(test_config()).await;
    let mut client = player(&server.ws_url(), "burst").await;
    // A lobby of two: its whole input queue used to be eight inputs deep.
    let joined = client
        .join(&create_lobby("pair", 2, false))
        .await
        .expect("joined");
    assert_eq!(joined.seat, 1);
    // Eight "move right", then four "stop", all at once: what a client sends after a
    // stalled link comes back.
    for seq in 1..=8 {
        send_dir(&mut client, seq, 1.0, 0.0).await.expect("send");
    }
    for seq in 9..=12 {
        send_dir(&mut client, seq, 0.0, 0.0).await.expect("send");
    }
    let acked = snapshot_until(&mut client, |s| s.ack_seq >= 12).await;
    assert_eq!(
        acked.ack_seq, 12,
        "the newest input is the one acknowledged"
    );
    // Stopped: the entity stays where it is from then on (at most the tick that applied
    // "right", if any, moved it).
    let at = pos(&client).expect("own entity");
    let mut later = acked;
    for _ in 0..10 {
        later = snapshot_until(&mut client, |_| true).await;
    }
    let then = pos(&client).expect("own entity");
    assert!(
        (then - at).length() < 0.1,
        "the entity kept moving on a superseded input: {at} -> {then}"
    );
    assert_eq!(later.ack_seq, 12);
    server.stop().await;
}

#[tokio::test]
async fn one_players_burst_costs_another_no_input() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (mut flooder, _, a) = Client::quick_player(&url, "flood").await.expect("flooder");
    let (mut bystander, _, b) = Client::quick_player(&url, "by").await.expect("bystander");
    assert_eq!(a.lobby_id, b.lobby_id);
    // The flooder sends as many inputs as its rate limit lets through in a burst; the
    // bystander sends one input per tick and every one must be acknowledged.
    let mut seq = 0;
    for burst in 0..50u32 {
        send_dir(&mut flooder, burst + 1, 1.0, 0.0)
            .await
            .expect("send");
    }
    for _ in 0..10 {
        seq += 1;
        send_dir(&mut bystander, seq, -1.0, 0.0)
            .await
            .expect("send");
        let s = snapshot_until(&mut bystander, |s| s.ack_seq >= seq).await;
        assert_eq!(s.ack_seq, seq);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_leave_is_never_lost_and_its_seat_is_free_at_once() {
    let mut config = test_config();
    // A long grace: a lost leave would leave a ghost seat for all of it.
    config.resume_grace = Duration::from_secs(60);
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let mut owner = player(&url, "owner").await;
    let joined = owner
        .join(&create_lobby("duo", 2, false))
        .await
        .expect("joined");
    // A second player joins, floods inputs, and leaves with a close frame, twenty times:
    // if one leave were lost, the lobby of two would be full.
    for round in 0..20 {
        let mut guest = player(&url, "guest").await;
        guest
            .join(&join_id(joined.lobby_id))
            .await
            .unwrap_or_else(|e| panic!("round {round}: the seat was not freed: {e}"));
        for seq in 1..=40 {
            send_dir(&mut guest, seq, 1.0, 0.0).await.expect("send");
        }
        guest.close().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn an_operator_close_gets_through_a_join_flood() {
    let mut config = test_config();
    config.admin_token = vec!["secret".into()];
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let mut owner = player(&url, "owner").await;
    let joined = owner
        .join(&create_lobby("tiny", 1, false))
        .await
        .expect("joined");
    // Others keep asking to join the full lobby (refused cheaply) while the operator
    // closes it.
    let mut flooders = Vec::new();
    for i in 0..8 {
        flooders.push(player(&url, &format!("f{i}")).await);
    }
    let target = joined.lobby_id;
    let flood = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            for client in &mut flooders {
                let join = join_id(target);
                if client.send(&join).await.is_err() {
                    return;
                }
                let _ = timeout(Duration::from_millis(50), client.recv()).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let path = format!("/admin/api/lobbies/{target}/close");
    let (status, _, body) = http_request(
        server.addr,
        "POST",
        &path,
        &[("Authorization", "Bearer secret")],
        r#"{"reason":"maintenance"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let left = timeout(Duration::from_secs(5), async {
        loop {
            if let Incoming::Message(ServerMessage::Left { reason }) =
                owner.recv().await.expect("recv")
            {
                return reason;
            }
        }
    })
    .await
    .expect("the owner is told within a tick or two");
    assert_eq!(left, ticksync_protocol::LeftReason::LobbyClosed as u8);
    flood.abort();
    server.stop().await;
}

#[tokio::test]
async fn full_snapshots_stay_asked_for_across_a_resume() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let mut first = Client::connect(&url).await.expect("connect");
    let welcome = first.hello("full").await.expect("welcome");
    first.join(&quick_join()).await.expect("joined");
    // Deltas by default (an idle entity changes nothing, so a delta is what comes).
    timeout(Duration::from_secs(5), async {
        while first.deltas_received() == 0 {
            first.recv().await.expect("recv");
        }
    })
    .await
    .expect("deltas by default");
    first.set_deltas(false).await.expect("options");
    // Once the Options are read, only full snapshots come.
    let mut fulls = 0;
    timeout(Duration::from_secs(5), async {
        while fulls < 5 {
            if let Incoming::Snapshot(s) = first.recv().await.expect("recv") {
                fulls = if s.full { fulls + 1 } else { 0 };
            }
        }
    })
    .await
    .expect("full snapshots after asking");
    // The connection drops without a goodbye (no close frame).
    drop(first);
    let (mut again, resumed) =
        Client::resume(&url, "full", welcome.session_token, Duration::from_secs(5))
            .await
            .expect("resumed");
    assert_eq!(resumed.player_id, welcome.player_id);
    // No Options on the new connection: the server kept them, so only full snapshots.
    for _ in 0..20 {
        let s = again
            .recv_snapshot(Duration::from_secs(5))
            .await
            .expect("a snapshot");
        assert!(s.full, "a delta after asking for full snapshots");
    }
    assert_eq!(again.deltas_received(), 0);
    server.stop().await;
}
