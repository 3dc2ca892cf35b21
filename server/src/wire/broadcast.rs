//! What a lobby publishes each tick, and how a session turns it into its player's
//! snapshot message.
//!
//! The lobby encodes the part of the snapshot that is the same for everyone (tick,
//! baseline, entities) once per tick into [`TickFrame::body`]. For each player it then
//! writes the WebSocket frame header and the player's own head (tag and acknowledged
//! input sequence, at most 6 bytes) before the shared body into one scratch buffer, and
//! hands that to the player's outbox (`outbox.rs`), which writes it to the socket at
//! once: one small copy and one `send` per player, no re-encoding, no task wake-up. A
//! client too slow to take it gets the newest snapshot later, never a queue of old ones.
//!
//! When the lobby's entities are the same as last tick's, it also encodes a delta body
//! (only what changed since the previous tick). A session whose client asked for deltas
//! and was handed the previous tick's snapshot gets the delta; one that skipped a tick, or
//! just joined, gets the full snapshot. Over TCP every sent snapshot arrives, so "the
//! previous snapshot this connection was sent" is a valid baseline without acks.

use ticksync_protocol::EntityId;
use ticksync_protocol::codec::{SNAPSHOT_HEAD_MAX, write_delta_head, write_snapshot_head};

use crate::wire::frame::{payload_len, write_binary_header};
use crate::wire::outbox::{Delivery, Link};

/// One tick's shared snapshot.
#[derive(Debug)]
pub(crate) struct TickFrame {
    /// The tick the state is the result of.
    pub(crate) tick: u32,
    /// Encoded tick, baseline and entities.
    pub(crate) body: Vec<u8>,
    /// Encoded tick, baseline (the previous tick) and changes, when the entities are
    /// the previous tick's and the delta is smaller (else empty).
    pub(crate) delta: Vec<u8>,
    /// The last input sequence applied, indexed by entity id.
    pub(crate) acks: Vec<u32>,
}

impl TickFrame {
    /// Appends the complete `Snapshot` message for `entity`'s player to `out`, as one
    /// WebSocket binary frame.
    ///
    /// With `previous` (the tick of the last snapshot this player was sent) equal to this
    /// frame's baseline, and a delta encoded, the message is a `SnapshotDelta`.
    pub(crate) fn write_message(&self, entity: EntityId, previous: Option<u32>, out: &mut Vec<u8>) {
        let ack = self.acks.get(usize::from(entity)).copied().unwrap_or(0);
        let mut head = [0u8; SNAPSHOT_HEAD_MAX];
        let delta_fits =
            !self.delta.is_empty() && previous.is_some() && previous == self.tick.checked_sub(1);
        let (n, body) = if delta_fits {
            (write_delta_head(ack, &mut head), &self.delta)
        } else {
            (write_snapshot_head(ack, &mut head), &self.body)
        };
        out.reserve(n + body.len() + 4);
        write_binary_header(n + body.len(), out);
        out.extend_from_slice(&head[..n]);
        out.extend_from_slice(body);
    }
}

/// What one tick's delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Snapshots written or kept for writing.
    pub(crate) sent: u64,
    /// Of which replaced a kept one (the client skips a tick).
    pub(crate) skipped: u64,
    /// Payload bytes handed over.
    pub(crate) bytes: u64,
}

/// Writes `frame` to each player's connection, building each player's message in
/// `scratch`; the players whose connection is gone are added to `gone`.
pub(crate) fn deliver<'a>(
    frame: &TickFrame,
    links: impl IntoIterator<Item = (EntityId, &'a Link)>,
    scratch: &mut Vec<u8>,
    gone: &mut Vec<EntityId>,
) -> Delivered {
    let mut done = Delivered::default();
    for (entity, link) in links {
        let delivery = link
            .out
            .send_snapshot(link.epoch, frame.tick, scratch, |previous, out| {
                frame.write_message(entity, previous, out);
            });
        match delivery {
            Delivery::Written | Delivery::Kept => done.sent += 1,
            Delivery::Replaced => {
                done.sent += 1;
                done.skipped += 1;
            }
            Delivery::Stale | Delivery::Overflow => {
                gone.push(entity);
                continue;
            }
        }
        done.bytes += payload_len(scratch) as u64;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::codec::encode_snapshot_body;
    use ticksync_protocol::{EntityState, ServerMessage, decode_server};

    /// The message's payload, checking its frame header on the way.
    fn payload(frame: &TickFrame, entity: EntityId, previous: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        frame.write_message(entity, previous, &mut out);
        assert_eq!(out[0], 0x82, "a final binary frame");
        assert_eq!(usize::from(out[1]), out.len() - 2, "a short frame's length");
        out.split_off(2)
    }

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
            body,
            delta: Vec::new(),
            acks: vec![7, 300],
        };
        for (entity, ack) in [(0u8, 7u32), (1, 300), (9, 0)] {
            let bytes = payload(&frame, entity, Some(41));
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
            body,
            delta,
            acks: vec![5],
        };
        let kind = |previous| match decode_server(&payload(&frame, 0, previous)).expect("decodes") {
            ServerMessage::Snapshot(_) => "full",
            ServerMessage::SnapshotDelta(d) => {
                assert_eq!((d.ack_seq, d.baseline, d.changes[0].dx), (5, 41, Some(10)));
                "delta"
            }
            _ => "other",
        };
        assert_eq!(kind(Some(41)), "delta");
        assert_eq!(kind(Some(40)), "full", "skipped a tick");
        assert_eq!(kind(None), "full", "first snapshot");
    }
}
