//! Reading the start of a `Snapshot` or `SnapshotDelta` without decoding it.
//!
//! A load generator receives one snapshot per player per tick and needs only the
//! acknowledged input and the tick from it. Decoding the whole message allocates a
//! `Vec` of entities; [`peek_snapshot_head`] reads the few varints in front instead and
//! checks that the rest has the length the entity (or change) count promises.

use ticksync_protocol::codec::{SNAPSHOT_DELTA_TAG, SNAPSHOT_TAG};
use ticksync_protocol::{EntityChange, EntityState};

/// The fields in front of a `Snapshot`'s entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The last input sequence of this player the server applied.
    pub ack_seq: u32,
    /// The tick the state is the result of.
    pub tick: u32,
    /// 0 for a full snapshot, else the tick it is relative to.
    pub baseline: u32,
    /// How many entities (or, in a delta, changed entities) follow.
    pub entities: usize,
    /// A `SnapshotDelta` (tag 11) rather than a full `Snapshot` (tag 5).
    pub delta: bool,
}

/// Reads the head of an encoded `ServerMessage::Snapshot` (tag byte 5, then the varints
/// `ack_seq`, `tick`, `baseline` and the entity count, then 8 bytes per entity) or
/// `ServerMessage::SnapshotDelta` (tag 11, the same varints, then per changed entity its
/// id, a field mask and the fields: 2 bytes for each of dx and dy, 1 for each of vx, vy
/// and flags).
///
/// Returns `None` when `bytes` is not a well-formed snapshot: another message, or a
/// snapshot whose length does not match its entity count. Never allocates.
pub fn peek_snapshot_head(bytes: &[u8]) -> Option<SnapshotHead> {
    let delta = match *bytes.first()? {
        SNAPSHOT_TAG => false,
        SNAPSHOT_DELTA_TAG => true,
        _ => return None,
    };
    let mut at = 1;
    let ack_seq = varint_u32(bytes, &mut at)?;
    let tick = varint_u32(bytes, &mut at)?;
    let baseline = varint_u32(bytes, &mut at)?;
    let entities = usize::try_from(varint_u32(bytes, &mut at)?).ok()?;
    let fits = if delta {
        changes_fit(&bytes[at..], entities)
    } else {
        entities.checked_mul(EntityState::WIRE_BYTES)? == bytes.len() - at
    };
    fits.then_some(SnapshotHead {
        ack_seq,
        tick,
        baseline,
        entities,
        delta,
    })
}

/// Whether `rest` is exactly `count` entity changes.
fn changes_fit(rest: &[u8], count: usize) -> bool {
    const ALL: u8 = EntityChange::DX
        | EntityChange::DY
        | EntityChange::VX
        | EntityChange::VY
        | EntityChange::FLAGS;
    let mut at = 0;
    for _ in 0..count {
        let Some(&mask) = rest.get(at + 1) else {
            return false;
        };
        if mask == 0 || mask & !ALL != 0 {
            return false;
        }
        let positions = (mask & (EntityChange::DX | EntityChange::DY)).count_ones() as usize;
        let bytes = (mask & (EntityChange::VX | EntityChange::VY | EntityChange::FLAGS))
            .count_ones() as usize;
        at += 2 + 2 * positions + bytes;
    }
    at == rest.len()
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
                            delta: false,
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
    fn deltas_agree_with_the_codec() {
        use ticksync_protocol::SnapshotDelta;
        let changes: Vec<EntityChange> = (0..40u8)
            .map(|i| EntityChange {
                id: i,
                dx: (i % 2 == 0).then_some(-300),
                dy: (i % 3 == 0).then_some(7),
                vx: (i % 5 == 0).then_some(-1),
                vy: (i % 7 == 0).then_some(100),
                flags: (i % 4 == 0 || i % 2 == 1).then_some(1),
            })
            .filter(|c| c.mask() != 0)
            .collect();
        for n in [0, 1, 2, 17, changes.len()] {
            let bytes = encode_server(&ServerMessage::SnapshotDelta(SnapshotDelta {
                ack_seq: 70_000,
                tick: 300,
                baseline: 299,
                changes: changes[..n].to_vec(),
            }));
            assert_eq!(
                peek_snapshot_head(&bytes),
                Some(SnapshotHead {
                    ack_seq: 70_000,
                    tick: 300,
                    baseline: 299,
                    entities: n,
                    delta: true,
                }),
                "{n} changes"
            );
            if n > 0 {
                assert_eq!(peek_snapshot_head(&bytes[..bytes.len() - 1]), None);
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(peek_snapshot_head(&longer), None);
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
