//! `codec/`: encoding and decoding through the protocol's codec.
//!
//! - `codec/snapshot_encode/N`, `codec/snapshot_decode/N`: a whole `Snapshot` of N
//!   entities, as a client decodes it and as a server that encoded per player would.
//! - `codec/snapshot_body/N`: what the server really does once per lobby per tick (the
//!   shared body), and `codec/snapshot_head`: what it does once per player.
//! - `codec/input_encode`, `codec/input_decode`: one `Input`, once per player-tick.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_benches::{entities, input, snapshot};
use ticksync_protocol::codec::{
    SNAPSHOT_HEAD_MAX, encode_client_into, encode_server_into, encode_snapshot_body,
    write_snapshot_head,
};
use ticksync_protocol::{decode_client, decode_server, encode_client, encode_server};

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for n in [10usize, 64, 200] {
        let message = snapshot(n);
        let bytes = encode_server(&message);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len());
        group.bench_with_input(BenchmarkId::new("snapshot_encode", n), &message, |b, m| {
            b.iter(|| {
                out.clear();
                encode_server_into(black_box(m), &mut out);
                black_box(out.len())
            });
        });
        group.bench_with_input(
            BenchmarkId::new("snapshot_decode", n),
            &bytes,
            |b, bytes| {
                b.iter(|| decode_server(black_box(bytes)).map(black_box).is_ok());
            },
        );
        let states = entities(n);
        group.bench_with_input(
            BenchmarkId::new("snapshot_body", n),
            &states,
            |b, states| {
                b.iter(|| {
                    out.clear();
                    encode_snapshot_body(black_box(100_000), 0, black_box(states), &mut out);
                    black_box(out.len())
                });
            },
        );
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("snapshot_head", |b| {
        let mut head = [0u8; SNAPSHOT_HEAD_MAX];
        b.iter(|| write_snapshot_head(black_box(123_456), &mut head));
    });
    let message = input(123_456);
    let bytes = encode_client(&message);
    let mut out = Vec::with_capacity(32);
    group.bench_function("input_encode", |b| {
        b.iter(|| {
            out.clear();
            encode_client_into(black_box(&message), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("input_decode", |b| {
        b.iter(|| decode_client(black_box(&bytes)).map(black_box).is_ok());
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
