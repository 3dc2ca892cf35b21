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
//!
//! When the lobby's entities are the same as last tick's, it also encodes a delta body
//! (only what changed since the previous tick). A session whose client asked for deltas
//! and received the previous tick's snapshot gets the delta; one that skipped a tick, or
//! just joined, gets the full snapshot. Over TCP every sent snapshot arrives, so "the
//! previous snapshot this connection was sent" is a valid baseline without acks.

use bytes::{Bytes, BytesMut};
use ticksync_protocol::EntityId;
use ticksync_protocol::codec::{SNAPSHOT_HEAD_MAX, write_delta_head, write_snapshot_head};

/// One tick's shared snapshot.
#[derive(Debug, Default)]
pub(crate) struct TickFrame {
    /// The tick the state is the result of.
    pub(crate) tick: u32,
    /// Encoded tick, baseline and entities.
    pub(crate) body: Bytes,
    /// Encoded tick, baseline (the previous tick) and changes, when the entities are
    /// the previous tick's and the delta is smaller.
    pub(crate) delta: Option<Bytes>,
    /// The last input sequence applied, indexed by entity id.
    pub(crate) acks: Vec<u32>,
}

impl TickFrame {
    /// The complete `Snapshot` message for `entity`'s player, built in `scratch` (which
    /// keeps its allocation from tick to tick once the previous message is released).
    ///
    /// With `previous` (the tick of the last snapshot this player was sent) equal to this
    /// frame's baseline, and a delta encoded, the message is a `SnapshotDelta`.
    pub(crate) fn message_for(
        &self,
        entity: EntityId,
        previous: Option<u32>,
        scratch: &mut BytesMut,
    ) -> Bytes {
        let ack = self.acks.get(usize::from(entity)).copied().unwrap_or(0);
        let mut head = [0u8; SNAPSHOT_HEAD_MAX];
        let delta = self
            .delta
            .as_ref()
            .filter(|_| previous.is_some() && previous == self.tick.checked_sub(1));
        let (n, body) = match delta {
            Some(delta) => (write_delta_head(ack, &mut head), delta),
            None => (write_snapshot_head(ack, &mut head), &self.body),
        };
        scratch.reserve(n + body.len());
        scratch.extend_from_slice(&head[..n]);
        scratch.extend_from_slice(body);
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
            delta: None,
            acks: vec![7, 300],
        };
        let mut scratch = BytesMut::new();
        for (entity, ack) in [(0u8, 7u32), (1, 300), (9, 0)] {
            let bytes = frame.message_for(entity, Some(41), &mut scratch);
            let ServerMessage::Snapshot(s) = decode_server(&bytes).expect("decodes") else {
                panic!("not a snapshot");
            };
            assert_eq!((s.ack_seq, s.tick, s.entities.len()), (ack, 42, 2));
        }
    }

    #[test]
    fn deltas_go_only_to_players_who_have_the_baseline() {
        let old = [EntityState {
            id: 0,
            x: 9,
            ..Default::default()
        }];
        let new = [EntityState {
            id: 0,
            x: 19,
            ..Default::default()
        }];
        let mut body = Vec::new();
        encode_snapshot_body(42, 0, &new, &mut body);
        let mut delta = Vec::new();
        assert!(ticksync_protocol::codec::encode_delta_body(
            42, 41, &old, &new, &mut delta
        ));
        let frame = TickFrame {
            tick: 42,
            body: body.into(),
            delta: Some(delta.into()),
            acks: vec![5],
        };
        let mut scratch = BytesMut::new();
        let kind = |previous, scratch: &mut BytesMut| match decode_server(
            &frame.message_for(0, previous, scratch),
        )
        .expect("decodes")
        {
            ServerMessage::Snapshot(_) => "full",
            ServerMessage::SnapshotDelta(d) => {
                assert_eq!((d.ack_seq, d.baseline, d.changes[0].dx), (5, 41, Some(10)));
                "delta"
            }
            _ => "other",
        };
        assert_eq!(kind(Some(41), &mut scratch), "delta");
        assert_eq!(kind(Some(40), &mut scratch), "full", "skipped a tick");
        assert_eq!(kind(None, &mut scratch), "full", "first snapshot");
    }
}
