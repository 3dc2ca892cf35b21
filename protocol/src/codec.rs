//! The codec: the one place that knows how control messages become bytes.
//!
//! Every WebSocket binary message starts with a tag byte. Tags below [`FIRST_FRAME_TAG`]
//! (64) are control messages, encoded here with bincode; tags from 64 up are game frames
//! (snapshots, inputs, game messages and events), hand-written and bit-packed by the
//! lobby's schema in [`crate::state`]. Control messages are rare and varied: bincode's
//! derive keeps them one declaration each, in one place. Game frames are every tick and
//! typed by the game: a schema-driven bit writer makes them several times smaller than
//! any self-describing or byte-aligned format.
//!
//! Every bincode setting lives here (bincode 2.0.1, pinned: it is unmaintained, see the
//! README). The settings are bincode's `standard()` configuration:
//! - integers other than `u8`/`i8` are variable-length ("varint": a value below 251 is one
//!   byte; otherwise a marker byte 251/252/253 followed by 2/4/8 little-endian bytes);
//!   signed integers are zigzag-encoded first;
//! - `f32` is 4 bytes little-endian IEEE 754; `bool` is one byte, 0 or 1;
//! - enum tags, string and sequence lengths are varints; strings are UTF-8;
//! - `Option` is a byte 0 (none) or 1 followed by the value;
//! - fixed arrays (`[u8; 16]`) are their bytes, with no length.
//!
//! Decoding is bounded: a message longer than its direction's limit is refused before
//! decoding, every length is checked against that limit before anything is allocated, and
//! trailing bytes after a complete message are an error. Decoding never panics.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};

use crate::limits::{MAX_CLIENT_MESSAGE_BYTES, MAX_SERVER_MESSAGE_BYTES};
use crate::{ClientMessage, EntityChange, EntityState, ServerMessage};

type ClientConfig = Configuration<LittleEndian, Varint, Limit<MAX_CLIENT_MESSAGE_BYTES>>;
type ServerConfig = Configuration<LittleEndian, Varint, Limit<MAX_SERVER_MESSAGE_BYTES>>;

const CLIENT: ClientConfig = config::standard().with_limit::<MAX_CLIENT_MESSAGE_BYTES>();
const SERVER: ServerConfig = config::standard().with_limit::<MAX_SERVER_MESSAGE_BYTES>();

/// The first tag of a game frame: a message whose first byte is at least this is not a
/// control message (see [`crate::state::SNAPSHOT_TAG`], [`crate::state::io`]).
pub const FIRST_FRAME_TAG: u8 = 64;

/// Whether `bytes` is a game frame (its tag is [`FIRST_FRAME_TAG`] or above), decoded by
/// the lobby's schema rather than by [`decode_client`] / [`decode_server`].
pub fn is_game_frame(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|&tag| tag >= FIRST_FRAME_TAG)
}

/// Why bytes could not be decoded (or a message encoded). The texts are plain sentences
/// a client can show a person (the server sends them in `Error` messages): no Rust names
/// beyond the protocol's own, no debug output.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The message is longer than the limit for its direction.
    #[error("the message of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a message: truncated, an unknown tag, a bad length or value.
    #[error("the message could not be decoded: {}", decode_problem(.0))]
    Decode(#[from] bincode::error::DecodeError),
    /// A complete message was followed by more bytes.
    #[error("{} the end of the message", following(*.extra))]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The message could not be encoded (never for valid messages).
    #[error("the message could not be encoded: {}", encode_problem(.0))]
    Encode(#[from] bincode::error::EncodeError),
}

/// "1 byte follows", "2 bytes follow".
fn following(extra: usize) -> String {
    if extra == 1 {
        "1 byte follows".to_owned()
    } else {
        format!("{extra} bytes follow")
    }
}

/// A decoding failure as a short phrase (bincode's own `Display` is its `Debug` output).
fn decode_problem(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedVariant {
            type_name, found, ..
        } => match *type_name {
            "ClientMessage" | "ServerMessage" => format!("unknown message type {found}"),
            // bincode names an `Option`'s tag by the full type path.
            name if name.contains("Option<") => {
                format!("unknown value {found} for an optional field (0 or 1)")
            }
            name => format!("unknown value {found} for {name}"),
        },
        E::UnexpectedEnd { .. } | E::Io { .. } => "the message ends early".to_owned(),
        E::Utf8 { .. } => "a text field is not valid UTF-8".to_owned(),
        E::LimitExceeded | E::OutsideUsizeRange(_) => "a length is over the limit".to_owned(),
        E::InvalidBooleanValue(v) => format!("unknown value {v} for a true/false field (0 or 1)"),
        E::InvalidIntegerType { .. } => "a number is wider than its field".to_owned(),
        E::Other(text) => (*text).to_owned(),
        E::OtherString(text) => text.clone(),
        _ => "a field has an invalid value".to_owned(),
    }
}

/// An encoding failure as a short phrase.
fn encode_problem(e: &bincode::error::EncodeError) -> String {
    use bincode::error::EncodeError as E;
    match e {
        E::Other(text) => (*text).to_owned(),
        E::OtherString(text) => text.clone(),
        _ => "a field cannot be written".to_owned(),
    }
}

fn decode<T: bincode::Decode<()>, C: bincode::config::Config>(
    bytes: &[u8],
    max: usize,
    config: C,
) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let (message, read) = bincode::decode_from_slice(bytes, config)?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - read,
        });
    }
    Ok(message)
}

/// Decodes one client message (one WebSocket binary message).
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, CodecError> {
    decode(bytes, MAX_CLIENT_MESSAGE_BYTES, CLIENT)
}

/// Decodes one server message.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMessage, CodecError> {
    decode(bytes, MAX_SERVER_MESSAGE_BYTES, SERVER)
}

/// Encodes a client message.
pub fn encode_client(message: &ClientMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    encode_client_into(message, &mut out);
    out
}

/// Appends the encoding of a client message to `out`.
pub fn encode_client_into(message: &ClientMessage, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail, and every message type is encodable.
    let _ = bincode::encode_into_std_write(message, out, CLIENT);
}

/// Encodes a server message.
pub fn encode_server(message: &ServerMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_server_into(message, &mut out);
    out
}

/// Appends the encoding of a server message to `out`.
pub fn encode_server_into(message: &ServerMessage, out: &mut Vec<u8>) {
    let _ = bincode::encode_into_std_write(message, out, SERVER);
}

/// Protocol 1's arena snapshot body (tick, baseline, 8-byte entities), the reference
/// the generic state encoder is measured against (the figures test, the `state/`
/// benchmarks). Not on the wire any more.
pub fn encode_snapshot_body(tick: u32, baseline: u32, entities: &[EntityState], out: &mut Vec<u8>) {
    let _ = bincode::encode_into_std_write((tick, baseline, entities), out, SERVER);
}

/// Protocol 1's arena delta body from `old` to `new` (the reference, as
/// [`encode_snapshot_body`]). Returns false, writing nothing, if the two do not have
/// the same entities in the same order.
pub fn encode_delta_body(
    tick: u32,
    baseline: u32,
    old: &[EntityState],
    new: &[EntityState],
    out: &mut Vec<u8>,
) -> bool {
    if old.len() != new.len() || old.iter().zip(new).any(|(a, b)| a.id != b.id) {
        return false;
    }
    let changes: Vec<EntityChange> = old
        .iter()
        .zip(new)
        .filter_map(|(a, b)| EntityChange::between(a, b))
        .collect();
    let _ = bincode::encode_into_std_write((tick, baseline, changes), out, SERVER);
    true
}

/// Protocol 1's per-player snapshot head (tag and varint `ack_seq`), at most this long:
/// the reference's per-player cost.
pub const SNAPSHOT_HEAD_MAX: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_delta_has_only_the_changes() {
        let old = [
            EntityState {
                id: 0,
                x: 100,
                y: 65_000,
                ..Default::default()
            },
            EntityState {
                id: 3,
                vx: 5,
                ..Default::default()
            },
        ];
        let mut new = old;
        new[0].x = 30_000;
        let mut delta = Vec::new();
        assert!(encode_delta_body(8, 7, &old, &new, &mut delta));
        // tick, baseline, one change: id, mask, dx (2 bytes).
        assert_eq!(delta, [8, 7, 1, 0, EntityChange::DX, 0xcc, 0x74]);
        let mut full = Vec::new();
        encode_snapshot_body(8, 0, &new, &mut full);
        assert_eq!(full.len(), 3 + 2 * EntityState::WIRE_BYTES);
        // Different entities: no delta.
        assert!(!encode_delta_body(8, 7, &old, &new[..1], &mut Vec::new()));
    }

    #[test]
    fn game_frames_are_told_from_control_messages() {
        assert!(is_game_frame(&[64, 0]));
        assert!(is_game_frame(&[65]));
        assert!(!is_game_frame(&[63]));
        assert!(!is_game_frame(&[]));
        // A game frame is not a control message.
        assert!(decode_client(&[64, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn oversized_trailing_and_truncated_are_refused() {
        let ok = encode_client(&ClientMessage::Ping {
            client_time: 70_000,
        });
        assert!(decode_client(&ok).is_ok());
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(matches!(
            decode_client(&trailing),
            Err(CodecError::TrailingBytes { extra: 1 })
        ));
        assert!(matches!(
            decode_client(&ok[..ok.len() - 1]),
            Err(CodecError::Decode(_))
        ));
        assert!(matches!(
            decode_client(&vec![0; MAX_CLIENT_MESSAGE_BYTES + 1]),
            Err(CodecError::TooLarge { .. })
        ));
        // Tag 0 (Hello), version 2, a name claiming 4 GiB: refused without allocating.
        let absurd = [0u8, 2, 252, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_client(&absurd).is_err());
        // Unknown tag.
        assert!(decode_client(&[200]).is_err());
    }

    fn text(result: Result<impl std::fmt::Debug, CodecError>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn error_texts_are_plain_sentences() {
        let cases: [(&[u8], &str); 10] = [
            (
                &[42],
                "the message could not be decoded: unknown message type 42",
            ),
            (
                &[],
                "the message could not be decoded: the message ends early",
            ),
            (
                &[6, 252, 1],
                "the message could not be decoded: the message ends early",
            ),
            // JoinLobby with target tag 7.
            (
                &[3, 7, 0],
                "the message could not be decoded: unknown value 7 for JoinTarget",
            ),
            // Hello with resume-token tag 2.
            (
                &[0, 2, 1, b'a', 2],
                "the message could not be decoded: unknown value 2 for an optional field (0 or 1)",
            ),
            // Options with a bool of 5.
            (
                &[7, 5],
                "the message could not be decoded: unknown value 5 for a true/false field (0 or 1)",
            ),
            // Hello, name of one byte 0xff.
            (
                &[0, 2, 1, 0xff, 0],
                "the message could not be decoded: a text field is not valid UTF-8",
            ),
            // Hello, a name claiming 4 GiB.
            (
                &[0, 2, 252, 0xff, 0xff, 0xff, 0xff],
                "the message could not be decoded: a length is over the limit",
            ),
            // Ping with a u64 marker for its u32.
            (
                &[6, 253, 1, 0, 0, 0, 0, 0, 0, 0],
                "the message could not be decoded: a number is wider than its field",
            ),
            (&[1, 0, 0], "2 bytes follow the end of the message"),
        ];
        for (bytes, want) in cases {
            assert_eq!(text(decode_client(bytes)), want, "{bytes:?}");
        }
        assert_eq!(
            text(decode_client(&[1, 0])),
            "1 byte follows the end of the message"
        );
        assert_eq!(
            text(decode_client(&[0; MAX_CLIENT_MESSAGE_BYTES + 44])),
            "the message of 300 bytes is over the 256-byte limit"
        );
        assert_eq!(
            text(decode_server(&[200])),
            "the message could not be decoded: unknown message type 200"
        );
    }
}
