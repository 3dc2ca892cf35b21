//! The session state machine under arbitrary message sequences (valid messages in any
//! order, garbage bytes, text frames, pings), driven over an in-memory pipe: it never
//! panics, everything it sends decodes, and any close code it sends is a documented one.
//! `fuzz/fuzz_targets/session.rs` runs the same harness under libFuzzer.

use bytes::Bytes;
use proptest::prelude::*;
use ticksync_protocol::{ClientMessage, Input, JoinTarget, encode_client};
use ticksync_server::Config;
use ticksync_server::testing::{DOCUMENTED_CLOSE_CODES, Harness, drive};
use tokio_tungstenite::tungstenite::Message;

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let name = prop_oneof![
        Just("ann".to_owned()),
        Just(String::new()),
        "[a-z\u{1}]{0,30}"
    ];
    prop_oneof![
        3 => (prop_oneof![Just(ticksync_protocol::PROTOCOL_VERSION), any::<u16>()], name.clone(),
              proptest::option::of(any::<[u8; 16]>()))
            .prop_map(|(v, n, t)| ClientMessage::Hello { protocol_version: v, name: n, resume_token: t }),
        1 => Just(ClientMessage::ListLobbies),
        1 => (name, any::<u8>(), any::<bool>())
            .prop_map(|(n, m, p)| ClientMessage::CreateLobby { name: n, max_players: m, private: p }),
        1 => (0u32..4).prop_map(|id| ClientMessage::JoinLobby { target: JoinTarget::Id(id) }),
        1 => "[A-Z2-9-]{0,12}".prop_map(|c| ClientMessage::JoinLobby { target: JoinTarget::Code(c) }),
        2 => Just(ClientMessage::QuickJoin),
        1 => Just(ClientMessage::LeaveLobby),
        4 => (any::<u32>(), prop_oneof![any::<f32>(), -2.0f32..2.0], prop_oneof![any::<f32>(), -2.0f32..2.0], any::<u8>())
            .prop_map(|(seq, x, y, b)| ClientMessage::Input(Input { seq, dir_x: x, dir_y: y, buttons: b })),
        1 => any::<u32>().prop_map(|t| ClientMessage::Ping { client_time: t }),
    ]
}

fn frame() -> impl Strategy<Value = Message> {
    prop_oneof![
        8 => client_message().prop_map(|m| Message::Binary(Bytes::from(encode_client(&m)))),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Message::Binary(Bytes::from(b))),
        1 => "[ -~]{0,20}".prop_map(Message::text),
        1 => Just(Message::Ping(Bytes::from_static(b"hi"))),
    ]
}

fn config() -> Config {
    Config {
        hello_timeout: std::time::Duration::from_millis(500),
        empty_lobby_grace: std::time::Duration::from_millis(100),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_is_handled_cleanly(frames in prop::collection::vec(frame(), 0..24)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let outcome = runtime.block_on(async {
            let harness = Harness::new(config());
            let outcome = drive(&harness, frames).await;
            harness.shutdown().await;
            outcome
        });
        prop_assert_eq!(outcome.undecodable, 0);
        if let Some(code) = outcome.close_code {
            prop_assert!(DOCUMENTED_CLOSE_CODES.iter().any(|&(_, c)| c == code), "close code {}", code);
        }
    }
}

#[test]
fn a_well_behaved_sequence_plays() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let frames = [
        ClientMessage::Hello {
            protocol_version: ticksync_protocol::PROTOCOL_VERSION,
            name: "ann".into(),
            resume_token: None,
        },
        ClientMessage::QuickJoin,
        ClientMessage::Input(Input {
            seq: 1,
            dir_x: 1.0,
            dir_y: 0.0,
            buttons: 0,
        }),
        ClientMessage::Ping { client_time: 7 },
    ]
    .iter()
    .map(|m| Message::Binary(Bytes::from(encode_client(m))))
    .collect();
    let outcome = runtime.block_on(async {
        let harness = Harness::new(config());
        let outcome = drive(&harness, frames).await;
        harness.shutdown().await;
        outcome
    });
    let kinds: Vec<_> = outcome
        .messages
        .iter()
        .map(|m| {
            format!("{m:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("Welcome"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "Joined"), "{kinds:?}");
    assert_eq!(outcome.undecodable, 0);
}
