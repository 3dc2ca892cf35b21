//! Clients that break the protocol get an Error with a code, then a documented close.

use std::time::Duration;

use bytes::Bytes;
use ticksync_client::{Client, ClientError};
use ticksync_protocol::{ClientMessage, ErrorCode, close};
use ticksync_tests::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn version_mismatch_is_refused_with_its_code() {
    let server = spawn_server(test_config()).await;
    let mut client = Client::connect(&server.ws_url()).await.expect("connect");
    client
        .send(&ClientMessage::Hello {
            protocol_version: 99,
            name: "future".into(),
            resume_token: None,
        })
        .await
        .expect("send");
    assert_eq!(
        error_then_close(&mut client).await,
        (
            Some(ErrorCode::VersionMismatch.as_u16()),
            close::VERSION_MISMATCH
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn protocol_violations_close_with_documented_codes() {
    let server = spawn_server(test_config()).await;
    let url = server.ws_url();
    // An input frame (tag 64, seq 1, client tick 0, the arena's direction).
    let input: Vec<u8> = vec![64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let cases: Vec<(Option<&str>, Message, u16, u16)> = vec![
        (
            None,
            Message::text("hello?"),
            ErrorCode::TextFrame.as_u16(),
            close::UNSUPPORTED_DATA,
        ),
        (
            None,
            Message::Binary(Bytes::from_static(&[0xee, 1, 2])),
            ErrorCode::BadMessage.as_u16(),
            close::PROTOCOL_ERROR,
        ),
        (
            None,
            Message::Binary(Bytes::from(vec![6u8; 1000])),
            ErrorCode::MessageTooLarge.as_u16(),
            close::MESSAGE_TOO_BIG,
        ),
        (
            None,
            Message::Binary(Bytes::from(input.clone())),
            ErrorCode::InvalidState.as_u16(),
            close::PROTOCOL_ERROR,
        ),
        (
            Some("twice"),
            Message::Binary(Bytes::from(ticksync_protocol::encode_client(
                &ClientMessage::Hello {
                    protocol_version: ticksync_protocol::PROTOCOL_VERSION,
                    name: "again".into(),
                    resume_token: None,
                },
            ))),
            ErrorCode::InvalidState.as_u16(),
            close::PROTOCOL_ERROR,
        ),
        (
            Some("early"),
            Message::Binary(Bytes::from(input.clone())),
            ErrorCode::InvalidState.as_u16(),
            close::PROTOCOL_ERROR,
        ),
    ];
    for (hello, message, error, code) in cases {
        let mut client = Client::connect(&url).await.expect("connect");
        if let Some(name) = hello {
            client.hello(name).await.expect("hello");
        }
        client.send_raw(message.clone()).await.expect("send");
        assert_eq!(
            error_then_close(&mut client).await,
            (Some(error), code),
            "{message:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_hello_timeout() {
    let mut config = test_config();
    config.hello_timeout = Duration::from_millis(300);
    let server = spawn_server(config).await;
    let mut client = Client::connect(&server.ws_url()).await.expect("connect");
    assert_eq!(
        error_then_close(&mut client).await,
        (Some(ErrorCode::Timeout.as_u16()), close::HELLO_TIMEOUT)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_bad_name_can_be_corrected() {
    let server = spawn_server(test_config()).await;
    let mut client = Client::connect(&server.ws_url()).await.expect("connect");
    match client.hello("bad\u{1}name").await {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::InvalidName.as_u16()),
        other => panic!("expected InvalidName, got {other:?}"),
    }
    client
        .hello("good name")
        .await
        .expect("second Hello accepted");
    server.stop().await;
}

#[tokio::test]
async fn join_tokens_are_required_when_configured() {
    let mut config = test_config();
    config.join_secret = Some("backend secret".into());
    let server = spawn_server(config).await;
    let base = server.ws_url();

    let mut anonymous = Client::connect(&base).await.expect("connect");
    anonymous
        .send(&ClientMessage::Hello {
            protocol_version: ticksync_protocol::PROTOCOL_VERSION,
            name: "ann".into(),
            resume_token: None,
        })
        .await
        .expect("send");
    assert_eq!(
        error_then_close(&mut anonymous).await,
        (
            Some(ErrorCode::Unauthorized.as_u16()),
            close::POLICY_VIOLATION
        )
    );

    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 60;
    let token = ticksync_server::auth::sign_join_token(b"backend secret", "ann", expiry);
    let mut wrong_name = Client::connect(&format!("{base}?token={token}"))
        .await
        .expect("connect");
    assert!(matches!(
        wrong_name.hello("bob").await,
        Err(ClientError::Server { code, .. }) if code == ErrorCode::Unauthorized.as_u16()
    ));
    let mut signed = Client::connect(&format!("{base}?token={token}"))
        .await
        .expect("connect");
    signed
        .hello("ann")
        .await
        .expect("a signed player is welcome");
    server.stop().await;
}

#[tokio::test]
async fn origins_off_the_allowlist_are_refused() {
    let mut config = test_config();
    config.allowed_origins = vec!["https://game.example".into()];
    let server = spawn_server(config).await;
    let handshake = |origin: &'static str| {
        let addr = server.addr;
        async move {
            let request = format!(
                "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Origin: {origin}\r\n\r\n"
            );
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
                .await
                .expect("write");
            let mut head = vec![0u8; 64];
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut head)
                .await
                .expect("read");
            String::from_utf8_lossy(&head[..n]).into_owned()
        }
    };
    assert!(
        handshake("https://evil.example")
            .await
            .starts_with("HTTP/1.1 403")
    );
    assert!(
        handshake("https://game.example")
            .await
            .starts_with("HTTP/1.1 101")
    );
    server.stop().await;
}

#[tokio::test]
async fn connection_caps_answer_with_their_close_codes() {
    let mut config = test_config();
    config.max_connections = 2;
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let _a = Client::connect(&url).await.expect("first");
    let _b = Client::connect(&url).await.expect("second");
    let mut c = Client::connect(&url).await.expect("accepted, to be told");
    assert_eq!(
        error_then_close(&mut c).await,
        (Some(ErrorCode::ServerFull.as_u16()), close::TRY_AGAIN_LATER)
    );
    server.stop().await;

    let mut config = test_config();
    config.max_connections_per_ip = 1;
    let server = spawn_server(config).await;
    let url = server.ws_url();
    let _a = Client::connect(&url).await.expect("first");
    let mut b = Client::connect(&url).await.expect("accepted, to be told");
    assert_eq!(
        error_then_close(&mut b).await,
        (
            Some(ErrorCode::ServerFull.as_u16()),
            close::POLICY_VIOLATION
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn lobby_request_floods_are_cut_off() {
    let server = spawn_server(test_config()).await;
    let mut client = Client::connect(&server.ws_url()).await.expect("connect");
    client.hello("spammer").await.expect("hello");
    for _ in 0..30 {
        if client.send(&ClientMessage::ListLobbies).await.is_err() {
            break;
        }
    }
    assert_eq!(
        error_then_close(&mut client).await,
        (
            Some(ErrorCode::RateLimited.as_u16()),
            close::POLICY_VIOLATION
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn a_vanished_client_is_noticed_by_the_idle_timeout() {
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(200);
    config.idle_timeout = Duration::from_millis(400);
    let server = spawn_server(config).await;
    let proxy = Proxy::start(server.addr).await;
    let (mut gone, _, _) = Client::quick_player(&proxy.ws_url(), "gone")
        .await
        .expect("player");
    // Like a pulled cable: nothing passes, no pongs, until the server gives up on the
    // link and closes it. Then the client reads the verdict the server sent.
    let mut frozen = proxy.freeze();
    assert!(
        frozen.server_closed(Duration::from_secs(5)).await,
        "the server drops a silent link"
    );
    frozen.release();
    assert_eq!(
        error_then_close(&mut gone).await,
        (Some(ErrorCode::Timeout.as_u16()), close::IDLE_TIMEOUT)
    );
    server.stop().await;
}
