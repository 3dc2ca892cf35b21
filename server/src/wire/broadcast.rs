//! What a lobby publishes each tick, and how each player's snapshot message is made of
//! it.
//!
//! The lobby encodes the shared part of the snapshot (the lobby state and the entities
//! everyone sees) at most once per tick in each form, each on the turn of the first
//! player who needs it: as changes from the previous tick ([`TickFrame::delta`], kept
//! only when smaller than the full part) and in full ([`TickFrame::full`]); in steady
//! play with deltas the full part is never encoded, with full snapshots only the delta is
//! never. For each player it then encodes
//! the player's own small part (its private state, the entities only it or a few see,
//! the `owner_only` fields of what it controls; usually nothing or a few bytes) against
//! the same baseline, and writes the WebSocket frame header, the snapshot head (tag,
//! acknowledged input, own part) and the shared bytes into one scratch buffer that the
//! player's outbox (`outbox.rs`) writes to the socket at once: one small copy and one
//! `send` per player, no re-encoding of what everyone sees, no task wake-up.
//!
//! Deltas are the default. A player gets the delta when the last snapshot its connection
//! was handed is the previous tick's (over TCP every handed snapshot arrives, so that is
//! a valid baseline without acks); one that just joined, or whose previous snapshot was
//! replaced before it was written (a slow client skipping to the newest), or that asked
//! for full snapshots (`Options { delta_snapshots: false }`), gets the full snapshot.

use ticksync_protocol::state::{
    Codec, Encoder, PlayerRef, State, snapshot_head_len, write_snapshot,
};

use crate::wire::frame::{payload_len, write_binary_header};
use crate::wire::outbox::{Delivery, Link};

/// One tick's shared snapshot parts.
#[derive(Debug, Default)]
pub(crate) struct TickFrame {
    /// The tick the state is the result of.
    pub(crate) tick: u32,
    /// The shared part in full, once encoded (see `full_ready`).
    pub(crate) full: Vec<u8>,
    /// Whether `full` holds this tick's full shared part (encoded on first need).
    pub(crate) full_ready: bool,
    /// The shared part as changes from the previous tick's state (`Parts::from`), when
    /// it is smaller than the full part (else empty); see `delta_ready`.
    pub(crate) delta: Vec<u8>,
    /// Whether `delta` is decided for this tick: encoded on the first player whose
    /// baseline is the previous tick, so a lobby whose players all take full snapshots
    /// never encodes one.
    pub(crate) delta_ready: bool,
    /// The last input sequence applied, indexed by seat - 1.
    pub(crate) acks: Vec<u32>,
}

/// What each player's own part is encoded from: the states of this tick and the
/// previous one (the deltas' baseline) and the lobby's encoder.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    /// The lobby's compiled schema.
    pub(crate) codec: &'a Codec,
    /// The previous tick's state, the deltas' baseline (None when there is none).
    pub(crate) from: Option<&'a State>,
    /// This tick's state.
    pub(crate) to: &'a State,
    /// Scratch buffers only.
    pub(crate) encoder: &'a mut Encoder,
    /// Where a player's own part is built.
    pub(crate) own: &'a mut Vec<u8>,
}

impl TickFrame {
    /// Starts the frame of `tick`: nothing encoded yet (each part on its first need).
    pub(crate) fn begin(&mut self, tick: u32) {
        self.tick = tick;
        self.full_ready = false;
        self.delta_ready = false;
        self.delta.clear();
    }

    /// Encodes the full shared part.
    fn encode_full(&mut self, parts: &mut Parts<'_>) {
        self.full.clear();
        parts
            .encoder
            .encode_shared(parts.codec, None, parts.to, &mut self.full);
        self.full_ready = true;
    }

    /// Encodes the delta from `parts.from`, kept only when smaller than the full part
    /// (compared with the full part's least length first, then with its length, counted
    /// unless already encoded).
    fn encode_delta(&mut self, parts: &mut Parts<'_>) {
        self.delta_ready = true;
        self.delta.clear();
        let Some(from) = parts.from else {
            return;
        };
        parts
            .encoder
            .encode_shared(parts.codec, Some(from), parts.to, &mut self.delta);
        let len = self.delta.len();
        if len < parts.to.full_shared_len_at_least() {
            return;
        }
        let full = if self.full_ready {
            self.full.len()
        } else {
            parts.encoder.full_shared_len(parts.codec, parts.to)
        };
        if len >= full {
            self.delta.clear();
        }
    }

    /// Appends the snapshot message for `seat`'s player to `out`, as one WebSocket binary
    /// frame: a delta if `previous` (the tick of the last snapshot this connection was
    /// handed, None for a full one) is the tick before this frame's and a delta was
    /// encoded, else the full snapshot.
    pub(crate) fn write_message(
        &mut self,
        parts: &mut Parts<'_>,
        seat: PlayerRef,
        previous: Option<u32>,
        out: &mut Vec<u8>,
    ) {
        let ack = usize::from(seat.0)
            .checked_sub(1)
            .and_then(|i| self.acks.get(i))
            .copied()
            .unwrap_or(0);
        let wants_delta =
            parts.from.is_some() && previous.is_some() && previous == self.tick.checked_sub(1);
        if wants_delta && !self.delta_ready {
            self.encode_delta(parts);
        }
        let delta = wants_delta && !self.delta.is_empty();
        if !delta && !self.full_ready {
            self.encode_full(parts);
        }
        let (from, body) = if delta {
            (parts.from, &self.delta)
        } else {
            (None, &self.full)
        };
        parts.own.clear();
        parts
            .encoder
            .encode_player(parts.codec, from, parts.to, seat, parts.own);
        let own = parts.own.len();
        let len = snapshot_head_len(ack, own) + own + body.len();
        out.reserve(len + 10);
        write_binary_header(len, out);
        write_snapshot(ack, parts.own, body, out);
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
    frame: &mut TickFrame,
    parts: &mut Parts<'_>,
    links: impl IntoIterator<Item = (PlayerRef, &'a Link)>,
    scratch: &mut Vec<u8>,
    gone: &mut Vec<PlayerRef>,
) -> Delivered {
    let mut done = Delivered::default();
    for (seat, link) in links {
        let delivery = link
            .out
            .send_snapshot(link.epoch, frame.tick, scratch, |previous, out| {
                frame.write_message(parts, seat, previous, out);
            });
        match delivery {
            Delivery::Written | Delivery::Kept => done.sent += 1,
            Delivery::Replaced => {
                done.sent += 1;
                done.skipped += 1;
            }
            Delivery::Stale | Delivery::Overflow => {
                gone.push(seat);
                continue;
            }
        }
        done.bytes += payload_len(scratch) as u64;
    }
    done
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ticksync_protocol::schema::{Field, FieldType, Schema};
    use ticksync_protocol::state::{ClientState, Value, Visibility};

    use super::*;

    fn codec() -> Codec {
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
        Codec::new(schema, 4).expect("codec")
    }

    fn state(codec: &Codec, tick: u32, x: i64) -> State {
        let mut s = State::new(codec);
        s.begin(codec, tick);
        s.push_entity_values(
            codec,
            0,
            1,
            PlayerRef(1),
            Visibility::Everyone,
            &[Value::Int(x)],
        )
        .expect("kind");
        s.push_entity_values(
            codec,
            0,
            2,
            PlayerRef::NONE,
            Visibility::Only(PlayerRef(2)),
            &[Value::Int(7)],
        )
        .expect("kind");
        for seat in 1..=2 {
            s.set_private_values(codec, PlayerRef(seat), &[Value::Int(i64::from(seat) + x)])
                .expect("seat");
        }
        s.finish(codec).expect("finish");
        s
    }

    fn frame(codec: &Codec, enc: &mut Encoder, from: &State, to: &State) -> TickFrame {
        let mut f = TickFrame {
            tick: to.tick(),
            acks: vec![7, 300],
            ..TickFrame::default()
        };
        enc.encode_shared(codec, Some(from), to, &mut f.delta);
        f.delta_ready = true;
        f
    }

    /// The message's payload, checking its frame header on the way.
    fn payload(
        f: &mut TickFrame,
        parts: &mut Parts<'_>,
        seat: u16,
        previous: Option<u32>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        f.write_message(parts, PlayerRef(seat), previous, &mut out);
        assert_eq!(out[0], 0x82, "a final binary frame");
        assert_eq!(usize::from(out[1]), out.len() - 2, "a short frame's length");
        out.split_off(2)
    }

    #[test]
    fn each_player_gets_its_own_ack_and_part_and_deltas_only_on_its_baseline() {
        let codec = codec();
        let (a, b) = (state(&codec, 41, 10), state(&codec, 42, 20));
        let mut enc = Encoder::new();
        let mut f = frame(&codec, &mut enc, &a, &b);
        let mut own = Vec::new();
        let mut enc2 = Encoder::new();
        let mut parts = Parts {
            codec: &codec,
            from: Some(&a),
            to: &b,
            encoder: &mut enc2,
            own: &mut own,
        };
        let shared = Arc::new(codec.clone());
        for (seat, ack) in [(1u16, 7u32), (2, 300)] {
            let mut client = ClientState::new(Arc::clone(&shared), PlayerRef(seat));
            let mut old = Vec::new();
            Encoder::new().encode_snapshot(&codec, None, &a, PlayerRef(seat), 1, &mut old);
            client.apply(&old).expect("baseline");
            let full = payload(&mut f, &mut parts, seat, None);
            assert!(f.full_ready, "the full part is encoded on the first need");
            let mut want = Vec::new();
            Encoder::new().encode_shared(&codec, None, &b, &mut want);
            assert_eq!(f.full, want);
            let delta = payload(&mut f, &mut parts, seat, Some(41));
            let skipped = payload(&mut f, &mut parts, seat, Some(40));
            assert_ne!(delta, full);
            assert_eq!(skipped, full, "a skipped tick gets the full snapshot");
            let applied = client.apply(&delta).expect("the delta applies to tick 41");
            assert!(!applied.full);
            assert_eq!(applied.ack_seq, ack);
            // Entity 2 is seat 2's only.
            assert_eq!(client.entity(2).is_some(), seat == 2);
            assert_eq!(client.private_values(), [Value::Int(i64::from(seat) + 20)]);
            let mut fresh = ClientState::new(Arc::clone(&shared), PlayerRef(seat));
            assert!(fresh.apply(&full).expect("full").full);
        }
    }

    #[test]
    fn each_shared_part_is_encoded_only_when_a_player_needs_it() {
        let codec = codec();
        let (a, b) = (state(&codec, 41, 10), state(&codec, 42, 20));
        let mut f = TickFrame {
            acks: vec![7, 300],
            ..TickFrame::default()
        };
        f.begin(42);
        let (mut own, mut enc) = (Vec::new(), Encoder::new());
        let mut parts = Parts {
            codec: &codec,
            from: Some(&a),
            to: &b,
            encoder: &mut enc,
            own: &mut own,
        };
        // Players on full snapshots: no delta is encoded.
        let full = payload(&mut f, &mut parts, 1, None);
        payload(&mut f, &mut parts, 2, Some(40));
        assert!(f.full_ready);
        assert!(!f.delta_ready && f.delta.is_empty());
        // The first player on the previous tick has it decided: this one entity's delta
        // is no smaller than the full part, so it is dropped and the player gets the
        // full snapshot.
        let mut want = Vec::new();
        Encoder::new().encode_shared(&codec, Some(&a), &b, &mut want);
        assert!(want.len() >= f.full.len());
        assert_eq!(payload(&mut f, &mut parts, 1, Some(41)), full);
        assert!(f.delta_ready && f.delta.is_empty());
        // The next tick starts with neither.
        f.begin(43);
        assert!(!f.full_ready && !f.delta_ready && f.delta.is_empty());
    }
}
