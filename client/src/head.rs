//! Reading the start of a `Snapshot` without decoding it.
//!
//! A load generator receives one snapshot per player per tick and needs only the
//! acknowledged input and the tick from it. Decoding the whole message allocates a
//! `Vec` of entities; [`peek_snapshot_head`] reads the few varints in front instead and
//! checks that the rest has the length the entity count promises.

use ticksync_protocol::EntityState;
use ticksync_protocol::codec::SNAPSHOT_TAG;

/// The fields in front of a `Snapshot`'s entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The last input sequence of this player the server applied.
    pub ack_seq: u32,
    /// The tick the state is the result of.
    pub tick: u32,
    /// 0 for a full snapshot, else the tick it is relative to.
    pub baseline: u32,
    /// How many entities follow.
    pub entities: usize,
}

/// Reads the head of an encoded `ServerMessage::Snapshot` (tag byte 5, then the varints
/// `ack_seq`, `tick`, `baseline` and the entity count, then 8 bytes per entity).
///
/// Returns `None` when `bytes` is not a well-formed snapshot: another message, or a
/// snapshot whose length does not match its entity count. Never allocates.
pub fn peek_snapshot_head(bytes: &[u8]) -> Option<SnapshotHead> {
    if *bytes.first()? != SNAPSHOT_TAG {
        return None;
    }
    let mut at = 1;
    let ack_seq = varint_u32(bytes, &mut at)?;
    let tick = varint_u32(bytes, &mut at)?;
    let baseline = varint_u32(bytes, &mut at)?;
    let entities = usize::try_from(varint_u32(bytes, &mut at)?).ok()?;
    let rest = bytes.len() - at;
    (entities.checked_mul(EntityState::WIRE_BYTES)? == rest).then_some(SnapshotHead {
        ack_seq,
        tick,
        baseline,
        entities,
    })
}

/// One bincode varint that fits a `u32`: a byte below 251 is the value; 251 and 252 are
/// followed by 2 and 4 little-endian bytes.
fn varint_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let first = *bytes.get(*at)?;
    let (value, len) = match first {
        0..=250 => (u32::from(first), 1),
        251 => {
            let b = bytes.get(*at + 1..*at + 3)?;
            (u32::from(u16::from_le_bytes([b[0], b[1]])), 3)
        }
        252 => {
            let b = bytes.get(*at + 1..*at + 5)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), 5)
        }
        _ => return None,
    };
    *at += len;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::{ServerMessage, Snapshot, encode_server};

    #[test]
    fn agrees_with_the_codec() {
        for ack in [0, 1, 250, 251, 65_535, 65_536, u32::MAX] {
            for tick in [0, 7, 251, 1 << 20, u32::MAX] {
                for n in [0usize, 1, 10, 250, 255] {
                    let entities = (0..n)
                        .map(|i| EntityState {
                            id: u8::try_from(i).unwrap_or(u8::MAX),
                            x: 60_000,
                            ..Default::default()
                        })
                        .collect();
                    let bytes = encode_server(&ServerMessage::Snapshot(Snapshot {
                        ack_seq: ack,
                        tick,
                        baseline: tick / 2,
                        entities,
                    }));
                    let head = peek_snapshot_head(&bytes);
                    assert_eq!(
                        head,
                        Some(SnapshotHead {
                            ack_seq: ack,
                            tick,
                            baseline: tick / 2,
                            entities: n,
                        }),
                        "ack {ack} tick {tick} n {n}"
                    );
                    // Cut or padded: refused.
                    assert_eq!(peek_snapshot_head(&bytes[..bytes.len() - 1]), None);
                    let mut longer = bytes.clone();
                    longer.push(0);
                    assert_eq!(peek_snapshot_head(&longer), None);
                }
            }
        }
    }

    #[test]
    fn other_messages_are_not_snapshots() {
        let pong = encode_server(&ServerMessage::Pong {
            client_time: 5,
            server_tick: 9,
        });
        assert_eq!(peek_snapshot_head(&pong), None);
        assert_eq!(peek_snapshot_head(&[]), None);
        assert_eq!(peek_snapshot_head(&[SNAPSHOT_TAG, 253]), None);
    }
}
