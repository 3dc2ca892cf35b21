//! What a lobby publishes each tick, and how a session turns it into its player's
//! snapshot message.
//!
//! The lobby encodes the part of the snapshot that is the same for everyone (tick,
//! baseline, entities) once per tick into [`TickFrame::body`]. Each session prepends its
//! player's own head (tag and acknowledged input sequence, at most 6 bytes): one small
//! copy per player, no re-encoding.
//!
//! Frames travel through a `watch` channel per lobby: latest wins, so a session that
//! fell behind skips straight to the newest frame instead of queueing old ones.

use bytes::{Bytes, BytesMut};
use ticksync_protocol::EntityId;
use ticksync_protocol::codec::{SNAPSHOT_HEAD_MAX, write_snapshot_head};

/// One tick's shared snapshot.
#[derive(Debug, Default)]
pub(crate) struct TickFrame {
    /// The tick the state is the result of.
    pub(crate) tick: u32,
    /// Encoded tick, baseline and entities.
    pub(crate) body: Bytes,
    /// The last input sequence applied, indexed by entity id.
    pub(crate) acks: Vec<u32>,
}

impl TickFrame {
    /// The complete `Snapshot` message for `entity`'s player, built in `scratch` (which
    /// keeps its allocation from tick to tick once the previous message is released).
    pub(crate) fn message_for(&self, entity: EntityId, scratch: &mut BytesMut) -> Bytes {
        let ack = self.acks.get(usize::from(entity)).copied().unwrap_or(0);
        let mut head = [0u8; SNAPSHOT_HEAD_MAX];
        let n = write_snapshot_head(ack, &mut head);
        scratch.reserve(n + self.body.len());
        scratch.extend_from_slice(&head[..n]);
        scratch.extend_from_slice(&self.body);
        scratch.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::codec::encode_snapshot_body;
    use ticksync_protocol::{EntityState, ServerMessage, decode_server};

    #[test]
    fn each_player_gets_its_own_ack() {
        let entities = [
            EntityState {
                id: 0,
                x: 9,
                ..Default::default()
            },
            EntityState {
                id: 1,
                y: 70,
                ..Default::default()
            },
        ];
        let mut body = Vec::new();
        encode_snapshot_body(42, 0, &entities, &mut body);
        let frame = TickFrame {
            tick: 42,
            body: body.into(),
            acks: vec![7, 300],
        };
        let mut scratch = BytesMut::new();
        for (entity, ack) in [(0u8, 7u32), (1, 300), (9, 0)] {
            let bytes = frame.message_for(entity, &mut scratch);
            let ServerMessage::Snapshot(s) = decode_server(&bytes).expect("decodes") else {
                panic!("not a snapshot");
            };
            assert_eq!((s.ack_seq, s.tick, s.entities.len()), (ack, 42, 2));
        }
    }
}
