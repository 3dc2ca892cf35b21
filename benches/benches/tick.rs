//! `tick/`: one lobby tick of N players with inputs (hand over the decoded inputs, step,
//! write the `State`, encode the shared part once in full and as a delta), as the lobby's
//! tick task runs it. The
//! workload's "tick compute" target (p99 <= 50 us for a lobby of 10) is about this.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_benches::LobbyModel;

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    for players in [10u16, 64, 200] {
        let mut lobby = LobbyModel::new(players);
        // Let the players spread out and collide as they do in a running lobby.
        for _ in 0..300 {
            lobby.new_inputs();
            let _ = lobby.tick();
        }
        group.throughput(Throughput::Elements(u64::from(players)));
        group.bench_function(BenchmarkId::new("lobby_step", players), |b| {
            b.iter(|| {
                lobby.new_inputs();
                std::hint::black_box(lobby.tick().len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);
