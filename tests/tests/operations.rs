//! Operations: /metrics counters move with a scripted session, the admin API refuses
//! missing and wrong tokens, and an operator can kick, close a lobby and send a notice.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ticksync_client::{Client, Incoming};
use ticksync_protocol::{ErrorCode, LeftReason, ServerMessage, close};
use ticksync_tests::*;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "test-admin-token";

/// The value of an unlabelled metric, or of one with exactly these labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, head, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/plain"));
    body
}

async fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) = http_request(
        addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or_default())
}

#[tokio::test]
async fn metrics_follow_a_scripted_session() {
    let server = spawn_server(test_config()).await;
    let before = scrape(server.addr).await;
    for name in [
        "ticksync_players",
        "ticksync_tick_duration_seconds_count",
        "ticksync_snapshots_sent_total",
        "ticksync_bytes_out_total",
        "ticksync_disconnects_total{code=\"1002\"}",
    ] {
        assert!(
            before.contains(name.split('{').next().unwrap_or(name)),
            "{name} missing"
        );
    }
    assert_eq!(metric(&before, "ticksync_players"), 0.0);

    let url = server.ws_url();
    let (mut a, _, _) = Client::quick_player(&url, "a").await.expect("a");
    let (_b, _, _) = Client::quick_player(&url, "b").await.expect("b");
    for seq in 1..=10 {
        send_dir(&mut a, seq, 1.0, 0.0).await.expect("input");
    }
    let mut snapshots = 0;
    a.recv_until(Duration::from_secs(5), |m| match m {
        Incoming::Snapshot(s) => {
            snapshots += 1;
            (s.ack_seq >= 10 && snapshots >= 15).then_some(())
        }
        _ => None,
    })
    .await
    .expect("inputs applied");
    let mut garbage = Client::connect(&url).await.expect("connect");
    garbage
        .send_raw(Message::Binary(Bytes::from_static(&[0xff, 0xff])))
        .await
        .expect("send");
    assert_eq!(
        error_then_close(&mut garbage).await.1,
        close::PROTOCOL_ERROR
    );

    let after = scrape(server.addr).await;
    assert_eq!(metric(&after, "ticksync_players"), 2.0);
    assert_eq!(metric(&after, "ticksync_lobbies"), 1.0);
    assert!(metric(&after, "ticksync_snapshots_sent_total") > 10.0);
    assert!(metric(&after, "ticksync_ticks_total") > 5.0);
    assert!(metric(&after, "ticksync_tick_duration_seconds_count") > 5.0);
    assert!(metric(&after, "ticksync_bytes_out_total") > 500.0);
    assert!(metric(&after, "ticksync_messages_in_total{kind=\"input\"}") >= 10.0);
    assert!(metric(&after, "ticksync_messages_in_total{kind=\"hello\"}") >= 2.0);
    assert_eq!(metric(&after, "ticksync_decode_errors_total"), 1.0);
    assert_eq!(
        metric(&after, "ticksync_disconnects_total{code=\"1002\"}"),
        1.0
    );
    assert_eq!(metric(&after, "ticksync_sessions_total"), 3.0);
    server.stop().await;
}

#[tokio::test]
async fn the_admin_api_is_off_by_default_and_refuses_bad_tokens() {
    let server = spawn_server(test_config()).await;
    assert_eq!(http_get(server.addr, "/admin/api/overview").await.0, 404);
    server.stop().await;

    let mut config = test_config();
    config.admin_token = vec![TOKEN.into()];
    let server = spawn_server(config).await;
    let (status, head, _) = http_get(server.addr, "/admin/api/overview").await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"));
    let wrong = http_request(
        server.addr,
        "GET",
        "/admin/api/overview",
        &[("Authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(wrong.0, 403);
    let (status, overview) = admin(server.addr, "GET", "/admin/api/overview", "").await;
    assert_eq!(status, 200);
    assert_eq!(overview["players"], 0);
    server.stop().await;
}

#[tokio::test]
async fn operators_kick_close_and_notify() {
    let mut config = test_config();
    config.admin_token = vec![TOKEN.into()];
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let (mut ann, ann_welcome, joined) = Client::quick_player(&url, "ann").await.expect("ann");
    let (mut bob, _, _) = Client::quick_player(&url, "bob").await.expect("bob");

    let (status, overview) = admin(server.addr, "GET", "/admin/api/overview", "").await;
    assert_eq!(status, 200);
    let lobby = &overview["lobbies"][0];
    assert_eq!(lobby["id"], joined.lobby_id);
    let names: Vec<_> = lobby["players"]
        .as_array()
        .expect("players")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["ann", "bob"]);

    let (status, _) = admin(
        server.addr,
        "POST",
        "/admin/api/notice",
        &format!(
            r#"{{"text":"restart soon","lobby_id":{}}}"#,
            joined.lobby_id
        ),
    )
    .await;
    assert_eq!(status, 200);
    let notice = bob
        .recv_message_until(Duration::from_secs(5), |m| match m {
            ServerMessage::Notice { text } => Some(text.clone()),
            _ => None,
        })
        .await
        .expect("notice");
    assert_eq!(notice, "restart soon");

    let (status, _) = admin(
        server.addr,
        "POST",
        &format!("/admin/api/players/{}/kick", ann_welcome.player_id),
        r#"{"reason":"be nice"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        error_then_close(&mut ann).await,
        (Some(ErrorCode::Kicked.as_u16()), close::KICKED)
    );
    bob.recv_message_until(Duration::from_secs(5), |m| {
        matches!(m, ServerMessage::PlayerLeft { .. }).then_some(())
    })
    .await
    .expect("a kicked player leaves");

    let (status, _) = admin(
        server.addr,
        "POST",
        &format!("/admin/api/lobbies/{}/close", joined.lobby_id),
        r#"{"reason":"maintenance"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let left = bob
        .recv_message_until(Duration::from_secs(5), |m| match m {
            ServerMessage::Left { reason } => Some(*reason),
            _ => None,
        })
        .await
        .expect("bob told");
    assert_eq!(left, LeftReason::LobbyClosed as u8);

    let metrics = http_get(server.addr, "/metrics").await.2;
    assert_eq!(metric(&metrics, "ticksync_kicks_total"), 1.0);
    assert_eq!(metric(&metrics, "ticksync_admin_actions_total"), 3.0);
    assert_eq!(
        metric(&metrics, "ticksync_disconnects_total{code=\"4006\"}"),
        1.0
    );
    let (status, _) = admin(server.addr, "POST", "/admin/api/players/999/kick", "{}").await;
    assert_eq!(status, 404);
    server.stop().await;
}
