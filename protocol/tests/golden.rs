//! Golden byte vectors: named messages and their exact bytes, shared with the JavaScript
//! client's tests (`demo-client/test/`). The file is checked in; this test fails when the
//! encoding changes without the file being regenerated (`UPDATE_GOLDEN=1 cargo test`).
//! The file also carries every protocol constant (`constants`: tags, error and close
//! codes, left reasons, limits...), so that a JavaScript constant that drifts from the
//! Rust one fails the JavaScript tests, and `rejections`: byte strings the decoder refuses
//! with Rust's error text, which the JavaScript codec must give word for word.

use std::path::PathBuf;

use serde_json::Value;
use serde_json::json;
use ticksync_protocol::codec::{FIRST_FRAME_TAG, encode_client, encode_server};
use ticksync_protocol::state::io::{EVENT_TAG, INPUT_TAG, MESSAGE_TAG};
use ticksync_protocol::state::{MAX_SNAPSHOT_ENTITIES, SNAPSHOT_TAG};
use ticksync_protocol::{
    ClientMessage, CodecError, ErrorCode, GameOptions, JoinTarget, Joined, LeftReason, LobbyInfo,
    MatchResult, PROTOCOL_VERSION, PlayerInfo, ServerMessage, SessionToken, close, decode_client,
    decode_server, join_code, limits,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn client_vectors() -> Vec<(&'static str, ClientMessage)> {
    vec![
        (
            "hello",
            ClientMessage::Hello {
                protocol_version: 2,
                name: "ada".into(),
                resume_token: None,
            },
        ),
        (
            "hello_resume",
            ClientMessage::Hello {
                protocol_version: 2,
                name: "Émile".into(),
                resume_token: Some([0xab; 16]),
            },
        ),
        ("list_lobbies", ClientMessage::ListLobbies),
        (
            "create_lobby",
            ClientMessage::CreateLobby {
                name: "friday night".into(),
                max_players: 300,
                private: true,
                options: GameOptions::none().with("map", "dunes").with("mode", "ffa"),
            },
        ),
        (
            "join_by_id",
            ClientMessage::JoinLobby {
                target: JoinTarget::Id(300),
                options: GameOptions::none(),
            },
        ),
        (
            "join_by_code",
            ClientMessage::JoinLobby {
                target: JoinTarget::Code("K7QXM-2PDHR".into()),
                options: GameOptions::none().with("team", "red"),
            },
        ),
        (
            "quick_join",
            ClientMessage::QuickJoin {
                options: GameOptions::none(),
            },
        ),
        ("leave_lobby", ClientMessage::LeaveLobby),
        (
            "ping",
            ClientMessage::Ping {
                client_time: 123_456,
            },
        ),
        (
            "options",
            ClientMessage::Options {
                delta_snapshots: false,
            },
        ),
        (
            "join_reserved",
            ClientMessage::JoinReserved {
                reservation: RESERVATION.into(),
            },
        ),
    ]
}

/// A real reservation token (lowercase hex): node "node-a", lobby 42, signed with the
/// key "secret" (PROTOCOL.md's worked example; `ticksync-cluster`'s token test checks it).
const RESERVATION: &str = "0107070707070707070707070707070707000001a229f1287b0000002a066e6f64652d612c38b64e6dd9d5869ef4670fb6c23c3a87afecff02b7713548171d990207e5ff";

fn server_vectors() -> Vec<(&'static str, ServerMessage)> {
    vec![
        (
            "welcome",
            ServerMessage::Welcome {
                player_id: 7,
                session_token: core::array::from_fn(|i| i as u8),
                tick_rate: 30,
                protocol_version: 2,
            },
        ),
        (
            "lobby_list",
            ServerMessage::LobbyList {
                lobbies: vec![
                    LobbyInfo {
                        id: 1,
                        name: "arena 1".into(),
                        players: 3,
                        max_players: 10,
                    },
                    LobbyInfo {
                        id: 1000,
                        name: "big".into(),
                        players: 0,
                        max_players: 250,
                    },
                ],
            },
        ),
        (
            "lobby_list_empty",
            ServerMessage::LobbyList { lobbies: vec![] },
        ),
        (
            "joined",
            ServerMessage::Joined(Joined {
                lobby_id: 2,
                name: "private room".into(),
                code: Some("K7QXM-2PDHR".into()),
                max_players: 4,
                seat: 2,
                tick: 99,
                // A schema's bytes are opaque here (state_vectors.json has real ones).
                schema: vec![4, b't', b'e', b's', b't', 0, 0, 0, 0, 0, 0],
                schema_hash: 0x0123_4567_89ab_cdef_u64.to_le_bytes(),
                players: vec![
                    PlayerInfo {
                        seat: 1,
                        player_id: 5,
                        name: "bo".into(),
                    },
                    PlayerInfo {
                        seat: 2,
                        player_id: 7,
                        name: "ada".into(),
                    },
                ],
            }),
        ),
        (
            "player_joined",
            ServerMessage::PlayerJoined(PlayerInfo {
                seat: 3,
                player_id: 260,
                name: "cy".into(),
            }),
        ),
        (
            "player_left",
            ServerMessage::PlayerLeft {
                seat: 3,
                player_id: 260,
            },
        ),
        (
            "pong",
            ServerMessage::Pong {
                client_time: 123_456,
                server_tick: 99,
            },
        ),
        (
            "error",
            ServerMessage::Error {
                code: 5,
                message: "lobby is full".into(),
            },
        ),
        (
            "join_refused",
            ServerMessage::error(ErrorCode::JoinRefused, "the match has started"),
        ),
        ("left", ServerMessage::Left { reason: 2 }),
        (
            "notice",
            ServerMessage::Notice {
                text: "restart in 5 minutes".into(),
            },
        ),
        (
            "match_ended",
            ServerMessage::MatchEnded {
                summary: "ada wins".into(),
                results: vec![
                    MatchResult {
                        seat: 2,
                        name: "ada".into(),
                        score: 12,
                        place: 1,
                    },
                    MatchResult {
                        seat: 1,
                        name: "bo".into(),
                        score: -3,
                        place: 2,
                    },
                ],
            },
        ),
        (
            "redirect",
            ServerMessage::Redirect {
                url: "ws://10.0.0.5:8080/ws".into(),
                reservation: RESERVATION.into(),
            },
        ),
        (
            "redirect_resume",
            ServerMessage::Redirect {
                url: "ws://10.0.0.6:8080/ws".into(),
                reservation: String::new(),
            },
        ),
    ]
}

/// Byte strings the decoders refuse, with the error Rust gives: its `CodecError` variant
/// and its text, which the JavaScript codec must match word for word.
fn rejections() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut too_large = vec![0u8; 300];
    too_large[0] = 6;
    vec![
        ("unknown_tag", "client", vec![42]),
        ("empty", "client", vec![]),
        ("truncated_ping", "client", vec![6, 252, 1]),
        ("unknown_join_target", "client", vec![3, 7, 0]),
        ("bad_option_tag", "client", vec![0, 2, 1, b'a', 2]),
        ("bad_bool", "client", vec![7, 5]),
        ("bad_utf8", "client", vec![0, 2, 1, 0xff, 0]),
        (
            "name_claims_4_gib",
            "client",
            vec![0, 2, 252, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "varint_too_wide",
            "client",
            vec![6, 253, 1, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("one_trailing_byte", "client", vec![1, 0]),
        ("two_trailing_bytes", "client", vec![1, 0, 0]),
        ("too_large", "client", too_large),
        ("options_truncated", "client", vec![4, 1, 3, b'm', b'a']),
        ("unknown_server_tag", "server", vec![200]),
        ("truncated_joined", "server", vec![2, 2, 0]),
    ]
}

fn rejection_json() -> Value {
    rejections()
        .into_iter()
        .map(|(name, direction, bytes)| {
            let error = match direction {
                "client" => decode_client(&bytes).map(|_| ()),
                _ => decode_server(&bytes).map(|_| ()),
            }
            .expect_err(name);
            let kind = match error {
                CodecError::TooLarge { .. } => "TooLarge",
                CodecError::Decode(_) => "Decode",
                CodecError::TrailingBytes { .. } => "TrailingBytes",
                CodecError::Encode(_) => "Encode",
            };
            json!({
                "name": name, "direction": direction, "hex": hex(&bytes),
                "kind": kind, "error": error.to_string(),
            })
        })
        .collect()
}

/// `[{"name", "value"}]` in list order.
fn named<V: serde::Serialize>(list: impl IntoIterator<Item = (&'static str, V)>) -> Value {
    list.into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

/// Message tags: `[{"name", "value" (the tag), "kind" (the metric label)}]`, tag order.
fn tags(names: &[&'static str], kinds: &[&'static str]) -> Value {
    names
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(tag, (name, kind))| json!({"name": name, "value": tag, "kind": kind}))
        .collect()
}

/// Every protocol constant a client needs, from the protocol crate: the JavaScript client
/// checks its own against these (`demo-client/test/constants.test.js`).
fn constants() -> Value {
    json!({
        "protocol_version": PROTOCOL_VERSION,
        "client_tags": tags(&ClientMessage::NAMES, &ClientMessage::KIND_NAMES),
        "server_tags": tags(&ServerMessage::NAMES, &ServerMessage::KIND_NAMES),
        "first_frame_tag": FIRST_FRAME_TAG,
        "snapshot_tag": SNAPSHOT_TAG,
        "event_tag": EVENT_TAG,
        "input_tag": INPUT_TAG,
        "message_tag": MESSAGE_TAG,
        "join_target_tags": named(JoinTarget::NAMES.iter().copied().zip(0u8..)),
        "error_codes": named(ErrorCode::ALL.iter().map(|c| (c.name(), c.as_u16()))),
        "left_reasons": named(LeftReason::ALL.iter().map(|r| (r.name(), r.as_u8()))),
        "close_codes": named(close::ALL.iter().copied()),
        "local_close_codes": named(close::local::ALL.iter().copied()),
        "final_close_codes": close::FINAL,
        "limits": named(limits::ALL.iter().copied()),
        "token_bytes": size_of::<SessionToken>(),
        "schema_hash_bytes": 8,
        "max_snapshot_entities": MAX_SNAPSHOT_ENTITIES,
        "join_code_alphabet": join_code::ALPHABET,
        "join_code_symbols": join_code::SYMBOLS,
    })
}

fn golden_json() -> String {
    let mut entries = Vec::new();
    for (name, message) in client_vectors() {
        let bytes = encode_client(&message);
        assert_eq!(decode_client(&bytes).expect("decodes"), message, "{name}");
        entries.push(json!({
            "name": name, "direction": "client", "hex": hex(&bytes), "message": message,
        }));
    }
    for (name, message) in server_vectors() {
        let bytes = encode_server(&message);
        assert_eq!(decode_server(&bytes).expect("decodes"), message, "{name}");
        entries.push(json!({
            "name": name, "direction": "server", "hex": hex(&bytes), "message": message,
        }));
    }
    let doc = json!({
        "about": "ticksync golden vectors: each message and its exact bytes (vectors), every protocol constant (constants), byte strings a decoder must refuse with the error text (rejections). Generated by protocol/tests/golden.rs; regenerate with UPDATE_GOLDEN=1 cargo test -p ticksync-protocol --test golden.",
        "protocol_version": PROTOCOL_VERSION,
        "constants": constants(),
        "vectors": entries,
        "rejections": rejection_json(),
    });
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

#[test]
fn golden_vectors_are_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.json");
    let fresh = golden_json();
    if std::env::var_os("UPDATE_GOLDEN").is_some() || !path.exists() {
        std::fs::write(&path, &fresh).expect("write golden file");
        return;
    }
    let current = std::fs::read_to_string(&path).expect("read golden file");
    assert!(
        current == fresh,
        "protocol/golden/vectors.json is stale: the encoding changed. If that is intended, \
         bump PROTOCOL_VERSION if needed, run UPDATE_GOLDEN=1 cargo test -p ticksync-protocol \
         --test golden, update PROTOCOL.md and the JavaScript codec."
    );
}

#[test]
fn documented_examples_hold() {
    // PROTOCOL.md quotes these bytes.
    let create = encode_client(&ClientMessage::CreateLobby {
        name: "fun".into(),
        max_players: 300,
        private: false,
        options: GameOptions::none().with("map", "dunes"),
    });
    assert_eq!(hex(&create), "020366756efb2c010001036d61700564756e6573");
    let joined_tags: Vec<u8> = server_vectors()
        .iter()
        .map(|(_, m)| encode_server(m)[0])
        .collect();
    assert!(joined_tags.iter().all(|&t| t < FIRST_FRAME_TAG));
}
