//! Lobby flow against the real server: list, create, join by id and by private code,
//! Full, leave, PlayerJoined/PlayerLeft, quick-join, an empty lobby closing.

use std::time::Duration;

use ticksync_client::{Client, ClientError, Incoming};
use ticksync_protocol::{ClientMessage, ErrorCode, ServerMessage};
use ticksync_tests::*;

const T: Duration = Duration::from_secs(5);

async fn player(url: &str, name: &str) -> Client {
    let mut client = Client::connect(url).await.expect("connect");
    client.hello(name).await.expect("welcome");
    client
}

async fn list(client: &mut Client) -> Vec<ticksync_protocol::LobbyInfo> {
    client
        .send(&ClientMessage::ListLobbies)
        .await
        .expect("send");
    client
        .recv_message_until(T, |m| match m {
            ServerMessage::LobbyList { lobbies } => Some(lobbies.clone()),
            _ => None,
        })
        .await
        .expect("lobby list")
}

fn server_error(result: Result<ticksync_protocol::Joined, ClientError>) -> u16 {
    match result {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_list_join_full_and_leave() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let mut ann = player(&url, "ann").await;
    let mut bob = player(&url, "bob").await;
    let mut cy = player(&url, "cy").await;

    let joined = ann
        .join(&create_lobby("room", 2, false))
        .await
        .expect("create");
    assert_eq!(joined.name, "room");
    assert_eq!(joined.code, None);
    assert_eq!(joined.players.len(), 1);
    assert_eq!(joined.players[0].name, "ann");

    // The lobby is listed once its tick has seated ann.
    let lobby_id = joined.lobby_id;
    let lobbies = list(&mut bob).await;
    let info = lobbies.iter().find(|l| l.id == lobby_id).expect("listed");
    assert_eq!(
        (info.name.as_str(), info.players, info.max_players),
        ("room", 1, 2)
    );

    let bob_joined = bob.join(&join_id(lobby_id)).await.expect("join by id");
    assert_eq!(bob_joined.lobby_id, lobby_id);
    let names: Vec<_> = bob_joined.players.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ann", "bob"]);
    let seen = ann
        .recv_message_until(T, |m| match m {
            ServerMessage::PlayerJoined(p) => Some(p.clone()),
            _ => None,
        })
        .await
        .expect("ann sees bob join");
    assert_eq!((seen.name.as_str(), seen.seat), ("bob", bob_joined.seat));

    let full = cy.join(&join_id(lobby_id)).await;
    assert_eq!(server_error(full), ErrorCode::LobbyFull.as_u16());

    bob.send(&ClientMessage::LeaveLobby).await.expect("send");
    bob.recv_message_until(T, |m| {
        matches!(m, ServerMessage::Left { reason: 0 }).then_some(())
    })
    .await
    .expect("bob told he left");
    let left = ann
        .recv_message_until(T, |m| match m {
            ServerMessage::PlayerLeft { seat, .. } => Some(*seat),
            _ => None,
        })
        .await
        .expect("ann sees bob leave");
    assert_eq!(left, bob_joined.seat);

    // Now there is room again.
    let cy_joined = cy
        .join(&join_id(lobby_id))
        .await
        .expect("room after bob left");
    assert_eq!(cy_joined.players.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn private_lobbies_are_hidden_and_joined_by_code() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    let mut host = player(&url, "host").await;
    let mut guest = player(&url, "guest").await;

    let joined = host
        .join(&create_lobby("secret", 4, true))
        .await
        .expect("create private");
    let code = joined.code.clone().expect("a private lobby has a code");
    assert_eq!(code.len(), 11, "{code}");

    assert!(
        list(&mut guest)
            .await
            .iter()
            .all(|l| l.id != joined.lobby_id)
    );
    let by_id = guest.join(&join_id(joined.lobby_id)).await;
    assert_eq!(server_error(by_id), ErrorCode::LobbyNotFound.as_u16());
    let wrong = guest.join(&join_code("ZZZZZ-ZZZZZ")).await;
    assert_eq!(server_error(wrong), ErrorCode::LobbyNotFound.as_u16());

    // Codes forgive case and the dash.
    let typed = code.to_lowercase().replace('-', "");
    let guest_joined = guest.join(&join_code(typed)).await.expect("join by code");
    assert_eq!(guest_joined.lobby_id, joined.lobby_id);
    assert_eq!(guest_joined.code, Some(code));
    server.stop().await;
}

#[tokio::test]
async fn quick_join_fills_the_fullest_lobby_then_creates_one() {
    let mut config = test_config();
    config.quick_lobby_size = 2;
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let (_a, _, a) = Client::quick_player(&url, "a").await.expect("a");
    let (_b, _, b) = Client::quick_player(&url, "b").await.expect("b");
    let (_c, _, c) = Client::quick_player(&url, "c").await.expect("c");
    assert_eq!(a.lobby_id, b.lobby_id, "b joins a's lobby");
    assert_eq!(a.max_players, 2);
    assert_ne!(
        c.lobby_id, a.lobby_id,
        "a full lobby makes quick-join create one"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_lobby_requests_get_clear_errors() {
    let server = spawn_server(test_config()).await;
    let mut p = player(&server.ws_url(), "p").await;
    for (request, code) in [
        (create_lobby("  ", 4, false), ErrorCode::InvalidName),
        (create_lobby("huge", 200, false), ErrorCode::InvalidArgument),
        (join_id(999), ErrorCode::LobbyNotFound),
    ] {
        assert_eq!(
            server_error(p.join(&request).await),
            code.as_u16(),
            "{request:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_empty_lobby_closes_after_its_grace() {
    let mut config = test_config();
    config.empty_lobby_grace = Duration::from_millis(300);
    let server = spawn_server(config).await;
    let mut p = player(&server.ws_url(), "p").await;
    let joined = p
        .join(&create_lobby("brief", 4, false))
        .await
        .expect("create");
    // Occupied: it stays open well past the grace (counted in its own ticks: 24 ticks at
    // 30 Hz are 800 ms).
    p.recv_until(T, |m| match m {
        Incoming::Snapshot(s) if s.tick >= joined.tick + 24 => Some(()),
        _ => None,
    })
    .await
    .expect("the lobby ticks on");
    assert!(list(&mut p).await.iter().any(|l| l.id == joined.lobby_id));
    p.send(&ClientMessage::LeaveLobby).await.expect("leave");
    p.recv_message_until(T, |m| matches!(m, ServerMessage::Left { .. }).then_some(()))
        .await
        .expect("left");
    // Nothing tells anyone that an empty lobby closed: watch the public listing (over
    // HTTP, which has no rate limit), within a deadline.
    let listed = |body: &str| {
        let lobbies: serde_json::Value = serde_json::from_str(body).expect("JSON");
        lobbies
            .as_array()
            .expect("a list")
            .iter()
            .any(|l| l["id"] == joined.lobby_id)
    };
    assert!(listed(&http_get(server.addr, "/api/lobbies").await.2));
    let closed = tokio::time::timeout(T, async {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            if !listed(&http_get(server.addr, "/api/lobbies").await.2) {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the empty lobby never closed");
    let gone = p.join(&join_id(joined.lobby_id)).await;
    assert_eq!(server_error(gone), ErrorCode::LobbyNotFound.as_u16());
    server.stop().await;
}
