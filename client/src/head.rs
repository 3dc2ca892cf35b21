//! Reading the head of a snapshot without decoding it.
//!
//! A load generator receives one snapshot per player per tick and needs only the
//! acknowledged input, the tick and whether it is a delta. [`peek_snapshot_head`] reads
//! the bytes in front: the tag, `ack_seq` and the own part's length (LEB128 varints),
//! then, after the own part, the shared body's tick (4 bytes LE: 32 bits at a byte
//! boundary of an LSB-first stream) and the first var4 group of its baseline distance
//! (0 for a full snapshot).

use ticksync_protocol::state::split_snapshot;

/// The fields in front of a snapshot's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The last input sequence of this player the server applied.
    pub ack_seq: u32,
    /// The tick the state is the result of.
    pub tick: u32,
    /// Changes against an earlier snapshot (true) or the whole state (false).
    pub delta: bool,
    /// Bytes of this player's own part.
    pub own_bytes: usize,
}

/// Reads the head of a snapshot message (tag
/// [`SNAPSHOT_TAG`](ticksync_protocol::state::SNAPSHOT_TAG)). Returns `None` when
/// `bytes` is not a well-formed head: another message, a length running past the end,
/// or a body too short for its tick. Never allocates.
pub fn peek_snapshot_head(bytes: &[u8]) -> Option<SnapshotHead> {
    let parts = split_snapshot(bytes)?;
    let (tick, delta) = parts.tick_and_delta()?;
    Some(SnapshotHead {
        ack_seq: parts.ack_seq,
        tick,
        delta,
        own_bytes: parts.own.len(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ticksync_protocol::schema::{Field, FieldType, Schema};
    use ticksync_protocol::state::{
        Codec, Encoder, PlayerRef, SNAPSHOT_TAG, State, Value, Visibility,
    };

    use super::*;

    fn codec() -> Arc<Codec> {
        let schema = Schema::builder("t")
            .entity_fields(
                "dot",
                vec![Field::new("x", FieldType::Int { min: 0, max: 1000 })],
            )
            .private_fields(vec![Field::new(
                "coins",
                FieldType::Int { min: 0, max: 99 },
            )])
            .build()
            .expect("valid");
        Arc::new(Codec::new(schema, 4).expect("codec"))
    }

    fn state(codec: &Codec, tick: u32, x: i64) -> State {
        let mut s = State::new(codec);
        s.begin(codec, tick);
        for id in 1..=3 {
            s.push_entity_values(
                codec,
                0,
                id,
                PlayerRef(1),
                Visibility::Everyone,
                &[Value::Int(x)],
            )
            .expect("kind");
        }
        s.set_private_values(codec, PlayerRef(2), &[Value::Int(x % 99)])
            .expect("seat");
        s.finish(codec).expect("finish");
        s
    }

    #[test]
    fn agrees_with_the_encoder() {
        let codec = codec();
        let mut enc = Encoder::new();
        for ack in [0, 1, 250, 65_536, u32::MAX] {
            for tick in [1, 7, 251, 1 << 20, u32::MAX] {
                let (a, b) = (state(&codec, tick - 1, 10), state(&codec, tick, 20));
                for (from, delta) in [(None, false), (Some(&a), true)] {
                    for seat in [1, 2] {
                        let mut bytes = Vec::new();
                        enc.encode_snapshot(&codec, from, &b, PlayerRef(seat), ack, &mut bytes);
                        let head = peek_snapshot_head(&bytes).expect("a head");
                        assert_eq!(
                            (head.ack_seq, head.tick, head.delta),
                            (ack, tick, delta),
                            "ack {ack} tick {tick}"
                        );
                        assert_eq!(head.own_bytes > 0, seat == 2, "seat 2 has a private row");
                    }
                }
            }
        }
    }

    #[test]
    fn other_messages_are_not_snapshots() {
        let pong = ticksync_protocol::encode_server(&ticksync_protocol::ServerMessage::Pong {
            client_time: 5,
            server_tick: 9,
        });
        assert_eq!(peek_snapshot_head(&pong), None);
        assert_eq!(peek_snapshot_head(&[]), None);
        // An own part past the end; a body too short for its tick.
        assert_eq!(peek_snapshot_head(&[SNAPSHOT_TAG, 0, 5, 1]), None);
        assert_eq!(peek_snapshot_head(&[SNAPSHOT_TAG, 0, 0, 1, 2, 3]), None);
        // An ack of six bytes, and one above u32::MAX.
        let body = [0, 0, 0, 0, 0];
        let long = [
            &[SNAPSHOT_TAG, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0][..],
            &body,
        ]
        .concat();
        assert_eq!(peek_snapshot_head(&long), None);
        let over = [&[SNAPSHOT_TAG, 0xff, 0xff, 0xff, 0xff, 0x1f, 0][..], &body].concat();
        assert_eq!(peek_snapshot_head(&over), None);
        let max = [&[SNAPSHOT_TAG, 0xff, 0xff, 0xff, 0xff, 0x0f, 0][..], &body].concat();
        assert_eq!(peek_snapshot_head(&max).map(|h| h.ack_seq), Some(u32::MAX));
    }
}
