//! The codec: the one place that knows how messages become bytes.
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
use crate::{ClientMessage, EntityChange, EntityState, ServerMessage, SnapshotDelta};

type ClientConfig = Configuration<LittleEndian, Varint, Limit<MAX_CLIENT_MESSAGE_BYTES>>;
type ServerConfig = Configuration<LittleEndian, Varint, Limit<MAX_SERVER_MESSAGE_BYTES>>;

const CLIENT: ClientConfig = config::standard().with_limit::<MAX_CLIENT_MESSAGE_BYTES>();
const SERVER: ServerConfig = config::standard().with_limit::<MAX_SERVER_MESSAGE_BYTES>();

/// The wire tag of `ServerMessage::Snapshot`.
pub const SNAPSHOT_TAG: u8 = 5;
/// The wire tag of `ServerMessage::SnapshotDelta`.
pub const SNAPSHOT_DELTA_TAG: u8 = 11;

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
    /// A delta names an entity its baseline does not have.
    #[error("the delta changes entity {0}, which its baseline does not have")]
    UnknownEntity(u8),
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

/// Appends the part of a `Snapshot` that is the same for every player of a lobby: tick,
/// baseline and entities. A lobby encodes it once per tick; each player's message is
/// [`write_snapshot_head`] followed by these bytes.
pub fn encode_snapshot_body(tick: u32, baseline: u32, entities: &[EntityState], out: &mut Vec<u8>) {
    let _ = bincode::encode_into_std_write((tick, baseline, entities), out, SERVER);
}

/// Appends the shared part of a `SnapshotDelta` from `baseline` (whose entities are
/// `old`) to `tick` (entities `new`): tick, baseline and the changes. Returns false,
/// writing nothing, if the two do not have the same entities in the same order (then
/// only a full snapshot will do).
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

/// The entities of a `SnapshotDelta` applied to those of its baseline.
pub fn apply_delta(
    base: &[EntityState],
    delta: &SnapshotDelta,
) -> Result<Vec<EntityState>, CodecError> {
    let mut out = base.to_vec();
    for change in &delta.changes {
        let entity = out
            .iter_mut()
            .find(|e| e.id == change.id)
            .ok_or(CodecError::UnknownEntity(change.id))?;
        *entity = change.apply(entity);
    }
    Ok(out)
}

/// Longest head [`write_snapshot_head`] writes: the tag and a 5-byte varint.
pub const SNAPSHOT_HEAD_MAX: usize = 6;

/// Writes the per-player start of a `Snapshot` (its tag and `ack_seq`) into `buf`,
/// returning how many bytes it used.
pub fn write_snapshot_head(ack_seq: u32, buf: &mut [u8; SNAPSHOT_HEAD_MAX]) -> usize {
    write_head(SNAPSHOT_TAG, ack_seq, buf)
}

/// Writes the per-player start of a `SnapshotDelta` (tag and `ack_seq`); followed by an
/// [`encode_delta_body`] it makes the whole message.
pub fn write_delta_head(ack_seq: u32, buf: &mut [u8; SNAPSHOT_HEAD_MAX]) -> usize {
    write_head(SNAPSHOT_DELTA_TAG, ack_seq, buf)
}

fn write_head(tag: u8, ack_seq: u32, buf: &mut [u8; SNAPSHOT_HEAD_MAX]) -> usize {
    buf[0] = tag;
    // Five bytes always hold a u32 varint, so this cannot fail.
    1 + bincode::encode_into_slice(ack_seq, &mut buf[1..], SERVER).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Input, Snapshot};

    #[test]
    fn snapshot_head_and_body_equal_the_whole_message() {
        let entities = vec![
            EntityState {
                id: 1,
                flags: 1,
                x: 40000,
                y: 7,
                vx: -3,
                vy: 127,
            },
            EntityState::default(),
        ];
        for ack in [0, 250, 251, 65_535, 65_536, u32::MAX] {
            let whole = encode_server(&ServerMessage::Snapshot(Snapshot {
                ack_seq: ack,
                tick: 70_000,
                baseline: 0,
                entities: entities.clone(),
            }));
            let mut head = [0; SNAPSHOT_HEAD_MAX];
            let n = write_snapshot_head(ack, &mut head);
            let mut split = head[..n].to_vec();
            encode_snapshot_body(70_000, 0, &entities, &mut split);
            assert_eq!(whole, split, "ack {ack}");
        }
    }

    #[test]
    fn delta_head_and_body_equal_the_whole_message() {
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
        new[0].y = 10;
        new[1].flags = 1;
        let mut head = [0; SNAPSHOT_HEAD_MAX];
        let n = write_delta_head(9, &mut head);
        let mut split = head[..n].to_vec();
        assert!(encode_delta_body(8, 7, &old, &new, &mut split));
        let ServerMessage::SnapshotDelta(delta) = decode_server(&split).expect("decodes") else {
            panic!("not a delta");
        };
        assert_eq!((delta.ack_seq, delta.tick, delta.baseline), (9, 8, 7));
        assert_eq!(delta.changes.len(), 2);
        assert_eq!(apply_delta(&old, &delta).expect("applies"), new);
        // Different entities: no delta.
        assert!(!encode_delta_body(8, 7, &old, &new[..1], &mut Vec::new()));
    }

    #[test]
    fn oversized_trailing_and_truncated_are_refused() {
        let ok = encode_client(&ClientMessage::Input(Input {
            seq: 9,
            dir_x: 1.0,
            dir_y: 0.0,
            buttons: 0,
        }));
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
        // Tag 0 (Hello), version 1, a name claiming 4 GiB: refused without allocating.
        let absurd = [0u8, 1, 252, 0xff, 0xff, 0xff, 0xff];
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
                &[6, 1, 0],
                "the message could not be decoded: the message ends early",
            ),
            // JoinLobby with target tag 7.
            (
                &[3, 7, 0],
                "the message could not be decoded: unknown value 7 for JoinTarget",
            ),
            // Hello with resume-token tag 2.
            (
                &[0, 1, 1, b'a', 2],
                "the message could not be decoded: unknown value 2 for an optional field (0 or 1)",
            ),
            // Options with a bool of 5.
            (
                &[8, 5],
                "the message could not be decoded: unknown value 5 for a true/false field (0 or 1)",
            ),
            // Hello, name of one byte 0xff.
            (
                &[0, 1, 1, 0xff, 0],
                "the message could not be decoded: a text field is not valid UTF-8",
            ),
            // Hello, a name claiming 4 GiB.
            (
                &[0, 1, 252, 0xff, 0xff, 0xff, 0xff],
                "the message could not be decoded: a length is over the limit",
            ),
            // Ping with a u64 marker for its u32.
            (
                &[7, 253, 1, 0, 0, 0, 0, 0, 0, 0],
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
        // A delta whose change has mask 0.
        assert_eq!(
            text(decode_server(&[11, 0, 1, 0, 1, 3, 0])),
            "the message could not be decoded: an entity change has an invalid field mask"
        );
        let delta = SnapshotDelta {
            ack_seq: 0,
            tick: 1,
            baseline: 0,
            changes: vec![EntityChange {
                id: 9,
                flags: Some(1),
                ..Default::default()
            }],
        };
        assert_eq!(
            text(apply_delta(&[], &delta)),
            "the delta changes entity 9, which its baseline does not have"
        );
    }
}
