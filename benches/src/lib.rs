//! Fixtures of the criterion benches (`benches/benches/*.rs`): models of what the server
//! does every tick, built from the same public pieces the server uses.
//!
//! - `codec/`: [`snapshot`] and [`input`] messages through the protocol's codec.
//! - `tick/`: [`LobbyModel::tick`] is one lobby tick as `server/src/lobby.rs` runs it
//!   (step the [`Arena`] through the [`Game`] trait with every player's input, view,
//!   quantize, encode the shared snapshot body once, collect the acknowledgements),
//!   without the channels around it.
//! - `fanout/`: [`Fanout`] delivers one [`TickFrame`] to sessions the way
//!   `server/src/broadcast.rs` does: a `watch` channel per lobby holding an
//!   `Arc<TickFrame>`, one task per session that wakes on it and builds its player's
//!   message (its own head plus the shared body). Sockets are left out: the bots
//!   measure those end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use glam::Vec2;
use ticksync_protocol::codec::{SNAPSHOT_HEAD_MAX, encode_snapshot_body, write_snapshot_head};
use ticksync_protocol::{ClientMessage, EntityId, EntityState, Input, ServerMessage, Snapshot};
use ticksync_server::arena::Arena;
use ticksync_server::game::{EntityView, Game, PlayerInput, quantize_views};
use tokio::sync::{Notify, watch};

/// `n` entities spread over the quantized range, moving.
pub fn entities(n: usize) -> Vec<EntityState> {
    (0..n)
        .map(|i| {
            let i16 = u16::try_from(i).unwrap_or(u16::MAX);
            EntityState {
                id: u8::try_from(i).unwrap_or(u8::MAX),
                flags: u8::from(i == 0),
                x: i16.wrapping_mul(2_617),
                y: i16.wrapping_mul(7_919),
                vx: i8::try_from(i % 200).map_or(0, |v| v.wrapping_sub(100)),
                vy: 127,
            }
        })
        .collect()
}

/// A full `Snapshot` of `n` entities, as one player receives it.
pub fn snapshot(n: usize) -> ServerMessage {
    ServerMessage::Snapshot(Snapshot {
        ack_seq: 12_345,
        tick: 100_000,
        baseline: 0,
        entities: entities(n),
    })
}

/// An `Input` as a bot sends it.
pub fn input(seq: u32) -> ClientMessage {
    ClientMessage::Input(Input {
        seq,
        dir_x: 0.6,
        dir_y: -0.8,
        buttons: 0,
    })
}

/// One tick's shared snapshot: the model of the server's `TickFrame`.
#[derive(Debug, Default)]
pub struct TickFrame {
    /// The tick.
    pub tick: u32,
    /// Tick, baseline and entities, encoded once for the lobby.
    pub body: Bytes,
    /// Last applied input sequence, by entity id.
    pub acks: Vec<u32>,
}

impl TickFrame {
    /// `entity`'s complete `Snapshot` message: its head, then the shared body, built in
    /// `scratch` (as `TickFrame::message_for` in the server).
    pub fn message_for(&self, entity: EntityId, scratch: &mut BytesMut) -> Bytes {
        let ack = self.acks.get(usize::from(entity)).copied().unwrap_or(0);
        let mut head = [0u8; SNAPSHOT_HEAD_MAX];
        let n = write_snapshot_head(ack, &mut head);
        scratch.reserve(n + self.body.len());
        scratch.extend_from_slice(&head[..n]);
        scratch.extend_from_slice(&self.body);
        scratch.split().freeze()
    }
}

/// A lobby's tick task without its channels: the game, every player's current input,
/// and the scratch buffers the server reuses.
pub struct LobbyModel {
    game: Box<dyn Game>,
    inputs: Vec<(EntityId, PlayerInput)>,
    seqs: Vec<u32>,
    views: Vec<EntityView>,
    states: Vec<EntityState>,
    tick: u32,
    rng: u64,
}

impl std::fmt::Debug for LobbyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LobbyModel")
            .field("players", &self.inputs.len())
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl LobbyModel {
    /// An arena with `players` players, each holding a direction.
    pub fn new(players: u8) -> Self {
        let mut game: Box<dyn Game> = Box::new(Arena::new());
        for id in 0..players {
            game.spawn(id);
        }
        let mut model = Self {
            game,
            inputs: (0..players)
                .map(|id| (id, PlayerInput::default()))
                .collect(),
            seqs: vec![0; usize::from(players)],
            views: Vec::new(),
            states: Vec::new(),
            tick: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        };
        model.new_inputs();
        model
    }

    /// Every player sends a new input (a new random direction), as at 30 Hz each
    /// player's newest input replaces its previous one before every tick.
    pub fn new_inputs(&mut self) {
        for ((_, input), seq) in self.inputs.iter_mut().zip(&mut self.seqs) {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let [a, b, ..] = self.rng.to_le_bytes();
            let unit = |v: u8| f32::from(v) / 127.5 - 1.0;
            input.dir = Vec2::new(unit(a), unit(b)).clamp_length_max(1.0);
            *seq += 1;
        }
    }

    /// One tick: step with the inputs, view, quantize, encode the body once, and
    /// collect the acknowledgements, as `Lobby::step` and `Lobby::publish` do.
    pub fn tick(&mut self) -> Arc<TickFrame> {
        let dt = 1.0 / 30.0;
        self.game.step(&self.inputs, self.tick, dt);
        self.views.clear();
        self.game.view(&mut self.views);
        self.states.clear();
        quantize_views(
            &self.views,
            self.game.world_size(),
            self.game.max_speed(),
            &mut self.states,
        );
        let mut body = Vec::with_capacity(8 + self.states.len() * EntityState::WIRE_BYTES);
        encode_snapshot_body(self.tick, 0, &self.states, &mut body);
        let frame = Arc::new(TickFrame {
            tick: self.tick,
            body: Bytes::from(body),
            acks: self.seqs.clone(),
        });
        self.tick = self.tick.wrapping_add(1);
        frame
    }
}

/// Sessions waiting on lobbies' `watch` channels, as in the server. Create it inside a
/// tokio runtime: it spawns one task per session.
#[derive(Debug)]
pub struct Fanout {
    lobbies: Vec<watch::Sender<Arc<TickFrame>>>,
    sessions: usize,
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Fanout {
    /// `sessions` sessions in lobbies of `per_lobby` (the last one may be smaller).
    pub fn spawn(sessions: usize, per_lobby: usize) -> Self {
        let per_lobby = per_lobby.max(1);
        let remaining = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let mut lobbies = Vec::new();
        for first in (0..sessions).step_by(per_lobby) {
            let (tx, _) = watch::channel(Arc::new(TickFrame::default()));
            for entity in 0..per_lobby.min(sessions - first) {
                let mut rx = tx.subscribe();
                let remaining = Arc::clone(&remaining);
                let done = Arc::clone(&done);
                let entity = EntityId::try_from(entity).unwrap_or(EntityId::MAX);
                tokio::spawn(async move {
                    let mut scratch = BytesMut::with_capacity(256);
                    while rx.changed().await.is_ok() {
                        let frame = Arc::clone(&rx.borrow_and_update());
                        let message = frame.message_for(entity, &mut scratch);
                        std::hint::black_box(message);
                        if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                            done.notify_one();
                        }
                    }
                });
            }
            lobbies.push(tx);
        }
        Self {
            lobbies,
            sessions,
            remaining,
            done,
        }
    }

    /// Publishes `frame` in every lobby and waits until every session has built its
    /// message.
    pub async fn deliver(&self, frame: &Arc<TickFrame>) {
        self.remaining.store(self.sessions, Ordering::Release);
        for lobby in &self.lobbies {
            lobby.send_replace(Arc::clone(frame));
        }
        self.done.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::decode_server;

    #[test]
    fn a_model_tick_is_a_valid_snapshot_for_every_player() {
        let mut lobby = LobbyModel::new(10);
        lobby.new_inputs();
        let _ = lobby.tick();
        let frame = lobby.tick();
        let mut scratch = BytesMut::new();
        for entity in 0..10 {
            let bytes = frame.message_for(entity, &mut scratch);
            let ServerMessage::Snapshot(s) = decode_server(&bytes).expect("decodes") else {
                panic!("not a snapshot");
            };
            assert_eq!((s.tick, s.ack_seq, s.entities.len()), (1, 2, 10));
        }
    }

    #[test]
    fn fanout_reaches_every_session() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let fanout = Fanout::spawn(25, 10);
            let frame = LobbyModel::new(10).tick();
            for _ in 0..3 {
                fanout.deliver(&frame).await;
            }
            assert_eq!(fanout.remaining.load(Ordering::Acquire), 0);
        });
    }

    #[test]
    fn fixtures_encode() {
        let bytes = ticksync_protocol::encode_server(&snapshot(64));
        assert!(bytes.len() > 64 * EntityState::WIRE_BYTES);
        assert!(!ticksync_protocol::encode_client(&input(9)).is_empty());
    }
}
