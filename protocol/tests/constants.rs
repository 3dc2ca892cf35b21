//! The protocol's name lists agree with the encoding: every message tag the decoder knows
//! has a name, the names are in tag order, and the enums' value lists are complete and
//! unique. A variant added without its name (or a name without its variant) fails here.

use std::collections::HashSet;

use bincode::error::DecodeError;

use ticksync_protocol::codec::{FIRST_FRAME_TAG, encode_client, encode_server, is_game_frame};
use ticksync_protocol::state::SNAPSHOT_TAG;
use ticksync_protocol::state::io::{EVENT_TAG, INPUT_TAG, MESSAGE_TAG};
use ticksync_protocol::{
    ClientMessage, CodecError, ErrorCode, JoinTarget, LeftReason, ServerMessage, close,
    decode_client, decode_server, limits,
};

/// The message of tag `tag` with every field zero (valid for every variant: zero is a
/// value of every field type), or None if the decoder knows no such tag. Tags up to 250
/// are one byte, so this finds every tag a one-byte name list can describe.
fn zero_message<M>(tag: u8, decode: fn(&[u8]) -> Result<M, CodecError>) -> Option<M> {
    let mut bytes = vec![tag];
    for _ in 0..64 {
        match decode(&bytes) {
            Ok(message) => return Some(message),
            Err(CodecError::Decode(DecodeError::UnexpectedEnd { .. })) => bytes.push(0),
            Err(_) => return None,
        }
    }
    None
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The `"type"` of a message's JSON view.
fn json_type(message: &impl serde::Serialize) -> String {
    let value = serde_json::to_value(message).expect("json");
    value["type"].as_str().expect("a type").to_owned()
}

#[test]
fn client_tags_names_and_kinds_match_the_encoding() {
    let mut found = Vec::new();
    for tag in 0..=250u8 {
        let Some(message) = zero_message(tag, decode_client) else {
            continue;
        };
        found.push(tag);
        let t = usize::from(tag);
        assert_eq!(message.tag(), tag, "{message:?}");
        assert_eq!(encode_client(&message)[0], tag, "{message:?}");
        assert_eq!(json_type(&message), ClientMessage::NAMES[t]);
        assert_eq!(
            ClientMessage::KIND_NAMES[t],
            snake_case(ClientMessage::NAMES[t])
        );
        assert_eq!(message.kind_name(), ClientMessage::KIND_NAMES[t]);
    }
    let all: Vec<u8> = (0..ClientMessage::NAMES.len() as u8).collect();
    assert_eq!(found, all, "the decoder's client tags are 0..NAMES.len()");
}

#[test]
fn server_tags_names_and_kinds_match_the_encoding() {
    let mut found = Vec::new();
    for tag in 0..=250u8 {
        let Some(message) = zero_message(tag, decode_server) else {
            continue;
        };
        found.push(tag);
        let t = usize::from(tag);
        assert_eq!(message.tag(), tag, "{message:?}");
        assert_eq!(encode_server(&message)[0], tag, "{message:?}");
        assert_eq!(json_type(&message), ServerMessage::NAMES[t]);
        assert_eq!(
            ServerMessage::KIND_NAMES[t],
            snake_case(ServerMessage::NAMES[t])
        );
        assert_eq!(message.kind_name(), ServerMessage::KIND_NAMES[t]);
    }
    let all: Vec<u8> = (0..ServerMessage::NAMES.len() as u8).collect();
    assert_eq!(found, all, "the decoder's server tags are 0..NAMES.len()");
}

#[test]
fn game_frame_tags_are_above_every_control_tag() {
    assert!(ClientMessage::NAMES.len() < usize::from(FIRST_FRAME_TAG));
    assert!(ServerMessage::NAMES.len() < usize::from(FIRST_FRAME_TAG));
    assert_eq!((SNAPSHOT_TAG, EVENT_TAG), (64, 65));
    assert_eq!((INPUT_TAG, MESSAGE_TAG), (64, 65));
    for tag in [SNAPSHOT_TAG, EVENT_TAG, INPUT_TAG, MESSAGE_TAG] {
        assert!(is_game_frame(&[tag]));
        assert!(zero_message(tag, decode_client).is_none());
        assert!(zero_message(tag, decode_server).is_none());
    }
}

#[test]
fn join_target_tags_match_the_encoding() {
    let mut found = Vec::new();
    for tag in 0..=250u8 {
        // JoinLobby (3), the target's tag, a zero, no options.
        let mut bytes = vec![3, tag, 0, 0];
        let decoded = decode_client(&bytes).or_else(|_| {
            bytes.remove(2);
            decode_client(&bytes)
        });
        if let Ok(ClientMessage::JoinLobby { target, .. }) = decoded {
            let name = match target {
                JoinTarget::Id(_) => "Id",
                JoinTarget::Code(_) => "Code",
            };
            assert_eq!(JoinTarget::NAMES[usize::from(tag)], name);
            found.push(tag);
        }
    }
    assert_eq!(found, [0, 1]);
    assert_eq!(JoinTarget::NAMES.len(), 2);
}

#[test]
fn error_codes_and_left_reasons_are_complete_and_unique() {
    let mut values = HashSet::new();
    let mut names = HashSet::new();
    for &code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_wire(code.as_u16()), Some(code));
        assert!(values.insert(code.as_u16()) && names.insert(code.name()));
    }
    assert_eq!(ErrorCode::from_wire(0), None);
    assert_eq!(ErrorCode::from_wire(999), None);
    assert_eq!(ErrorCode::LobbyFull.name(), "LobbyFull");
    // No gaps: clients may keep the codes in an array.
    let wire: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.as_u16()).collect();
    assert_eq!(wire, (1..=ErrorCode::ALL.len() as u16).collect::<Vec<_>>());

    let wire: Vec<u8> = LeftReason::ALL.iter().map(|r| r.as_u8()).collect();
    assert_eq!(wire, (0..LeftReason::ALL.len() as u8).collect::<Vec<_>>());
    for &reason in LeftReason::ALL {
        assert_eq!(LeftReason::from_wire(reason.as_u8()), Some(reason));
    }
    assert_eq!(LeftReason::from_wire(200), None);
}

#[test]
fn close_codes_are_ascending_unique_and_the_final_ones_are_sent_codes() {
    for list in [close::ALL, close::local::ALL] {
        assert!(list.windows(2).all(|w| w[0].1 < w[1].1), "{list:?}");
    }
    let sent: HashSet<u16> = close::ALL.iter().map(|&(_, c)| c).collect();
    assert!(close::local::ALL.iter().all(|(_, c)| !sent.contains(c)));
    assert!(close::FINAL.iter().all(|c| sent.contains(c)));
    assert_eq!(close::name(close::REPLACED), Some("REPLACED"));
    assert_eq!(close::name(1006), Some("CONNECTION_LOST"));
    assert_eq!(close::name(4999), None);
    assert!(close::is_final(close::KICKED) && !close::is_final(close::GOING_AWAY));
    assert!(!close::is_final(close::local::CONNECTION_LOST));
}

#[test]
fn the_limit_list_is_the_limits() {
    let get = |name: &str| {
        limits::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    };
    assert_eq!(
        get("MAX_CLIENT_MESSAGE_BYTES"),
        Some(limits::MAX_CLIENT_MESSAGE_BYTES as u64)
    );
    assert_eq!(
        get("MAX_LOBBY_PLAYERS"),
        Some(u64::from(limits::MAX_LOBBY_PLAYERS))
    );
    assert_eq!(limits::ALL.len(), 11);
}
