//! `fanout/`: one tick delivered to N in-process sessions' latest-wins mailboxes (a
//! `watch` channel per lobby holding an `Arc` of the frame, one task per session that
//! wakes and builds its player's message), on a single-threaded runtime like a server
//! pinned to one core. Sockets are not included: that cost is measured end to end by
//! the bots.
//!
//! - `fanout/one_lobby/N`: a lobby of N players.
//! - `fanout/lobbies_of_10/N`: N players in lobbies of 10, every lobby publishing: the
//!   server-wide in-process cost of one tick.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_benches::{Fanout, LobbyModel};

fn fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("fanout");
    for (name, sessions, per_lobby) in [
        ("one_lobby", 10usize, 10usize),
        ("one_lobby", 64, 64),
        ("one_lobby", 200, 200),
        ("lobbies_of_10", 100, 10),
        ("lobbies_of_10", 1_000, 10),
        ("lobbies_of_10", 3_000, 10),
    ] {
        let players = u8::try_from(per_lobby).unwrap_or(u8::MAX);
        let frame = LobbyModel::new(players).tick();
        let fanout = runtime.block_on(async { Fanout::spawn(sessions, per_lobby) });
        group.throughput(Throughput::Elements(sessions as u64));
        group.bench_function(BenchmarkId::new(name, sessions), |b| {
            b.iter(|| runtime.block_on(fanout.deliver(&frame)));
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
