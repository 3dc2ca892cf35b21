//! Property tests: every message survives a roundtrip, and no byte string makes the
//! decoder panic.

use proptest::prelude::*;
use ticksync_protocol::codec::{apply_delta, encode_client, encode_delta_body, encode_server};
use ticksync_protocol::{
    ClientMessage, EntityChange, EntityState, Input, JoinTarget, Joined, LobbyInfo, PlayerInfo,
    ScoreEntry, ServerMessage, Snapshot, SnapshotDelta, decode_client, decode_server,
};

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 éß漢]{0,6}"
}

fn finite() -> impl Strategy<Value = f32> {
    -1.0f32..=1.0
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u16>(), name(), any::<Option<[u8; 16]>>()).prop_map(|(v, n, t)| {
            ClientMessage::Hello {
                protocol_version: v,
                name: n,
                resume_token: t,
            }
        }),
        Just(ClientMessage::ListLobbies),
        (name(), any::<u8>(), any::<bool>()).prop_map(|(n, m, p)| ClientMessage::CreateLobby {
            name: n,
            max_players: m,
            private: p
        }),
        any::<u32>().prop_map(|id| ClientMessage::JoinLobby {
            target: JoinTarget::Id(id)
        }),
        name().prop_map(|c| ClientMessage::JoinLobby {
            target: JoinTarget::Code(c)
        }),
        Just(ClientMessage::QuickJoin),
        Just(ClientMessage::LeaveLobby),
        (any::<u32>(), finite(), finite(), any::<u8>()).prop_map(|(seq, x, y, b)| {
            ClientMessage::Input(Input {
                seq,
                dir_x: x,
                dir_y: y,
                buttons: b,
            })
        }),
        any::<u32>().prop_map(|t| ClientMessage::Ping { client_time: t }),
        any::<bool>().prop_map(|d| ClientMessage::Options { delta_snapshots: d }),
    ]
}

fn change() -> impl Strategy<Value = EntityChange> {
    (
        any::<u8>(),
        any::<Option<i16>>(),
        any::<Option<i16>>(),
        any::<Option<i8>>(),
        any::<Option<i8>>(),
        any::<Option<u8>>(),
    )
        .prop_map(|(id, dx, dy, vx, vy, flags)| EntityChange {
            id,
            dx,
            dy,
            vx,
            vy,
            flags,
        })
        .prop_filter("a change changes something", |c| c.mask() != 0)
}

fn entity() -> impl Strategy<Value = EntityState> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        any::<i8>(),
        any::<i8>(),
    )
        .prop_map(|(id, flags, x, y, vx, vy)| EntityState {
            id,
            flags,
            x,
            y,
            vx,
            vy,
        })
}

fn player() -> impl Strategy<Value = PlayerInfo> {
    (any::<u8>(), any::<u32>(), name()).prop_map(|(entity, player_id, name)| PlayerInfo {
        entity,
        player_id,
        name,
    })
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (any::<u32>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(|(p, t, r, v)| {
            ServerMessage::Welcome {
                player_id: p,
                session_token: t,
                tick_rate: r,
                protocol_version: v,
            }
        }),
        prop::collection::vec(
            (any::<u32>(), name(), any::<u8>(), any::<u8>()).prop_map(|(id, name, p, m)| {
                LobbyInfo {
                    id,
                    name,
                    players: p,
                    max_players: m,
                }
            }),
            0..20
        )
        .prop_map(|lobbies| ServerMessage::LobbyList { lobbies }),
        (
            any::<u32>(),
            name(),
            proptest::option::of(name()),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            prop::collection::vec(player(), 0..10)
        )
            .prop_map(|(lobby_id, name, code, max, me, tick, players)| {
                ServerMessage::Joined(Joined {
                    lobby_id,
                    name,
                    code,
                    max_players: max,
                    your_entity: me,
                    tick,
                    world_width: 1000.0,
                    world_height: 500.5,
                    max_speed: 200.0,
                    players,
                })
            }),
        player().prop_map(ServerMessage::PlayerJoined),
        (any::<u8>(), any::<u32>())
            .prop_map(|(entity, player_id)| ServerMessage::PlayerLeft { entity, player_id }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(entity(), 0..255)
        )
            .prop_map(|(ack_seq, tick, baseline, entities)| {
                ServerMessage::Snapshot(Snapshot {
                    ack_seq,
                    tick,
                    baseline,
                    entities,
                })
            }),
        (any::<u32>(), any::<u32>()).prop_map(|(c, s)| ServerMessage::Pong {
            client_time: c,
            server_tick: s
        }),
        (any::<u16>(), name()).prop_map(|(code, message)| ServerMessage::Error { code, message }),
        any::<u8>().prop_map(|reason| ServerMessage::Left { reason }),
        prop::collection::vec(
            (any::<u8>(), any::<i32>()).prop_map(|(entity, score)| ScoreEntry { entity, score }),
            0..10
        )
        .prop_map(|entries| ServerMessage::Scoreboard { entries }),
        name().prop_map(|text| ServerMessage::Notice { text }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(change(), 0..100)
        )
            .prop_map(|(ack_seq, tick, baseline, changes)| {
                ServerMessage::SnapshotDelta(SnapshotDelta {
                    ack_seq,
                    tick,
                    baseline,
                    changes,
                })
            }),
    ]
}

proptest! {
    #[test]
    fn client_messages_roundtrip(message in client_message()) {
        let bytes = encode_client(&message);
        prop_assert_eq!(decode_client(&bytes).expect("decodes"), message);
    }

    #[test]
    fn server_messages_roundtrip(message in server_message()) {
        let bytes = encode_server(&message);
        prop_assert_eq!(decode_server(&bytes).expect("decodes"), message);
    }

    #[test]
    fn a_delta_applied_to_its_baseline_gives_the_new_state(
        old in prop::collection::vec(entity(), 0..64),
        seeds in prop::collection::vec((any::<u16>(), any::<u16>(), any::<i8>(), any::<i8>(), any::<u8>(), any::<u8>()), 64),
    ) {
        // Unique ids, as in a lobby.
        let mut old = old;
        for (i, e) in old.iter_mut().enumerate() { e.id = i as u8; }
        let new: Vec<EntityState> = old.iter().zip(&seeds).map(|(e, &(x, y, vx, vy, flags, pick))| {
            let mut n = *e;
            if pick & 1 != 0 { n.x = x; }
            if pick & 2 != 0 { n.y = y; }
            if pick & 4 != 0 { n.vx = vx; }
            if pick & 8 != 0 { n.vy = vy; }
            if pick & 16 != 0 { n.flags = flags; }
            n
        }).collect();
        let mut bytes = vec![ticksync_protocol::codec::SNAPSHOT_DELTA_TAG, 0];
        prop_assert!(encode_delta_body(2, 1, &old, &new, &mut bytes));
        let ServerMessage::SnapshotDelta(delta) = decode_server(&bytes).expect("decodes") else {
            panic!("not a delta");
        };
        prop_assert_eq!(apply_delta(&old, &delta).expect("applies"), new);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_client(&bytes);
        let _ = decode_server(&bytes);
    }

    #[test]
    fn every_prefix_of_a_message_is_refused(message in client_message()) {
        let bytes = encode_client(&message);
        for cut in 0..bytes.len() {
            prop_assert!(decode_client(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn mutated_messages_never_panic(message in server_message(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = encode_server(&message);
        for (at, value) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = value;
            }
        }
        let _ = decode_server(&bytes);
    }
}
