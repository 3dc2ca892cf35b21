//! Reconnect without losing the player: a dropped connection keeps its seat for the
//! resume grace; the session token brings back the same player, entity, score and lobby,
//! and the others see no leave or join.

use std::time::Duration;

use ticksync_client::{Client, ClientError, Incoming};
use ticksync_protocol::{ClientMessage, ErrorCode, ServerMessage, close};
use ticksync_tests::*;

const T: Duration = Duration::from_secs(5);

/// Reads the next `n` snapshots (ticks, not wall time, measure the wait), failing if a
/// PlayerLeft or PlayerJoined arrives meanwhile.
async fn no_leave_for(client: &mut Client, n: usize) {
    let mut snapshots = 0;
    while snapshots < n {
        match client.recv_timeout(T).await {
            Ok(Incoming::Message(ServerMessage::PlayerLeft { .. })) => {
                panic!("the other player saw a leave")
            }
            Ok(Incoming::Message(ServerMessage::PlayerJoined(p))) => {
                panic!("the other player saw a join: {p:?}")
            }
            Ok(Incoming::Snapshot(_)) => snapshots += 1,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn a_dropped_player_resumes_with_its_token() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (ann, welcome, joined) = Client::quick_player(&url, "ann").await.expect("ann");
    let (mut bob, _, _) = Client::quick_player(&url, "bob").await.expect("bob");

    // Ann's connection drops without a close frame.
    drop(ann);
    // Half a second of ticks at 30 Hz.
    no_leave_for(&mut bob, 15).await;

    let mut back = Client::connect(&url).await.expect("reconnect");
    let again = back
        .hello_with(
            ticksync_protocol::PROTOCOL_VERSION,
            "ann",
            Some(welcome.session_token),
        )
        .await
        .expect("welcome back");
    assert_eq!(again.player_id, welcome.player_id);
    assert_eq!(again.session_token, welcome.session_token);
    let rejoined = back
        .recv_message_until(T, |m| match m {
            ServerMessage::Joined(j) => Some(j.clone()),
            _ => None,
        })
        .await
        .expect("back in the lobby");
    assert_eq!(rejoined.lobby_id, joined.lobby_id);
    assert_eq!(rejoined.seat, joined.seat);
    assert_eq!(rejoined.players.len(), 2);
    let snapshot = back.recv_snapshot(T).await.expect("snapshots again");
    assert!(
        snapshot.full,
        "a resumed connection starts from a full snapshot"
    );
    assert!(
        position_of(&back, joined.seat).is_some(),
        "ann's entity is still there"
    );
    no_leave_for(&mut bob, 10).await;
    server.stop().await;
}

#[tokio::test]
async fn resuming_replaces_the_older_connection() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (mut first, welcome, joined) = Client::quick_player(&url, "ann").await.expect("ann");
    let mut second = Client::connect(&url).await.expect("connect");
    second
        .hello_with(
            ticksync_protocol::PROTOCOL_VERSION,
            "ann",
            Some(welcome.session_token),
        )
        .await
        .expect("resumed");
    let rejoined = second
        .recv_message_until(T, |m| match m {
            ServerMessage::Joined(j) => Some(j.seat),
            _ => None,
        })
        .await
        .expect("joined");
    assert_eq!(rejoined, joined.seat);
    let closed = loop {
        match first.recv_timeout(T).await {
            Ok(_) => continue,
            Err(ClientError::Closed { code, .. }) => break code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(closed, close::REPLACED);
    // The new connection keeps playing.
    second
        .recv_until(T, |m| matches!(m, Incoming::Snapshot(_)).then_some(()))
        .await
        .expect("snapshots");
    server.stop().await;
}

#[tokio::test]
async fn an_expired_token_starts_a_new_player_and_the_seat_is_freed() {
    let mut config = test_config();
    config.resume_grace = Duration::from_millis(300);
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let (ann, welcome, joined) = Client::quick_player(&url, "ann").await.expect("ann");
    let (mut bob, _, _) = Client::quick_player(&url, "bob").await.expect("bob");
    drop(ann);
    let left = bob
        .recv_message_until(T, |m| match m {
            ServerMessage::PlayerLeft { seat, .. } => Some(*seat),
            _ => None,
        })
        .await
        .expect("after the grace, the seat goes");
    assert_eq!(left, joined.seat);

    let mut late = Client::connect(&url).await.expect("connect");
    late.send(&ClientMessage::Hello {
        protocol_version: ticksync_protocol::PROTOCOL_VERSION,
        name: "ann".into(),
        resume_token: Some(welcome.session_token),
    })
    .await
    .expect("send");
    let first = late.recv_message_timeout(T).await.expect("an answer");
    assert!(
        matches!(first, ServerMessage::Error { code, .. } if code == ErrorCode::ResumeFailed.as_u16()),
        "{first:?}"
    );
    match late.recv_message_timeout(T).await.expect("welcome") {
        ServerMessage::Welcome { player_id, .. } => assert_ne!(player_id, welcome.player_id),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_clean_close_leaves_at_once_and_ends_the_token() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let (ann, welcome, _) = Client::quick_player(&url, "ann").await.expect("ann");
    let (mut bob, _, _) = Client::quick_player(&url, "bob").await.expect("bob");
    ann.close().await;
    bob.recv_message_until(Duration::from_secs(2), |m| {
        matches!(m, ServerMessage::PlayerLeft { .. }).then_some(())
    })
    .await
    .expect("a goodbye is a leave");
    let mut again = Client::connect(&url).await.expect("connect");
    again
        .send(&ClientMessage::Hello {
            protocol_version: ticksync_protocol::PROTOCOL_VERSION,
            name: "ann".into(),
            resume_token: Some(welcome.session_token),
        })
        .await
        .expect("send");
    let first = again.recv_message_timeout(T).await.expect("answer");
    assert!(
        matches!(first, ServerMessage::Error { code, .. } if code == ErrorCode::ResumeFailed.as_u16()),
        "{first:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_client_module_reconnects_by_itself() {
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(200);
    config.idle_timeout = Duration::from_millis(700);
    let server = spawn_server(config).await;
    let proxy = Proxy::start(server.addr).await;
    let (mut auto, welcome) = ticksync_client::AutoClient::connect(&proxy.ws_url(), "auto")
        .await
        .expect("connect");
    let joined = auto.client().join(&quick_join()).await.expect("join");
    // The link goes silent until the server drops it (idle timeout: resumable); then
    // the client hears the verdict, and its reconnection passes the proxy as usual.
    let mut frozen = proxy.freeze();
    assert!(
        frozen.server_closed(T).await,
        "the server drops a silent link"
    );
    frozen.release();
    let mut welcomed_again = None;
    let rejoined = loop {
        match auto.recv().await.expect("the client module recovers") {
            Incoming::Message(ServerMessage::Welcome { player_id, .. }) => {
                welcomed_again = Some(player_id);
            }
            Incoming::Message(ServerMessage::Joined(j)) if welcomed_again.is_some() => break j,
            _ => {}
        }
    };
    assert_eq!(auto.reconnects(), 1);
    assert_eq!(welcomed_again, Some(welcome.player_id), "the same player");
    assert_eq!(
        (rejoined.lobby_id, rejoined.seat),
        (joined.lobby_id, joined.seat),
        "back on the same entity in the same lobby"
    );
    server.stop().await;
}
