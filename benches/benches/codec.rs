//! `codec/`: encoding and decoding of what goes over the wire most.
//!
//! - `codec/snapshot_encode/N`, `codec/snapshot_decode/N`: a whole arena snapshot of N
//!   players for one player (encoded per player, as a server without a shared part would),
//!   and its decode into a client's state.
//! - `codec/snapshot_body/N`: what the server really does once per lobby per tick (the
//!   shared part, in full), and `codec/snapshot_head`: what it adds per player.
//! - `codec/input_encode`, `codec/input_decode`: one arena input by its schema, once per
//!   player-tick.
//! - `codec/joined_encode`: a control message (bincode), once per join.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_benches::{arena_state, input};
use ticksync_protocol::state::io::decode_input;
use ticksync_protocol::state::{ClientState, Encoder, PlayerRef, write_snapshot};
use ticksync_protocol::{Joined, ServerMessage, encode_server};

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let mut enc = Encoder::new();
    for n in [10u16, 64, 200] {
        let (codec, _, state) = arena_state(n);
        let mut bytes = Vec::new();
        enc.encode_snapshot(&codec, None, &state, PlayerRef(1), 12_345, &mut bytes);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len());
        group.bench_with_input(BenchmarkId::new("snapshot_encode", n), &state, |b, s| {
            b.iter(|| {
                out.clear();
                enc.encode_snapshot(&codec, None, black_box(s), PlayerRef(1), 12_345, &mut out);
                black_box(out.len())
            });
        });
        group.bench_with_input(
            BenchmarkId::new("snapshot_decode", n),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(1));
                    client.apply(black_box(bytes)).map(|a| a.tick).is_ok()
                });
            },
        );
        group.bench_with_input(BenchmarkId::new("snapshot_body", n), &state, |b, s| {
            b.iter(|| {
                out.clear();
                enc.encode_shared(&codec, None, black_box(s), &mut out);
                black_box(out.len())
            });
        });
        if n == 10 {
            let mut body = Vec::new();
            enc.encode_shared(&codec, None, &state, &mut body);
            group.throughput(Throughput::Elements(1));
            group.bench_function("snapshot_head", |b| {
                let mut own = Vec::new();
                b.iter(|| {
                    own.clear();
                    enc.encode_player(&codec, None, &state, PlayerRef(3), &mut own);
                    out.clear();
                    write_snapshot(black_box(123_456), &own, &body, &mut out);
                    black_box(out.len())
                });
            });
            let message = input(&codec, 123_456);
            group.bench_function("input_encode", |b| {
                b.iter(|| black_box(input(&codec, black_box(123_456)).len()));
            });
            group.bench_function("input_decode", |b| {
                b.iter(|| {
                    decode_input(&codec, black_box(&message))
                        .map(black_box)
                        .is_ok()
                });
            });
            let joined = ServerMessage::Joined(Joined {
                lobby_id: 7,
                name: "arena 1".into(),
                code: None,
                max_players: 10,
                seat: 3,
                tick: 1000,
                schema: codec.schema().encode(),
                schema_hash: codec.hash().to_le_bytes(),
                players: Vec::new(),
            });
            group.bench_function("joined_encode", |b| {
                b.iter(|| black_box(encode_server(black_box(&joined)).len()));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
