//! Game state (protocol 2) through its public API: derives, snapshots and deltas from
//! the server's `State` to a `ClientState`, visibility (checked on the bytes), inputs,
//! messages and events, and arena's figures against the protocol-1 encoder.

use std::sync::Arc;

use glam::Vec2;
use ticksync_protocol::codec::{encode_delta_body, encode_snapshot_body};
use ticksync_protocol::schema::{FieldType, Fields, Messages as _, Schema};
use ticksync_protocol::state::io::{
    self, IoError, decode_event, decode_input, decode_message, encode_event, encode_input,
    encode_message,
};
use ticksync_protocol::state::{
    Button, ClientState, Codec, Encoder, PlayerRef, State, StateDecodeError, Value, View,
    Visibility, snapshot_ack, snapshot_head_len, split_snapshot, write_snapshot,
};
use ticksync_protocol::{EntityState, Messages, State as DeriveState, StateEnum};

#[derive(StateEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Team {
    Red,
    Blue,
}

#[derive(DeriveState, Debug, Clone, PartialEq)]
#[state(name = "unit")]
struct Unit {
    alive: bool,
    #[state(range = 0..=100)]
    health: u8,
    level: i16,
    #[state(range = -1.0..=1.0, precision = 0.01)]
    throttle: f32,
    #[state(x = 0.0..=1000.0, y = 0.0..=600.0, precision = 0.05)]
    pos: Vec2,
    #[state(angle_bits = 10)]
    aim: f32,
    team: Team,
    #[state(max_len = 16)]
    name: String,
    owner: PlayerRef,
    #[state(owner_only, range = 0..=30)]
    ammo: u8,
    #[state(varint, max = 999)]
    kills: u16,
}

#[derive(DeriveState, Debug, Clone, PartialEq)]
#[state(name = "flag")]
struct Flag {
    #[state(range = 0.0..=1000.0, precision = 0.5)]
    at: Vec2,
    carrier: PlayerRef,
}

#[derive(DeriveState, Debug, Clone, PartialEq, Default)]
struct Lobby {
    #[state(range = 0..=600)]
    time_left: u16,
    #[state(max_len = 24)]
    map: String,
}

#[derive(DeriveState, Debug, Clone, PartialEq, Default)]
struct Private {
    #[state(range = 0..=99)]
    coins: u8,
    #[state(max_len = 8)]
    hand: String,
}

#[derive(DeriveState, Debug, Clone, Copy, PartialEq, Default)]
struct Input {
    #[state(range = -1.0..=1.0, precision = 0.01)]
    steer: Vec2,
    #[state(angle_bits = 12)]
    aim: f32,
    fire: Button,
}

#[derive(Messages, Debug, Clone, PartialEq)]
enum Msg {
    Chat {
        #[state(max_len = 64)]
        text: String,
    },
    Ready,
    Buy {
        #[state(range = 0..=15)]
        item: u8,
    },
}

#[derive(Messages, Debug, Clone, PartialEq)]
enum Event {
    Hit {
        target: PlayerRef,
        #[state(range = 0..=100)]
        damage: u8,
    },
    RoundOver {
        winner: Team,
    },
    Score {
        #[state(varint, max = 999)]
        points: u16,
        #[state(varint)]
        total: u32,
    },
}

fn codec() -> Arc<Codec> {
    let schema = Schema::builder("test")
        .entity::<Unit>()
        .entity::<Flag>()
        .lobby::<Lobby>()
        .private::<Private>()
        .input::<Input>()
        .messages::<Msg>()
        .events::<Event>()
        .build()
        .expect("valid schema");
    Arc::new(Codec::new(schema, 8).expect("compiles"))
}

fn unit(i: u32) -> Unit {
    Unit {
        alive: i % 2 == 0,
        health: (i * 7 % 101) as u8,
        level: -(i as i16) * 100,
        throttle: (i as f32 * 0.13).sin(),
        pos: Vec2::new(i as f32 * 37.0 % 1000.0, i as f32 * 11.0 % 600.0),
        aim: i as f32 * 0.7,
        team: if i % 3 == 0 { Team::Red } else { Team::Blue },
        name: format!("unit-{i}"),
        owner: PlayerRef((i % 4) as u16),
        ammo: (i % 31) as u8,
        kills: (i * i % 1000) as u16,
    }
}

/// The world of one tick: units 1..=n (unit i controlled by seat i % 4), a flag, the
/// lobby and private rows; `hidden` adds unit 100, visible to seat 2 only.
fn build(codec: &Codec, state: &mut State, tick: u32, units: &[Unit], hidden: bool) {
    let kind = codec.kind::<Unit>().expect("kind");
    let flag = codec.kind::<Flag>().expect("kind");
    state.begin(codec, tick);
    state.set_lobby(
        codec,
        &Lobby {
            time_left: 600 - (tick as u16 % 600),
            map: "dust".into(),
        },
    );
    for seat in 1..=4 {
        state
            .set_private(
                codec,
                PlayerRef(seat),
                &Private {
                    coins: seat as u8 * 10,
                    hand: format!("h{seat}"),
                },
            )
            .expect("seat");
    }
    for (i, u) in units.iter().enumerate() {
        let id = i as u32 + 1;
        state.push_entity(codec, kind, id, u.owner, Visibility::Everyone, u);
    }
    state.push_entity(
        codec,
        flag,
        500,
        PlayerRef::NONE,
        Visibility::Everyone,
        &Flag {
            at: Vec2::new(500.0, 250.0),
            carrier: PlayerRef(2),
        },
    );
    if hidden {
        state.push_entity(
            codec,
            kind,
            100,
            PlayerRef(2),
            Visibility::Only(PlayerRef(2)),
            &Unit {
                name: "SECRET".into(),
                ..unit(100)
            },
        );
    }
    state.finish(codec).expect("finish");
}

fn snapshot(codec: &Codec, from: Option<&State>, to: &State, seat: u16, ack: u32) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new().encode_snapshot(codec, from, to, PlayerRef(seat), ack, &mut out);
    out
}

/// What a client in `seat` must hold of `state`'s entity `id`.
fn expected(codec: &Codec, state: &State, id: u32, seat: u16) -> Option<Unit> {
    let e = state.entities().iter().find(|e| e.id == id)?;
    if !e.visibility.sees(PlayerRef(seat)) {
        return None;
    }
    let mut u: Unit = state.entity(codec, id)?;
    if e.controlled_by != PlayerRef(seat) {
        u.ammo = 0;
    }
    Some(u)
}

fn assert_client_matches(codec: &Codec, state: &State, client: &ClientState, seat: u16) {
    let kind = codec.kind::<Unit>().expect("kind").index();
    for e in state.entities() {
        if e.kind != kind {
            continue;
        }
        let want = expected(codec, state, e.id, seat);
        let got = client.entity_as::<Unit>(e.id);
        // Fields of an entity not visible to the seat are absent.
        assert_eq!(got, want, "entity {} for seat {seat}", e.id);
    }
    let visible = state
        .entities()
        .iter()
        .filter(|e| e.visibility.sees(PlayerRef(seat)))
        .count();
    assert_eq!(client.entities().count(), visible);
    assert_eq!(client.lobby::<Lobby>().map, "dust");
    assert_eq!(
        client.private::<Private>(),
        Private {
            coins: seat as u8 * 10,
            hand: format!("h{seat}"),
        }
    );
}

#[test]
fn full_then_deltas_reach_the_client_exactly() {
    let codec = codec();
    let start: Vec<Unit> = (1..=6).map(unit).collect();
    let mut prev = State::new(&codec);
    build(&codec, &mut prev, 10, &start, true);
    for seat in [1u16, 2, 3] {
        let mut units = start.clone();
        let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(seat));
        let bytes = snapshot(&codec, None, &prev, seat, 7);
        assert_eq!(snapshot_ack(&bytes), Some(7));
        let applied = client.apply(&bytes).expect("full applies");
        assert!(applied.full);
        assert_eq!(applied.ack_seq, 7);
        assert_client_matches(&codec, &prev, &client, seat);

        let mut from = prev.clone();
        let mut next = State::new(&codec);
        for tick in 11..20u32 {
            // Move some, damage one, rename one, kill the last, add one.
            for (i, u) in units.iter_mut().enumerate() {
                if (i as u32 + tick) % 3 == 0 {
                    u.pos.x = (u.pos.x + 5.5) % 1000.0;
                    u.ammo = (u.ammo + 1) % 31;
                }
            }
            units[0].health = (tick % 100) as u8;
            units[1].name = format!("n{tick}");
            if tick == 15 {
                units.pop();
            }
            if tick == 17 {
                units.push(unit(40));
            }
            build(&codec, &mut next, tick, &units, tick < 16);
            let bytes = snapshot(&codec, Some(&from), &next, seat, tick);
            let applied = client.apply(&bytes).expect("delta applies");
            assert!(!applied.full);
            assert_eq!(applied.tick, tick);
            if tick == 16 && seat == 2 {
                assert!(applied.removed.contains(&100), "{applied:?}");
            }
            if tick == 17 {
                assert_eq!(applied.created, &[6], "{applied:?}");
            }
            assert_client_matches(&codec, &next, &client, seat);
            std::mem::swap(&mut from, &mut next);
        }
    }
}

#[test]
fn a_delta_equals_the_full_snapshot_of_its_tick() {
    let codec = codec();
    let units: Vec<Unit> = (1..=5).map(unit).collect();
    let mut a = State::new(&codec);
    build(&codec, &mut a, 1, &units, true);
    let mut moved = units.clone();
    moved[2].pos.y = 333.0;
    moved[4].team = Team::Red;
    let mut b = State::new(&codec);
    build(&codec, &mut b, 2, &moved, true);
    let mut by_delta = ClientState::new(Arc::clone(&codec), PlayerRef(2));
    by_delta
        .apply(&snapshot(&codec, None, &a, 2, 0))
        .expect("full");
    by_delta
        .apply(&snapshot(&codec, Some(&a), &b, 2, 0))
        .expect("delta");
    let mut by_full = ClientState::new(Arc::clone(&codec), PlayerRef(2));
    by_full
        .apply(&snapshot(&codec, None, &b, 2, 0))
        .expect("full");
    let ids: Vec<u32> = by_full.entities().map(|e| e.id).collect();
    assert_eq!(ids, by_delta.entities().map(|e| e.id).collect::<Vec<_>>());
    for id in ids {
        assert_eq!(
            by_full.entity_values(id),
            by_delta.entity_values(id),
            "{id}"
        );
    }
}

#[test]
fn errors_leave_the_client_unchanged() {
    let codec = codec();
    let units: Vec<Unit> = (1..=3).map(unit).collect();
    let mut a = State::new(&codec);
    build(&codec, &mut a, 5, &units, false);
    let mut b = State::new(&codec);
    build(&codec, &mut b, 6, &units, false);
    let mut c = State::new(&codec);
    build(&codec, &mut c, 7, &units, false);
    let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(1));
    // A delta before any full snapshot.
    assert!(matches!(
        client.apply(&snapshot(&codec, Some(&a), &b, 1, 0)),
        Err(StateDecodeError::BaselineMismatch {
            baseline: 5,
            held: None
        })
    ));
    client
        .apply(&snapshot(&codec, None, &a, 1, 0))
        .expect("full");
    // A delta against tick 6 while the client holds 5.
    assert!(matches!(
        client.apply(&snapshot(&codec, Some(&b), &c, 1, 0)),
        Err(StateDecodeError::BaselineMismatch {
            baseline: 6,
            held: Some(5)
        })
    ));
    let good = snapshot(&codec, Some(&a), &b, 1, 0);
    for cut in 1..good.len() {
        assert!(client.apply(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = good.clone();
    long.push(1);
    assert_eq!(
        client.apply(&long).err(),
        Some(StateDecodeError::TrailingBytes)
    );
    assert_eq!(client.tick(), Some(5));
    client.apply(&good).expect("still applies");
    assert_eq!(client.tick(), Some(6));
}

#[test]
fn hidden_entities_and_owner_fields_never_reach_other_players_bytes() {
    let codec = codec();
    let units: Vec<Unit> = (1..=4).map(unit).collect();
    let mut with = State::new(&codec);
    build(&codec, &mut with, 3, &units, true);
    let mut without = State::new(&codec);
    build(&codec, &mut without, 3, &units, false);
    let mut enc = Encoder::new();
    let part = |enc: &mut Encoder, s: &State, seat: u16| {
        let mut out = Vec::new();
        enc.encode_player(&codec, None, s, PlayerRef(seat), &mut out);
        out
    };
    let shared = |enc: &mut Encoder, s: &State| {
        let mut out = Vec::new();
        enc.encode_shared(&codec, None, s, &mut out);
        out
    };
    // The hidden unit (seat 2 only) changes neither the shared body nor seat 1's part.
    assert_eq!(shared(&mut enc, &with), shared(&mut enc, &without));
    assert_eq!(part(&mut enc, &with, 1), part(&mut enc, &without, 1));
    assert_eq!(part(&mut enc, &with, 3), part(&mut enc, &without, 3));
    assert_ne!(part(&mut enc, &with, 2), part(&mut enc, &without, 2));

    // Ammo is owner_only: changing unit 1's ammo (seat 1 controls it) changes only
    // seat 1's part.
    let mut more = units.clone();
    more[0].ammo = 29;
    let mut ammo = State::new(&codec);
    build(&codec, &mut ammo, 3, &more, false);
    assert_eq!(shared(&mut enc, &ammo), shared(&mut enc, &without));
    assert_eq!(part(&mut enc, &ammo, 2), part(&mut enc, &without, 2));
    assert_ne!(part(&mut enc, &ammo, 1), part(&mut enc, &without, 1));
    let mut c1 = ClientState::new(Arc::clone(&codec), PlayerRef(1));
    c1.apply(&snapshot(&codec, None, &ammo, 1, 0))
        .expect("full");
    assert_eq!(c1.entity_as::<Unit>(1).map(|u| u.ammo), Some(29));
    let mut c2 = ClientState::new(Arc::clone(&codec), PlayerRef(2));
    c2.apply(&snapshot(&codec, None, &ammo, 2, 0))
        .expect("full");
    assert_eq!(c2.entity_as::<Unit>(1).map(|u| u.ammo), Some(0));
    assert!(c2.entity(100).is_none());

    // An entity that becomes visible to everyone moves from seat 2's part to the
    // shared body; seat 2's client keeps it throughout.
    let kind = codec.kind::<Unit>().expect("kind");
    let mut c2 = ClientState::new(Arc::clone(&codec), PlayerRef(2));
    c2.apply(&snapshot(&codec, None, &with, 2, 0))
        .expect("full");
    let mut public = State::new(&codec);
    build(&codec, &mut public, 4, &units, false);
    public.push_entity(
        &codec,
        kind,
        100,
        PlayerRef(2),
        Visibility::Everyone,
        &unit(100),
    );
    public.finish(&codec).expect("finish");
    let applied = c2
        .apply(&snapshot(&codec, Some(&with), &public, 2, 0))
        .expect("delta");
    assert!(applied.changed.contains(&100), "{applied:?}");
    assert!(!applied.removed.contains(&100) && !applied.created.contains(&100));
    assert_eq!(
        c2.entity_as::<Unit>(100),
        public.entity::<Unit>(&codec, 100)
    );
    assert_eq!(
        c2.entity_as::<Unit>(100).map(|u| u.name),
        Some("unit-100".into())
    );
}

#[test]
fn values_are_quantized_within_their_steps() {
    let codec = codec();
    let u = unit(3);
    let mut s = State::new(&codec);
    build(&codec, &mut s, 1, std::slice::from_ref(&u), false);
    let q: Unit = s.entity(&codec, 1).expect("entity");
    assert_eq!(
        (q.alive, q.health, q.level, q.team),
        (u.alive, u.health, u.level, u.team)
    );
    assert_eq!(
        (q.name.as_str(), q.owner, q.ammo, q.kills),
        (u.name.as_str(), u.owner, u.ammo, u.kills)
    );
    assert!((q.throttle - u.throttle).abs() <= 0.005 + 1e-6);
    assert!((q.pos - u.pos).abs().max_element() <= 0.025 + 1e-4);
    let turn = std::f32::consts::TAU;
    let d = (q.aim - u.aim.rem_euclid(turn)).abs();
    assert!(
        d.min(turn - d) <= turn / 2048.0 + 1e-5,
        "{} {}",
        q.aim,
        u.aim
    );
    // Out of range and non-finite values clamp when written.
    let wild = Unit {
        health: 250,
        throttle: f32::NAN,
        pos: Vec2::new(f32::INFINITY, -5.0),
        aim: f32::NEG_INFINITY,
        name: "a name much longer than sixteen".into(),
        owner: PlayerRef(99),
        kills: 5000,
        ..u
    };
    build(&codec, &mut s, 2, &[wild], false);
    let q: Unit = s.entity(&codec, 1).expect("entity");
    assert_eq!((q.health, q.throttle, q.aim), (100, 0.0, 0.0));
    assert_eq!(q.pos, Vec2::new(1000.0, 0.0));
    assert_eq!(q.name, "a name much long");
    assert_eq!(q.owner, PlayerRef::NONE);
    assert_eq!(q.kills, 999);
}

/// The bytes of a `Score` event (type 2) at tick 0 with `points` and `total`.
fn score_event(codec: &Codec, points: u16, total: u32) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(encode_event(
        codec,
        0,
        &Event::Score { points, total },
        &mut out
    ));
    out
}

#[test]
fn var_uint_fields_take_var4_groups_and_clamp() {
    let codec = codec();
    let row = codec.event_row(2).expect("row");
    assert_eq!(row.fields()[0].ty, FieldType::VarUint { max: 999 });
    // `varint` alone: the Rust type's largest value.
    assert_eq!(row.fields()[1].ty, FieldType::VarUint { max: u32::MAX });
    // 1 tag + 4 tick + 1 type, then the two fields: 4 bits each for 0..=7, 8 for 8..=63,
    // 12 for 64..=511, 16 for 512..=999 (and above: clamped to 999), 44 for u32::MAX.
    for (points, total, bits) in [
        (0, 0, 8),
        (7, 7, 8),
        (8, 63, 16),
        (64, 511, 24),
        (999, 0, 20),
        (5000, u32::MAX, 16 + 44),
    ] {
        let bytes = score_event(&codec, points, total);
        assert_eq!(
            bytes.len(),
            6 + (bits as usize).div_ceil(8),
            "{points} {total}"
        );
        let d = decode_event(&codec, &bytes).expect("decodes");
        assert_eq!(d.clamped, 0);
        assert_eq!(
            d.get::<Event>(row),
            Some(Event::Score {
                points: points.min(999),
                total
            })
        );
        assert_eq!(
            d.row.values(row),
            [
                Value::Int(i64::from(points.min(999))),
                Value::Int(i64::from(total))
            ]
        );
    }
    // 5 and 0: the groups 0101 and 0000, low bits first.
    assert_eq!(&score_event(&codec, 5, 0)[6..], [0x05]);
    // 1000 (above max) as sent by someone else: groups 000+, 101+, 111+, 001, read as 999
    // and counted; the total 0.
    let head = [io::EVENT_TAG, 0, 0, 0, 0, 2];
    let d = decode_event(&codec, &[&head[..], &[0xd8, 0x1f, 0x00]].concat()).expect("decodes");
    assert_eq!(d.clamped, 1);
    assert_eq!(
        d.get::<Event>(row),
        Some(Event::Score {
            points: 999,
            total: 0
        })
    );
    // A var4 longer than 32 bits needs: 12 groups, or 11 whose value is over u32::MAX.
    // (The points' one group, 0, is the low nibble of the first byte.)
    let twelve = [&head[..], &[0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]].concat();
    assert!(matches!(
        decode_event(&codec, &twelve),
        Err(IoError::Wire(_))
    ));
    let over = [&head[..], &[0xf0, 0xff, 0xff, 0xff, 0xff, 0x7f]].concat();
    assert!(matches!(decode_event(&codec, &over), Err(IoError::Wire(_))));
    let most = [&head[..], &[0xf0, 0xff, 0xff, 0xff, 0xff, 0x3f]].concat();
    assert_eq!(
        decode_event(&codec, &most)
            .expect("u32::MAX")
            .get::<Event>(row),
        Some(Event::Score {
            points: 0,
            total: u32::MAX
        })
    );
    // Truncated inside a var4.
    assert!(decode_event(&codec, &[&head[..], &[0x08]].concat()).is_err());
    // Behind a type alias the derive cannot see the type (with `u16` and `i16` these are
    // compile errors): start-up errors, a max above the Rust type's, a signed varint.
    type Small = u16;
    type Level = i16;
    #[derive(DeriveState)]
    struct Wide {
        #[state(varint, max = 70000)]
        small: Small,
    }
    #[derive(DeriveState)]
    struct Signed {
        #[state(varint)]
        level: Level,
    }
    let e = Wide::fields().expect_err("too wide").to_string();
    assert!(
        e.contains("Wide.small") && e.contains("above the type's 65535"),
        "{e}"
    );
    let e = Signed::fields().expect_err("signed").to_string();
    assert!(e.contains("unsigned integers"), "{e}");
}

#[test]
fn inputs_messages_and_events_roundtrip_and_validate() {
    let codec = codec();
    let mut fire = Button::default();
    fire.press();
    fire.release();
    fire.press();
    let input = Input {
        steer: Vec2::new(0.5, -1.0),
        aim: 1.0,
        fire,
    };
    let mut bytes = Vec::new();
    encode_input(&codec, 41, 1000, &input, &mut bytes);
    assert_eq!(bytes[0], io::INPUT_TAG);
    let d = decode_input(&codec, &bytes).expect("decodes");
    assert_eq!((d.seq, d.client_tick, d.clamped), (41, 1000, 0));
    let got: Input = d.row.get(codec.input_row());
    // 200 steps needed over -1..=1: 8 bits, 254 steps of 0.00787, 0 and the ends exact.
    assert!((got.steer - Vec2::new(0.5, -1.0)).abs().max_element() <= 0.004);
    assert_eq!(got.steer.y, -1.0);
    assert_eq!(got.fire, fire);
    assert_eq!(got.fire.presses_since(Button::default()), 2);
    assert!(got.fire.held);

    // Presses wrap mod 16 and are still counted.
    let mut b = Button {
        held: false,
        presses: 15,
    };
    let before = b;
    b.press();
    b.release();
    b.press();
    assert_eq!(b.presses_since(before), 2);

    for m in [
        Msg::Chat {
            text: "gg wp".into(),
        },
        Msg::Ready,
        Msg::Buy { item: 9 },
    ] {
        let mut out = Vec::new();
        assert!(encode_message(&codec, &m, &mut out));
        let d = decode_message(&codec, &out).expect("decodes");
        assert_eq!(
            d.get::<Msg>(codec.message_row(d.index).expect("row")),
            Some(m)
        );
    }
    let mut out = Vec::new();
    assert!(encode_event(
        &codec,
        77,
        &Event::Hit {
            target: PlayerRef(3),
            damage: 40
        },
        &mut out
    ));
    let d = decode_event(&codec, &out).expect("decodes");
    assert_eq!(d.tick, 77);
    assert_eq!(
        d.get::<Event>(codec.event_row(d.index).expect("row")),
        Some(Event::Hit {
            target: PlayerRef(3),
            damage: 40
        })
    );

    // Unknown type, out-of-range values, truncation and trailing bytes.
    assert_eq!(
        decode_message(&codec, &[io::MESSAGE_TAG, 3]).err(),
        Some(IoError::UnknownType(3))
    );
    // Buy.item is 0..=15 in 4 bits: every value is valid. Hit.damage is 0..=100 in 7
    // bits: 127 clamps to 100; target 15 (4 bits, cap 8) becomes none.
    let d = decode_event(&codec, &[io::EVENT_TAG, 0, 0, 0, 0, 0, 0xff, 0x07]).expect("decodes");
    assert_eq!(d.clamped, 2);
    assert_eq!(
        d.get::<Event>(codec.event_row(0).expect("row")),
        Some(Event::Hit {
            target: PlayerRef::NONE,
            damage: 100
        })
    );
    assert!(decode_event(&codec, &[io::EVENT_TAG, 0, 0, 0, 0, 0, 0xff]).is_err());
    assert_eq!(
        decode_event(&codec, &[io::EVENT_TAG, 0, 0, 0, 0, 0, 0xff, 0x07, 0]).err(),
        Some(IoError::TrailingBytes)
    );
    // A chat message longer than its 64 bytes.
    let mut long = vec![io::MESSAGE_TAG, 0, 0x7f];
    long.extend([0x41; 70]);
    assert!(decode_message(&codec, &long).is_err());
    assert!(decode_input(&codec, &bytes[..bytes.len() - 1]).is_err());
    assert_eq!(
        decode_input(&codec, &[0; 300]).err(),
        Some(IoError::TooLarge(300))
    );
}

#[test]
fn derived_schema_is_what_the_attributes_say() {
    let fields = Unit::fields().expect("fields");
    assert_eq!(fields[1].ty, FieldType::Int { min: 0, max: 100 });
    assert_eq!(
        fields[2].ty,
        FieldType::Int {
            min: -32768,
            max: 32767
        }
    );
    assert_eq!(fields[5].ty, FieldType::Angle { bits: 10 });
    assert_eq!(
        fields[6].ty,
        FieldType::Enum {
            variants: vec!["Red".into(), "Blue".into()]
        }
    );
    assert!(fields[9].owner_only && !fields[0].owner_only);
    assert_eq!(Unit::NAME, "unit");
    assert_eq!(Lobby::NAME, "Lobby");
    let types = Msg::types().expect("types");
    assert_eq!(types[1].name, "Ready");
    assert!(types[1].fields.is_empty());
    // The schema survives its bytes, and its hash is of those bytes.
    let schema = codec().schema().clone();
    let bytes = schema.encode();
    assert_eq!(Schema::decode(&bytes).expect("decodes"), schema);
    assert_eq!(schema.hash(), ticksync_protocol::schema::fnv1a64(&bytes));
    // A kind whose declaration differs from the schema's is refused.
    let other = Codec::new(
        Schema::builder("other")
            .entity_fields("unit", vec![])
            .build()
            .expect("valid"),
        4,
    )
    .expect("codec");
    assert!(other.kind::<Unit>().is_err());
    // Start-up errors of a derived declaration: a range wider than the type.
    #[derive(DeriveState)]
    struct Bad {
        #[state(range = 0..=300)]
        small: u8,
    }
    let e = Schema::builder("g")
        .entity::<Bad>()
        .build()
        .expect_err("invalid")
        .to_string();
    assert!(
        e.contains("Bad.small") && e.contains("outside the type's 0..=255"),
        "{e}"
    );
}

#[test]
fn dynamic_values_match_typed_values() {
    let codec = codec();
    let mut s = State::new(&codec);
    build(&codec, &mut s, 1, &[unit(2)], false);
    let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(2));
    client
        .apply(&snapshot(&codec, None, &s, 2, 0))
        .expect("full");
    let values = client.entity_values(1).expect("entity");
    let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "alive", "health", "level", "throttle", "pos", "aim", "team", "name", "owner", "ammo",
            "kills"
        ]
    );
    assert_eq!(values[10].1, Value::Int(4), "unit 2's kills: 2 × 2");
    assert_eq!(values[0].1, Value::Bool(true));
    assert_eq!(values[1].1, Value::Int(14));
    assert_eq!(values[6].1, Value::Enum(1));
    assert_eq!(values[7].1, Value::Str("unit-2".into()));
    assert_eq!(values[8].1, Value::Player(2));
    assert_eq!(
        values[9].1,
        Value::Int(2),
        "seat 2 controls unit 1 and sees its ammo"
    );
    // The same state built from dynamic values encodes to the same bytes.
    let mut d = State::new(&codec);
    d.begin(&codec, 1);
    d.set_lobby_values(&codec, &client.lobby_values());
    for seat in 1..=4u16 {
        d.set_private_values(
            &codec,
            PlayerRef(seat),
            &[
                Value::Int(i64::from(seat) * 10),
                Value::Str(format!("h{seat}")),
            ],
        )
        .expect("seat");
    }
    let vals: Vec<Value> = values.into_iter().map(|(_, v)| v).collect();
    d.push_entity_values(&codec, 0, 1, PlayerRef(2), Visibility::Everyone, &vals)
        .expect("kind");
    let flag = client.entity_values(500).expect("flag");
    d.push_entity_values(
        &codec,
        1,
        500,
        PlayerRef::NONE,
        Visibility::Everyone,
        &flag.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    )
    .expect("kind");
    d.finish(&codec).expect("finish");
    assert_eq!(
        snapshot(&codec, None, &d, 2, 0),
        snapshot(&codec, None, &s, 2, 0)
    );
}

#[test]
fn changed_entities_use_the_smaller_of_bitmap_and_positions() {
    let codec = codec();
    let units: Vec<Unit> = (1..=200).map(unit).collect();
    let mut a = State::new(&codec);
    build(&codec, &mut a, 1, &units, false);
    let mut few = units.clone();
    few[10].health = 1;
    few[150].health = 2;
    let mut b = State::new(&codec);
    build(&codec, &mut b, 2, &few, false);
    let mut body = Vec::new();
    Encoder::new().encode_shared(&codec, Some(&a), &b, &mut body);
    // Positions: far below the 201-bit bitmap.
    assert!(body.len() < 20, "{} bytes", body.len());
    let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(1));
    client
        .apply(&snapshot(&codec, None, &a, 1, 0))
        .expect("full");
    let applied = client
        .apply(&snapshot(&codec, Some(&a), &b, 1, 0))
        .expect("delta");
    assert_eq!(applied.changed, &[11, 151]);
    assert_eq!(client.entity_as::<Unit>(151).map(|u| u.health), Some(2));
    // The same tick at rest: 4 bytes of tick, then a few bits.
    let mut rest = Vec::new();
    let mut c = State::new(&codec);
    build(&codec, &mut c, 2, &units, false);
    Encoder::new().encode_shared(&codec, Some(&a), &c, &mut rest);
    // 4 bytes of tick, the lobby's timer, and a few bits of empty lists.
    assert!(rest.len() <= 8, "{} bytes at rest", rest.len());
    let mut own = Vec::new();
    Encoder::new().encode_player(&codec, Some(&a), &c, PlayerRef(5), &mut own);
    assert!(own.is_empty(), "nothing of seat 5's own changed: {own:?}");
    let _ = View::Shared;
}

// ---- arena: the figures against the protocol-1 encoder ----

#[derive(DeriveState, Debug, Clone, Copy, PartialEq)]
#[state(name = "player")]
struct ArenaPlayer {
    #[state(range = 0.0..=1000.0, precision = 0.0153)]
    pos: Vec2,
    #[state(range = -200.0..=200.0, precision = 1.575)]
    vel: Vec2,
    it: bool,
    /// As the built-in arena's (server/src/games/arena.rs): var4, 4 bits for 0..=7.
    #[state(varint)]
    score: u16,
}

fn arena_codec() -> Codec {
    let schema = Schema::builder("arena")
        .entity::<ArenaPlayer>()
        .build()
        .expect("valid");
    Codec::new(schema, 16).expect("codec")
}

fn arena_players(t: f32) -> Vec<ArenaPlayer> {
    (0..10)
        .map(|i| {
            let a = i as f32;
            ArenaPlayer {
                pos: Vec2::new(100.0 + a * 80.0 + t * 6.6, 500.0 - a * 30.0 + t * 3.3),
                vel: Vec2::new(198.0, 99.0),
                it: i == 0,
                // Scores are small most of the time: 0 to 7 here.
                score: (i * 3 % 8) as u16,
            }
        })
        .collect()
}

fn arena_state(codec: &Codec, s: &mut State, tick: u32, players: &[ArenaPlayer]) {
    let kind = codec.kind::<ArenaPlayer>().expect("kind");
    s.begin(codec, tick);
    for (i, p) in players.iter().enumerate() {
        let seat = PlayerRef(i as u16 + 1);
        s.push_entity(codec, kind, i as u32 + 1, seat, Visibility::Everyone, p);
    }
    s.finish(codec).expect("finish");
}

/// Protocol 1's quantization: positions as u16 over 0..=1000, velocities as i8 over ±200.
mod quantize {
    pub(super) fn position(v: f32, extent: f32) -> u16 {
        ((v / extent).clamp(0.0, 1.0) * 65535.0).round() as u16
    }
    pub(super) fn position_value(q: u16, extent: f32) -> f32 {
        f32::from(q) / 65535.0 * extent
    }
    pub(super) fn velocity(v: f32, max: f32) -> i8 {
        ((v / max).clamp(-1.0, 1.0) * 127.0).round() as i8
    }
    pub(super) fn velocity_value(q: i8, max: f32) -> f32 {
        f32::from(q) / 127.0 * max
    }
}

fn protocol1(players: &[ArenaPlayer]) -> Vec<EntityState> {
    players
        .iter()
        .enumerate()
        .map(|(i, p)| EntityState {
            id: i as u8,
            flags: u8::from(p.it),
            x: quantize::position(p.pos.x, 1000.0),
            y: quantize::position(p.pos.y, 1000.0),
            vx: quantize::velocity(p.vel.x, 200.0),
            vy: quantize::velocity(p.vel.y, 200.0),
        })
        .collect()
}

#[test]
fn arena_costs_no_more_than_protocol_1() {
    let codec = arena_codec();
    // An hour in: ticks and acks take 3-byte varints in protocol 1.
    let tick = 108_000;
    let ack = 107_990;
    let (p0, p1) = (arena_players(0.0), arena_players(1.0));
    let mut a = State::new(&codec);
    arena_state(&codec, &mut a, tick, &p0);
    let mut b = State::new(&codec);
    arena_state(&codec, &mut b, tick + 1, &p1);

    let mut enc = Encoder::new();
    let full = {
        let mut out = Vec::new();
        enc.encode_snapshot(&codec, None, &a, PlayerRef(3), ack, &mut out);
        out
    };
    let delta = {
        let mut out = Vec::new();
        enc.encode_snapshot(&codec, Some(&a), &b, PlayerRef(3), ack + 1, &mut out);
        out
    };
    let mut own = Vec::new();
    enc.encode_player(&codec, Some(&a), &b, PlayerRef(3), &mut own);
    assert!(own.is_empty(), "arena has nothing per player");

    // Protocol 1: head (tag + ack varint: 5 bytes above 65535) + body.
    assert!(ack > 65_535);
    let head_len = 1 + 5;
    let mut old_full = Vec::new();
    encode_snapshot_body(tick, 0, &protocol1(&p0), &mut old_full);
    let mut old_delta = Vec::new();
    assert!(encode_delta_body(
        tick + 1,
        tick,
        &protocol1(&p0),
        &protocol1(&p1),
        &mut old_delta
    ));
    let (old_full, old_delta) = (head_len + old_full.len(), head_len + old_delta.len());
    println!(
        "arena, 10 moving players: full {} B (protocol 1: {old_full} B), delta {} B \
         (protocol 1: {old_delta} B); per player at 30 Hz: {:.2} KB/s full, {:.2} KB/s delta \
         (protocol 1: {:.2} / {:.2})",
        full.len(),
        delta.len(),
        full.len() as f64 * 30.0 / 1000.0,
        delta.len() as f64 * 30.0 / 1000.0,
        old_full as f64 * 30.0 / 1000.0,
        old_delta as f64 * 30.0 / 1000.0,
    );
    assert!(full.len() <= old_full, "full {} > {old_full}", full.len());
    assert!(
        delta.len() <= old_delta,
        "delta {} > {old_delta}",
        delta.len()
    );
    // The figures, pinned: tag 1 + ack 3 (LEB128) + own length 1, then the body. The
    // scores take 4 bits each in full (a fixed u16 would take 16: 104 B full), and an
    // unchanged score costs a delta one mask bit.
    assert_eq!(full.len(), 89);
    assert_eq!(delta.len(), 57);

    // And the client holds what protocol 1 would have sent, to the step.
    let mut client = ClientState::new(Arc::new(codec.clone()), PlayerRef(3));
    client.apply(&full).expect("full");
    client.apply(&delta).expect("delta");
    for (i, (p, q)) in p1.iter().zip(protocol1(&p1)).enumerate() {
        let got = client
            .entity_as::<ArenaPlayer>(i as u32 + 1)
            .expect("entity");
        assert_eq!((got.it, got.score), (p.it, p.score));
        let x = quantize::position_value(q.x, 1000.0);
        assert!((got.pos.x - x).abs() < 1e-3, "{} vs {x}", got.pos.x);
        let vx = quantize::velocity_value(q.vx, 200.0);
        assert!((got.vel.x - vx).abs() < 1e-3, "{} vs {vx}", got.vel.x);
    }
}

#[test]
fn snapshot_layout_puts_ack_and_own_part_first() {
    let mut out = Vec::new();
    write_snapshot(0x0102_0304, &[0xaa; 130], &[0xbb, 0xcc], &mut out);
    assert_eq!(
        &out[..5],
        &[64, 0x84, 0x86, 0x88, 0x08],
        "the ack as LEB128"
    );
    assert_eq!(&out[5..7], &[0x82, 0x01], "130 as LEB128");
    assert_eq!(out.len(), 7 + 130 + 2);
    assert_eq!(snapshot_head_len(0x0102_0304, 130), 7);
    assert_eq!(snapshot_ack(&out), Some(0x0102_0304));
    let parts = split_snapshot(&out).expect("a snapshot");
    assert_eq!((parts.own.len(), parts.shared), (130, &[0xbb, 0xcc][..]));
    // An own part past the end; not a snapshot; the smallest and largest acks.
    assert_eq!(snapshot_ack(&[64, 1]), None);
    assert_eq!(snapshot_ack(&[64, 1, 1]), None);
    assert_eq!(snapshot_ack(&[65, 1, 0]), None);
    for ack in [0, 127, 128, 16_383, 16_384, u32::MAX] {
        let mut out = Vec::new();
        write_snapshot(ack, &[], &[1], &mut out);
        assert_eq!(out.len(), snapshot_head_len(ack, 0) + 1, "{ack}");
        assert_eq!(snapshot_ack(&out), Some(ack));
    }
    // Six bytes of ack, or one above u32::MAX, are refused.
    assert_eq!(
        snapshot_ack(&[64, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0]),
        None
    );
    assert_eq!(snapshot_ack(&[64, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]), None);
}
