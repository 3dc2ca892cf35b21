//! Fixtures of the criterion benches (`benches/benches/*.rs`): models of what the server
//! does every tick, built from the same public pieces the server uses.
//!
//! - `codec/`: [`snapshot`] and [`input`] messages through the protocol's codec.
//! - `tick/`: [`LobbyModel::tick`] is one lobby tick as `server/src/lobby.rs` runs it
//!   (step the [`Arena`] through the [`Game`] trait with every player's input, view,
//!   quantize, encode the shared snapshot body once, collect the acknowledgements),
//!   without the channels around it.
//! - `fanout/` uses the server's own [`ticksync_server::testing::Fanout`]: one tick
//!   written to N players' real loopback sockets through their outboxes, by the same
//!   code the tick task runs.

use glam::Vec2;
use ticksync_protocol::codec::encode_snapshot_body;
use ticksync_protocol::{ClientMessage, EntityId, EntityState, Input, ServerMessage, Snapshot};
use ticksync_server::arena::Arena;
use ticksync_server::game::legacy::{EntityView, Game, PlayerInput, quantize_views};

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

/// A lobby's tick task without its channels: the game, every player's current input,
/// and the scratch buffers the server reuses.
pub struct LobbyModel {
    game: Box<dyn Game>,
    inputs: Vec<(EntityId, PlayerInput)>,
    seqs: Vec<u32>,
    views: Vec<EntityView>,
    states: Vec<EntityState>,
    body: Vec<u8>,
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
            body: Vec::new(),
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

    /// One tick: step with the inputs, view, quantize and encode the body once, as
    /// `Lobby::step` and `Lobby::encode` do; returns the body (tick, baseline, entities).
    pub fn tick(&mut self) -> &[u8] {
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
        self.body.clear();
        encode_snapshot_body(self.tick, 0, &self.states, &mut self.body);
        self.tick = self.tick.wrapping_add(1);
        &self.body
    }

    /// The newest input sequence of `entity`'s player: what its snapshot acknowledges.
    pub fn ack(&self, entity: EntityId) -> u32 {
        self.seqs.get(usize::from(entity)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::codec::{SNAPSHOT_HEAD_MAX, write_snapshot_head};
    use ticksync_protocol::decode_server;

    #[test]
    fn a_model_tick_is_a_valid_snapshot_for_every_player() {
        let mut lobby = LobbyModel::new(10);
        lobby.new_inputs();
        let _ = lobby.tick();
        let body = lobby.tick().to_vec();
        for entity in 0..10 {
            let mut head = [0u8; SNAPSHOT_HEAD_MAX];
            let n = write_snapshot_head(lobby.ack(entity), &mut head);
            let bytes = [&head[..n], &body].concat();
            let ServerMessage::Snapshot(s) = decode_server(&bytes).expect("decodes") else {
                panic!("not a snapshot");
            };
            assert_eq!((s.tick, s.ack_seq, s.entities.len()), (1, 2, 10));
        }
    }

    #[test]
    fn fanout_writes_every_player_a_snapshot() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let _guard = runtime.enter();
        let mut fanout = runtime
            .block_on(ticksync_server::testing::Fanout::new(25))
            .expect("sockets");
        for _ in 0..3 {
            assert_eq!(fanout.deliver(), 25);
        }
        // Loopback delivers at once; allow a moment anyway.
        let mut bytes = 0;
        for _ in 0..100 {
            bytes += fanout.drain().expect("drains");
            if bytes >= 3 * 25 * (25 * EntityState::WIRE_BYTES as u64) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            bytes >= 3 * 25 * (25 * EntityState::WIRE_BYTES as u64),
            "{bytes}"
        );
    }

    #[test]
    fn fixtures_encode() {
        let bytes = ticksync_protocol::encode_server(&snapshot(64));
        assert!(bytes.len() > 64 * EntityState::WIRE_BYTES);
        assert!(!ticksync_protocol::encode_client(&input(9)).is_empty());
    }
}
