//! Property tests: every message survives a roundtrip, and no byte string makes the
//! decoder panic.

use proptest::prelude::*;
use ticksync_protocol::codec::{encode_client, encode_server};
use ticksync_protocol::{
    ClientMessage, GameOptions, JoinTarget, Joined, LobbyInfo, MatchResult, PlayerInfo,
    ServerMessage, decode_client, decode_server,
};

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 éß漢]{0,6}"
}

fn options() -> impl Strategy<Value = GameOptions> {
    prop::collection::vec(("[a-z0-9_]{1,8}", name()), 0..4).prop_map(GameOptions)
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
        (name(), any::<u16>(), any::<bool>(), options()).prop_map(|(n, m, p, o)| {
            ClientMessage::CreateLobby {
                name: n,
                max_players: m,
                private: p,
                options: o,
            }
        }),
        (any::<u32>(), options()).prop_map(|(id, o)| ClientMessage::JoinLobby {
            target: JoinTarget::Id(id),
            options: o,
        }),
        (name(), options()).prop_map(|(c, o)| ClientMessage::JoinLobby {
            target: JoinTarget::Code(c),
            options: o,
        }),
        options().prop_map(|options| ClientMessage::QuickJoin { options }),
        Just(ClientMessage::LeaveLobby),
        any::<u32>().prop_map(|t| ClientMessage::Ping { client_time: t }),
        any::<bool>().prop_map(|d| ClientMessage::Options { delta_snapshots: d }),
    ]
}

fn player() -> impl Strategy<Value = PlayerInfo> {
    (any::<u16>(), any::<u32>(), name()).prop_map(|(seat, player_id, name)| PlayerInfo {
        seat,
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
            (any::<u32>(), name(), any::<u16>(), any::<u16>()).prop_map(|(id, name, p, m)| {
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
            (any::<u16>(), any::<u16>()),
            any::<u32>(),
            (prop::collection::vec(any::<u8>(), 0..64), any::<[u8; 8]>()),
            prop::collection::vec(player(), 0..10)
        )
            .prop_map(
                |(lobby_id, name, code, (max, seat), tick, (schema, hash), players)| {
                    ServerMessage::Joined(Joined {
                        lobby_id,
                        name,
                        code,
                        max_players: max,
                        seat,
                        tick,
                        schema,
                        schema_hash: hash,
                        players,
                    })
                }
            ),
        player().prop_map(ServerMessage::PlayerJoined),
        (any::<u16>(), any::<u32>())
            .prop_map(|(seat, player_id)| ServerMessage::PlayerLeft { seat, player_id }),
        (any::<u32>(), any::<u32>()).prop_map(|(c, s)| ServerMessage::Pong {
            client_time: c,
            server_tick: s
        }),
        (any::<u16>(), name()).prop_map(|(code, message)| ServerMessage::Error { code, message }),
        any::<u8>().prop_map(|reason| ServerMessage::Left { reason }),
        name().prop_map(|text| ServerMessage::Notice { text }),
        (
            name(),
            prop::collection::vec(
                (any::<u16>(), name(), any::<i32>(), any::<u16>()).prop_map(
                    |(seat, name, score, place)| MatchResult {
                        seat,
                        name,
                        score,
                        place,
                    }
                ),
                0..10
            )
        )
            .prop_map(|(summary, results)| ServerMessage::MatchEnded { summary, results }),
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
