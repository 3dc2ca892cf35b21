//! Clients that break the protocol get an Error with a code, then a documented close.

use std::time::Duration;

use bytes::Bytes;
use ticksync_client::{Client, ClientError};
use ticksync_protocol::{ClientMessage, ErrorCode, Input, ServerMessage, close};
use ticksync_tests::{spawn_server, test_config};
use tokio_tungstenite::tungstenite::Message;

/// Reads until the close, returning the Error code seen before it and the close code.
async fn error_then_close(client: &mut Client) -> (Option<u16>, u16) {
    let mut error = None;
    loop {
        match client.recv_timeout(Duration::from_secs(5)).await {
            Ok(ServerMessage::Error { code, .. }) => error = Some(code),
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => return (error, code),
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}

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
    let input = ClientMessage::Input(Input::default());
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
            Message::Binary(Bytes::from(ticksync_protocol::encode_client(&input))),
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
            Message::Binary(Bytes::from(ticksync_protocol::encode_client(&input))),
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
