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
use ticksync_protocol::codec::{SNAPSHOT_DELTA_TAG, SNAPSHOT_TAG, encode_client, encode_server};
use ticksync_protocol::{
    ClientMessage, CodecError, EntityChange, EntityState, ErrorCode, Input, JoinTarget, Joined,
    LeftReason, LobbyInfo, PROTOCOL_VERSION, PlayerInfo, ScoreEntry, ServerMessage, SessionToken,
    Snapshot, SnapshotDelta, close, decode_client, decode_server, join_code, limits, quantize,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn client_vectors() -> Vec<(&'static str, ClientMessage)> {
    vec![
        (
            "hello",
            ClientMessage::Hello {
                protocol_version: 1,
                name: "ada".into(),
                resume_token: None,
            },
        ),
        (
            "hello_resume",
            ClientMessage::Hello {
                protocol_version: 1,
                name: "Émile".into(),
                resume_token: Some([0xab; 16]),
            },
        ),
        ("list_lobbies", ClientMessage::ListLobbies),
        (
            "create_lobby",
            ClientMessage::CreateLobby {
                name: "friday night".into(),
                max_players: 8,
                private: true,
            },
        ),
        (
            "join_by_id",
            ClientMessage::JoinLobby {
                target: JoinTarget::Id(300),
            },
        ),
        (
            "join_by_code",
            ClientMessage::JoinLobby {
                target: JoinTarget::Code("K7QXM-2PDHR".into()),
            },
        ),
        ("quick_join", ClientMessage::QuickJoin),
        ("leave_lobby", ClientMessage::LeaveLobby),
        (
            "input",
            ClientMessage::Input(Input {
                seq: 1234,
                dir_x: 0.6,
                dir_y: -0.8,
                buttons: 1,
            }),
        ),
        (
            "input_large_seq",
            ClientMessage::Input(Input {
                seq: 70_000,
                dir_x: -1.0,
                dir_y: 0.0,
                buttons: 0,
            }),
        ),
        (
            "ping",
            ClientMessage::Ping {
                client_time: 123_456,
            },
        ),
        (
            "options",
            ClientMessage::Options {
                delta_snapshots: true,
            },
        ),
    ]
}

fn server_vectors() -> Vec<(&'static str, ServerMessage)> {
    vec![
        (
            "welcome",
            ServerMessage::Welcome {
                player_id: 7,
                session_token: core::array::from_fn(|i| i as u8),
                tick_rate: 30,
                protocol_version: 1,
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
                        max_players: 64,
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
                your_entity: 1,
                tick: 99,
                world_width: 1000.0,
                world_height: 1000.0,
                max_speed: 200.0,
                players: vec![
                    PlayerInfo {
                        entity: 0,
                        player_id: 5,
                        name: "bo".into(),
                    },
                    PlayerInfo {
                        entity: 1,
                        player_id: 7,
                        name: "ada".into(),
                    },
                ],
            }),
        ),
        (
            "player_joined",
            ServerMessage::PlayerJoined(PlayerInfo {
                entity: 3,
                player_id: 260,
                name: "cy".into(),
            }),
        ),
        (
            "player_left",
            ServerMessage::PlayerLeft {
                entity: 3,
                player_id: 260,
            },
        ),
        (
            "snapshot",
            ServerMessage::Snapshot(Snapshot {
                ack_seq: 1234,
                tick: 99,
                baseline: 0,
                entities: vec![
                    EntityState {
                        id: 0,
                        flags: 1,
                        x: 32768,
                        y: 65535,
                        vx: 127,
                        vy: -127,
                    },
                    EntityState {
                        id: 1,
                        flags: 0,
                        x: 0,
                        y: 300,
                        vx: 0,
                        vy: 64,
                    },
                ],
            }),
        ),
        (
            "snapshot_empty",
            ServerMessage::Snapshot(Snapshot {
                ack_seq: 0,
                tick: 100_000,
                baseline: 0,
                entities: vec![],
            }),
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
        ("left", ServerMessage::Left { reason: 2 }),
        (
            "scoreboard",
            ServerMessage::Scoreboard {
                entries: vec![
                    ScoreEntry {
                        entity: 0,
                        score: 3,
                    },
                    ScoreEntry {
                        entity: 1,
                        score: -2,
                    },
                ],
            },
        ),
        (
            "notice",
            ServerMessage::Notice {
                text: "restart in 5 minutes".into(),
            },
        ),
        (
            "snapshot_delta",
            ServerMessage::SnapshotDelta(SnapshotDelta {
                ack_seq: 1235,
                tick: 100,
                baseline: 99,
                changes: vec![
                    EntityChange {
                        id: 0,
                        dx: Some(-437),
                        dy: Some(2),
                        ..Default::default()
                    },
                    EntityChange {
                        id: 1,
                        vx: Some(-64),
                        flags: Some(1),
                        ..Default::default()
                    },
                ],
            }),
        ),
        (
            "snapshot_delta_empty",
            ServerMessage::SnapshotDelta(SnapshotDelta {
                ack_seq: 0,
                tick: 101,
                baseline: 100,
                changes: vec![],
            }),
        ),
    ]
}

/// Byte strings the decoders refuse, with the error Rust gives: its `CodecError` variant
/// and its text, which the JavaScript codec must match word for word.
fn rejections() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut too_large = vec![0u8; 300];
    too_large[0] = 7;
    vec![
        ("unknown_tag", "client", vec![42]),
        ("empty", "client", vec![]),
        ("truncated_input", "client", vec![6, 1, 0]),
        ("unknown_join_target", "client", vec![3, 7, 0]),
        ("bad_option_tag", "client", vec![0, 1, 1, b'a', 2]),
        ("bad_bool", "client", vec![8, 5]),
        ("bad_utf8", "client", vec![0, 1, 1, 0xff, 0]),
        (
            "name_claims_4_gib",
            "client",
            vec![0, 1, 252, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "varint_too_wide",
            "client",
            vec![7, 253, 1, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("one_trailing_byte", "client", vec![1, 0]),
        ("two_trailing_bytes", "client", vec![1, 0, 0]),
        ("too_large", "client", too_large),
        ("unknown_server_tag", "server", vec![200]),
        ("change_mask_zero", "server", vec![11, 0, 1, 0, 1, 3, 0]),
        ("truncated_snapshot", "server", vec![5, 0, 1, 0, 1, 2, 1, 0]),
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
                CodecError::UnknownEntity(_) => "UnknownEntity",
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
        "snapshot_tag": SNAPSHOT_TAG,
        "snapshot_delta_tag": SNAPSHOT_DELTA_TAG,
        "join_target_tags": named(JoinTarget::NAMES.iter().copied().zip(0u8..)),
        "error_codes": named(ErrorCode::ALL.iter().map(|c| (c.name(), c.as_u16()))),
        "left_reasons": named(LeftReason::ALL.iter().map(|r| (r.name(), r.as_u8()))),
        "close_codes": named(close::ALL.iter().copied()),
        "local_close_codes": named(close::local::ALL.iter().copied()),
        "final_close_codes": close::FINAL,
        "limits": named(limits::ALL.iter().copied()),
        "entity_wire_bytes": EntityState::WIRE_BYTES,
        "entity_change_bits": named([
            ("dx", EntityChange::DX),
            ("dy", EntityChange::DY),
            ("vx", EntityChange::VX),
            ("vy", EntityChange::VY),
            ("flags", EntityChange::FLAGS),
        ]),
        "token_bytes": size_of::<SessionToken>(),
        "position_steps": quantize::POSITION_STEPS,
        "velocity_steps": quantize::VELOCITY_STEPS,
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
    let input = encode_client(&ClientMessage::Input(Input {
        seq: 1234,
        dir_x: 0.6,
        dir_y: -0.8,
        buttons: 1,
    }));
    assert_eq!(hex(&input), "06fbd2049a99193fcdcc4cbf01");
    let snap = encode_server(&ServerMessage::Snapshot(Snapshot {
        ack_seq: 5,
        tick: 99,
        baseline: 0,
        entities: vec![EntityState {
            id: 2,
            flags: 1,
            x: 32768,
            y: 300,
            vx: 127,
            vy: -1,
        }],
    }));
    assert_eq!(hex(&snap), "0505630001020100802c017fff");
}
