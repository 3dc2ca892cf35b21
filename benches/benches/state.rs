//! `state/`: game state (protocol 2) by schema.
//!
//! - `state/shooter_build/200`: quantize a 200-entity shooter world (50 ships, 150
//!   bullets: `Vec2` position and velocity, an angle, a `u8` health) into a `State`, as a
//!   lobby does every tick;
//! - `state/shooter_full/200`, `state/shooter_delta/200`: encode its shared body in full
//!   and as a delta from the previous tick (every entity moving, 15 bullets gone and 15
//!   new);
//! - `state/shooter_apply_full/200`, `state/shooter_apply_delta/200`: a client applying
//!   those snapshots;
//! - `state/arena10_*`: the built-in arena's 10 moving players (its real schema and
//!   entity enum, `ArenaEntity` with the VarUint score) by the generic path beside
//!   protocol 1's hand-written `codec::encode_snapshot_body` / `encode_delta_body`
//!   (`*_p1`, which carries no score), encode only (`arena10_full`, `arena10_delta`)
//!   and with the per-tick quantization (`arena10_build_full`, `arena10_build_delta`).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use glam::Vec2;
use ticksync_protocol::codec::{encode_delta_body, encode_snapshot_body};
use ticksync_protocol::schema::Schema;
use ticksync_protocol::state::{ClientState, Codec, Encoder, PlayerRef, State, Visibility};
use ticksync_protocol::{EntityState, State as DeriveState};
use ticksync_server::game::schema_of;
use ticksync_server::games::arena::{Arena, ArenaEntity};

#[derive(DeriveState, Clone, Copy)]
#[state(name = "ship")]
struct Ship {
    #[state(range = 0.0..=2000.0, precision = 0.05)]
    pos: Vec2,
    #[state(range = -500.0..=500.0, precision = 2.0)]
    vel: Vec2,
    #[state(angle_bits = 10)]
    aim: f32,
    #[state(range = 0..=100)]
    health: u8,
    #[state(owner_only, range = 0..=50)]
    ammo: u8,
}

#[derive(DeriveState, Clone, Copy)]
#[state(name = "bullet")]
struct Bullet {
    #[state(range = 0.0..=2000.0, precision = 0.05)]
    pos: Vec2,
    #[state(range = -1000.0..=1000.0, precision = 4.0)]
    vel: Vec2,
}

fn shooter_codec() -> Arc<Codec> {
    let schema = Schema::builder("shooter")
        .entity::<Ship>()
        .entity::<Bullet>()
        .build()
        .expect("valid");
    Arc::new(Codec::new(schema, 64).expect("codec"))
}

/// The world at tick `t`: ships 1..=50, bullets with ids from 1000 + 15 t on (150 alive).
fn shooter_state(codec: &Codec, s: &mut State, t: u32) {
    let ship = codec.kind::<Ship>().expect("kind");
    let bullet = codec.kind::<Bullet>().expect("kind");
    s.begin(codec, t);
    let tf = t as f32;
    for i in 0..50u32 {
        let a = i as f32;
        s.push_entity(
            codec,
            ship,
            i + 1,
            PlayerRef((i % 64) as u16 + 1),
            Visibility::Everyone,
            &Ship {
                pos: Vec2::new(40.0 * a + tf * 3.0, 1000.0 - 17.0 * a + tf * 2.0),
                vel: Vec2::new(90.0, 60.0),
                aim: a * 0.3 + tf * 0.01,
                health: (i * 2) as u8,
                ammo: (i % 50) as u8,
            },
        );
    }
    let first = 1000 + 15 * t;
    for k in 0..150u32 {
        let id = first + k;
        let age = (150 - k) as f32;
        s.push_entity(
            codec,
            bullet,
            id,
            PlayerRef::NONE,
            Visibility::Everyone,
            &Bullet {
                pos: Vec2::new(
                    (id % 97) as f32 * 20.0 + age * 10.0,
                    (id % 89) as f32 * 22.0,
                ),
                vel: Vec2::new(300.0, -120.0),
            },
        );
    }
    s.finish(codec).expect("finish");
}

/// Arena's 10 players at tick offset `t`, as the built-in game's `Arena::write` hands
/// them to its writer (its real entity enum, with the VarUint score).
fn arena_players(t: f32) -> Vec<ArenaEntity> {
    (0..10u16)
        .map(|i| {
            let a = f32::from(i);
            ArenaEntity::Player {
                pos: Vec2::new(100.0 + a * 80.0 + t * 6.6, 500.0 - a * 30.0 + t * 3.3),
                vel: Vec2::new(198.0, 99.0),
                it: i == 0,
                // Scores change rarely (a tag): the same both ticks, some past 7 (8-bit
                // var4 groups).
                score: i * 3,
            }
        })
        .collect()
}

fn arena_state(codec: &Codec, s: &mut State, tick: u32, players: &[ArenaEntity]) {
    s.begin(codec, tick);
    for (i, p) in players.iter().enumerate() {
        let seat = PlayerRef(i as u16 + 1);
        s.push_entity_of(codec, i as u32 + 1, seat, Visibility::Everyone, p)
            .expect("arena's kind");
    }
    s.finish(codec).expect("finish");
}

/// Protocol 1's per-tick work: quantize every player into its fixed `EntityState` (which
/// has no score: protocol 1 never sent one).
fn protocol1(players: &[ArenaEntity], out: &mut Vec<EntityState>) {
    out.clear();
    out.extend(players.iter().enumerate().map(|(i, p)| {
        let ArenaEntity::Player { pos, vel, it, .. } = p;
        EntityState {
            id: i as u8,
            flags: u8::from(*it),
            x: position_q(pos.x),
            y: position_q(pos.y),
            vx: velocity_q(vel.x),
            vy: velocity_q(vel.y),
        }
    }));
}

fn state(c: &mut Criterion) {
    let mut group = c.benchmark_group("state");
    let codec = shooter_codec();
    let mut a = State::new(&codec);
    shooter_state(&codec, &mut a, 100);
    let mut b = State::new(&codec);
    shooter_state(&codec, &mut b, 101);
    let mut enc = Encoder::new();
    let mut out = Vec::with_capacity(4096);

    let mut scratch = State::new(&codec);
    group.bench_function("shooter_build/200", |bench| {
        bench.iter(|| {
            shooter_state(&codec, &mut scratch, black_box(101));
            black_box(scratch.entities().len())
        });
    });
    group.bench_function("shooter_full/200", |bench| {
        bench.iter(|| {
            out.clear();
            black_box(enc.encode_shared(&codec, None, black_box(&b), &mut out))
        });
    });
    group.bench_function("shooter_delta/200", |bench| {
        bench.iter(|| {
            out.clear();
            black_box(enc.encode_shared(&codec, Some(black_box(&a)), black_box(&b), &mut out))
        });
    });
    let mut full_a = Vec::new();
    enc.encode_snapshot(&codec, None, &a, PlayerRef(1), 1, &mut full_a);
    let mut full_b = Vec::new();
    enc.encode_snapshot(&codec, None, &b, PlayerRef(1), 1, &mut full_b);
    let mut delta = Vec::new();
    enc.encode_snapshot(&codec, Some(&a), &b, PlayerRef(1), 1, &mut delta);
    println!(
        "shooter, 200 entities: full snapshot {} B, delta {} B",
        full_b.len(),
        delta.len()
    );
    group.bench_function("shooter_apply_full/200", |bench| {
        let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(1));
        bench.iter(|| {
            client
                .apply(black_box(&full_b))
                .map(|a| a.created.len())
                .ok()
        });
    });
    group.bench_function("shooter_apply_delta/200", |bench| {
        let mut base = ClientState::new(Arc::clone(&codec), PlayerRef(1));
        base.apply(&full_a).expect("full");
        bench.iter_batched_ref(
            || {
                let mut c = ClientState::new(Arc::clone(&codec), PlayerRef(1));
                c.apply(&full_a).expect("full");
                c
            },
            |client| {
                client
                    .apply(black_box(&delta))
                    .map(|a| a.changed.len())
                    .ok()
            },
            criterion::BatchSize::SmallInput,
        );
    });

    // Arena: the generic path against protocol 1's hand-written encoder.
    // The built-in game's own schema, with the server's default lobby cap (64 seats).
    let arena = Codec::new(schema_of::<Arena>().expect("arena's schema"), 64).expect("codec");
    let (p0, p1) = (arena_players(0.0), arena_players(1.0));
    let mut s0 = State::new(&arena);
    arena_state(&arena, &mut s0, 108_000, &p0);
    let mut s1 = State::new(&arena);
    arena_state(&arena, &mut s1, 108_001, &p1);
    let (mut q0, mut q1) = (Vec::new(), Vec::new());
    protocol1(&p0, &mut q0);
    protocol1(&p1, &mut q1);
    let sizes = {
        let (mut gf, mut gd, mut pf, mut pd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        enc.encode_shared(&arena, None, &s1, &mut gf);
        enc.encode_shared(&arena, Some(&s0), &s1, &mut gd);
        encode_snapshot_body(108_001, 0, &q1, &mut pf);
        encode_delta_body(108_001, 108_000, &q0, &q1, &mut pd);
        [gf.len(), gd.len(), pf.len(), pd.len()]
    };
    println!(
        "arena, 10 players: shared body full {} B, delta {} B (protocol 1, no score: {} B, {} B)",
        sizes[0], sizes[1], sizes[2], sizes[3]
    );
    group.bench_function("arena10_full", |bench| {
        bench.iter(|| {
            out.clear();
            black_box(enc.encode_shared(&arena, None, black_box(&s1), &mut out))
        });
    });
    group.bench_function("arena10_full_p1", |bench| {
        bench.iter(|| {
            out.clear();
            encode_snapshot_body(black_box(108_001), 0, black_box(&q1), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("arena10_delta", |bench| {
        bench.iter(|| {
            out.clear();
            black_box(enc.encode_shared(&arena, Some(black_box(&s0)), black_box(&s1), &mut out))
        });
    });
    group.bench_function("arena10_delta_p1", |bench| {
        bench.iter(|| {
            out.clear();
            black_box(encode_delta_body(
                black_box(108_001),
                108_000,
                black_box(&q0),
                black_box(&q1),
                &mut out,
            ))
        });
    });
    let mut scratch = State::new(&arena);
    group.bench_function("arena10_build_full", |bench| {
        bench.iter(|| {
            arena_state(&arena, &mut scratch, 108_001, black_box(&p1));
            out.clear();
            black_box(enc.encode_shared(&arena, None, &scratch, &mut out))
        });
    });
    let mut q = Vec::new();
    group.bench_function("arena10_build_full_p1", |bench| {
        bench.iter(|| {
            protocol1(black_box(&p1), &mut q);
            out.clear();
            encode_snapshot_body(108_001, 0, &q, &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("arena10_build_delta", |bench| {
        bench.iter(|| {
            arena_state(&arena, &mut scratch, 108_001, black_box(&p1));
            out.clear();
            black_box(enc.encode_shared(&arena, Some(&s0), &scratch, &mut out))
        });
    });
    group.bench_function("arena10_build_delta_p1", |bench| {
        bench.iter(|| {
            protocol1(black_box(&p1), &mut q);
            out.clear();
            black_box(encode_delta_body(108_001, 108_000, &q0, &q, &mut out))
        });
    });
    group.finish();
}

criterion_group!(benches, state);
criterion_main!(benches);

/// Protocol 1's position quantization (u16 over the arena's 0..=1000), as its encoder did.
fn position_q(v: f32) -> u16 {
    ((v / 1000.0).clamp(0.0, 1.0) * 65535.0).round() as u16
}

/// Protocol 1's velocity quantization (i8 over ±200).
fn velocity_q(v: f32) -> i8 {
    ((v / 200.0).clamp(-1.0, 1.0) * 127.0).round() as i8
}
