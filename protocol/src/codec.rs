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

/// Why bytes could not be decoded (or a message encoded).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The message is longer than the limit for its direction.
    #[error("message of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a message: truncated, an unknown tag, a bad length or value.
    #[error("undecodable message: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// A complete message was followed by more bytes.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The message could not be encoded (never for valid messages).
    #[error("unencodable message: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// A delta names an entity its baseline does not have.
    #[error("the delta changes entity {0}, which its baseline does not have")]
    UnknownEntity(u8),
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
}
