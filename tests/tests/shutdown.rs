//! Graceful shutdown: every client is told (Error ShuttingDown, close 1001), /readyz
//! says 503 while draining, and the server exits within its deadline.

use std::time::Duration;

use ticksync_client::{Client, ClientError};
use ticksync_protocol::{ErrorCode, ServerMessage, close};
use ticksync_tests::*;

#[tokio::test]
async fn shutdown_tells_everyone_and_drains() {
    let mut config = test_config();
    config.shutdown_timeout = Duration::from_secs(3);
    let server = spawn_server(config).await;
    let url = server.ws_url();
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);
    let (mut player, _, _) = Client::quick_player(&url, "p").await.expect("player");
    // A client that will not read keeps the drain open for a moment (the server waits
    // up to a second for its close reply), long enough to ask /readyz.
    let (_deaf, _, _) = Client::quick_player(&url, "deaf").await.expect("deaf");

    server.begin_shutdown();
    // The server marks itself draining before it tells anyone: once the player is told,
    // /readyz must say so.
    let error = player
        .recv_message_until(Duration::from_secs(5), |m| match m {
            ServerMessage::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await
        .expect("told of the shutdown");
    assert_eq!(error, ErrorCode::ShuttingDown.as_u16());
    let (status, _, body) = http_get(server.addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "draining\n"));

    let code = loop {
        match player.recv_timeout(Duration::from_secs(5)).await {
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => break code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code, close::GOING_AWAY);
    assert!(
        server.finished_within(Duration::from_secs(8)).await,
        "the server exits within its deadline"
    );
}
