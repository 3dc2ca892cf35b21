//! Fixtures of the criterion benches (`benches/benches/*.rs`): models of what the server
//! does every tick, built from the same public pieces the server uses.
//!
//! - `codec/`: control messages through the protocol's codec, and arena snapshots and
//!   inputs through the schema-driven game frames ([`arena_state`], [`input`]).
//! - `tick/`: [`LobbyModel::tick`] is one lobby tick as `server/src/lobby/task.rs` runs
//!   it (the arena through the Game API's [`GameSim`] with every player's new input,
//!   step, write the `State`, encode the shared part once in full and as a delta), without
//!   the channels around it.
//! - `fanout/` uses the server's own [`ticksync_server::testing::Fanout`]: one tick
//!   written to N players' real loopback sockets through their outboxes, by the same
//!   code the tick task runs.
//! - `state/` (in its bench file): a 200-entity shooter-like world, and the arena against
//!   protocol 1's hand-written encoder.

use std::sync::Arc;

use glam::Vec2;
use ticksync_protocol::state::io::{DecodedInput, decode_input, encode_input};
use ticksync_protocol::state::{Codec, Encoder, PlayerRef, State};
use ticksync_server::game::{GameOptions, GameSim, Sim};
use ticksync_server::games::arena::{Arena, ArenaInput};

/// The arena's schema compiled for a lobby of `players`.
pub fn arena_codec(players: u16) -> Arc<Codec> {
    let schema = ticksync_server::game::schema_of::<Arena>().unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Codec::new(schema, players.max(1)).unwrap_or_else(|e| panic!("{e}")))
}

/// An arena of `n` players after a few ticks of random walking: its codec and the states
/// of two consecutive ticks.
pub fn arena_state(n: u16) -> (Arc<Codec>, State, State) {
    let mut lobby = LobbyModel::new(n);
    for _ in 0..30 {
        lobby.new_inputs();
        let _ = lobby.tick();
    }
    let before = lobby.state.clone();
    lobby.new_inputs();
    let _ = lobby.tick();
    (Arc::clone(&lobby.codec), before, lobby.state.clone())
}

/// An arena input as a bot sends it.
pub fn input(codec: &Codec, seq: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let dir = Vec2::new(0.6, -0.8);
    encode_input(codec, seq, seq, &ArenaInput { dir }, &mut out);
    out
}

/// A lobby's tick task without its channels: the game behind the object-safe `Sim`, every
/// player's newest decoded input, and the buffers the server reuses.
pub struct LobbyModel {
    sim: Box<dyn Sim>,
    codec: Arc<Codec>,
    inputs: Vec<DecodedInput>,
    state: State,
    previous: State,
    encoder: Encoder,
    full: Vec<u8>,
    delta: Vec<u8>,
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
    pub fn new(players: u16) -> Self {
        let codec = arena_codec(players);
        let mut sim = GameSim::with_codec(Arena::new(), Arc::clone(&codec));
        for seat in 1..=players {
            let _ = sim.join(PlayerRef(seat), "bot", &GameOptions::none());
        }
        let mut model = Self {
            sim: Box::new(sim),
            inputs: Vec::new(),
            state: State::new(&codec),
            previous: State::new(&codec),
            codec,
            encoder: Encoder::new(),
            full: Vec::new(),
            delta: Vec::new(),
            tick: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        };
        model.inputs = (1..=players)
            .map(|_| decode_input(&model.codec, &input(&model.codec, 0)))
            .filter_map(Result::ok)
            .collect();
        model.new_inputs();
        model
    }

    /// Every player sends a new input (a new random direction), decoded by the schema as
    /// the sessions do: at 30 Hz each player's newest input replaces its previous one
    /// before every tick.
    pub fn new_inputs(&mut self) {
        let mut bytes = Vec::new();
        for input in &mut self.inputs {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let [a, b, ..] = self.rng.to_le_bytes();
            let unit = |v: u8| f32::from(v) / 127.5 - 1.0;
            let dir = Vec2::new(unit(a), unit(b)).clamp_length_max(1.0);
            bytes.clear();
            encode_input(
                &self.codec,
                input.seq + 1,
                0,
                &ArenaInput { dir },
                &mut bytes,
            );
            if let Ok(decoded) = decode_input(&self.codec, &bytes) {
                *input = decoded;
            }
        }
    }

    /// One tick as the lobby runs it: hand over the inputs, step, write the state and
    /// encode the shared part in full and as a delta; returns the full part.
    pub fn tick(&mut self) -> &[u8] {
        for (i, input) in self.inputs.iter().enumerate() {
            self.sim
                .input(PlayerRef(u16::try_from(i + 1).unwrap_or(u16::MAX)), input);
        }
        self.sim.step(self.tick, 1.0 / 30.0);
        std::mem::swap(&mut self.state, &mut self.previous);
        let _ = self.sim.write(self.tick, &mut self.state);
        self.full.clear();
        self.encoder
            .encode_shared(&self.codec, None, &self.state, &mut self.full);
        self.delta.clear();
        if self.tick > 0 {
            self.encoder.encode_shared(
                &self.codec,
                Some(&self.previous),
                &self.state,
                &mut self.delta,
            );
        }
        self.tick = self.tick.wrapping_add(1);
        &self.full
    }

    /// The last tick's delta part (empty on the first tick).
    pub fn delta(&self) -> &[u8] {
        &self.delta
    }

    /// The newest input sequence of `seat`'s player: what its snapshot acknowledges.
    pub fn ack(&self, seat: u16) -> u32 {
        usize::from(seat)
            .checked_sub(1)
            .and_then(|i| self.inputs.get(i))
            .map_or(0, |i| i.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::state::{ClientState, write_snapshot};

    #[test]
    fn a_model_tick_is_a_valid_snapshot_for_every_player() {
        let mut lobby = LobbyModel::new(10);
        lobby.new_inputs();
        let first = lobby.tick().to_vec();
        lobby.new_inputs();
        let _ = lobby.tick();
        let delta = lobby.delta().to_vec();
        for seat in 1..=10 {
            let mut client = ClientState::new(Arc::clone(&lobby.codec), PlayerRef(seat));
            let mut bytes = Vec::new();
            write_snapshot(lobby.ack(seat), &[], &first, &mut bytes);
            let applied = client.apply(&bytes).expect("full");
            assert_eq!((applied.tick, applied.created.len()), (0, 10));
            bytes.clear();
            write_snapshot(lobby.ack(seat), &[], &delta, &mut bytes);
            let applied = client.apply(&bytes).expect("delta");
            assert_eq!((applied.tick, applied.ack_seq, applied.full), (1, 3, false));
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
        // Loopback delivers at once; allow a moment anyway. Each snapshot carries 25
        // arena entities of at least 6 bytes.
        let want = 3 * 25 * 25 * 6;
        let mut bytes = 0;
        for _ in 0..100 {
            bytes += fanout.drain().expect("drains");
            if bytes >= want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(bytes >= want, "{bytes}");
    }

    #[test]
    fn fixtures_encode() {
        let (codec, a, b) = arena_state(64);
        assert_eq!(b.entities().len(), 64);
        assert!(a.tick() < b.tick());
        let bytes = input(&codec, 9);
        assert!(decode_input(&codec, &bytes).is_ok());
    }
}
