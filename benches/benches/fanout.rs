//! `fanout/`: one tick's snapshots written to N players' real loopback TCP sockets
//! through their outboxes, by the server's own delivery code (`broadcast::deliver`, the
//! loop the tick task runs), on a single-threaded runtime like a server pinned to one
//! core. Each write is one non-blocking `send`, whose cost includes the kernel's loopback
//! delivery to the receiving socket; the clients' reading is outside the measured time.
//!
//! - `fanout/tcp/N`: a lobby of N players, a full snapshot of N entities each.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_server::testing::Fanout;

/// Ticks delivered between two drains of the clients' sockets (so that they never fill).
const CHUNK: u64 = 16;

fn fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime");
    let _guard = runtime.enter();
    let mut group = c.benchmark_group("fanout");
    for players in [10usize, 64, 200] {
        let mut fanout = runtime
            .block_on(Fanout::new(players))
            .expect("loopback sockets");
        group.throughput(Throughput::Elements(players as u64));
        group.bench_function(BenchmarkId::new("tcp", players), |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let started = Instant::now();
                    for _ in 0..n {
                        black_box(fanout.deliver());
                    }
                    measured += started.elapsed();
                    let _ = fanout.drain();
                    left -= n;
                }
                measured
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
