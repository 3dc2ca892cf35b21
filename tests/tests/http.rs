//! Plain HTTP on the game's port: `/healthz`, `/api/lobbies`, the demo page.

use std::net::SocketAddr;

use ticksync_client::Client;
use ticksync_protocol::ClientMessage;
use ticksync_tests::*;

async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    ticksync_tests::http_get(addr, path).await
}

#[tokio::test]
async fn health_lobbies_and_the_demo_page() {
    let server = spawn_server(test_config()).await;
    let (status, _, body) = get(server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, head, body) = get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"));
    assert!(body.contains("<canvas"), "the demo page has a canvas");

    let (status, head, _) = get(server.addr, "/src/codec.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/javascript"));

    assert_eq!(get(server.addr, "/nope").await.0, 404);
    assert_eq!(get(server.addr, "/ws").await.0, 400, "plain GET on /ws");

    let (status, head, body) = get(server.addr, "/api/lobbies").await;
    assert_eq!(status, 200);
    assert!(head.contains("application/json"));
    assert_eq!(body, "[]");

    let mut host = Client::connect(&server.ws_url()).await.expect("connect");
    host.hello("host").await.expect("hello");
    for (name, private) in [("open", false), ("hidden", true)] {
        host.join(&create_lobby(name, 4, private))
            .await
            .expect("create");
        if !private {
            host.send(&ClientMessage::LeaveLobby).await.expect("leave");
        }
    }
    let (_, _, body) = get(server.addr, "/api/lobbies").await;
    let lobbies: serde_json::Value = serde_json::from_str(&body).expect("json");
    let lobbies = lobbies.as_array().expect("array");
    assert_eq!(lobbies.len(), 1, "private lobbies are hidden: {body}");
    assert_eq!(lobbies[0]["name"], "open");
    assert_eq!(lobbies[0]["max_players"], 4);
    assert!(lobbies[0]["id"].as_u64().is_some());
    server.stop().await;
}
