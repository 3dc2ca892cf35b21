//! Property tests of game state (protocol 2): random worlds evolve tick by tick and every
//! seat's client holds exactly what it may see; no byte string makes a decoder panic,
//! and a refused snapshot leaves the client as it was.

use std::sync::Arc;

use proptest::prelude::*;
use ticksync_protocol::schema::{Field, FieldType, Schema, TypeDef};
use ticksync_protocol::state::io::{decode_event, decode_input, decode_message};
use ticksync_protocol::state::{
    Button, ClientState, Codec, Encoder, PlayerRef, Row, State, Value, Visibility,
};

const SEATS: u16 = 5;

fn owner(name: &str, ty: FieldType) -> Field {
    Field {
        owner_only: true,
        ..Field::new(name, ty)
    }
}

fn codec() -> Arc<Codec> {
    let f = Field::new;
    let schema = Schema::builder("props")
        .entity_fields(
            "a",
            vec![
                f("b", FieldType::Bool),
                f("i", FieldType::Int { min: -5, max: 1000 }),
                f(
                    "x",
                    FieldType::F32 {
                        min: -10.0,
                        max: 10.0,
                        precision: 0.1,
                    },
                ),
                owner(
                    "v",
                    FieldType::Vec2 {
                        min_x: 0.0,
                        max_x: 100.0,
                        min_y: -50.0,
                        max_y: 50.0,
                        precision: 0.25,
                    },
                ),
                f("s", FieldType::Str { max_len: 6 }),
                owner("o", FieldType::Str { max_len: 3 }),
            ],
        )
        .entity_fields(
            "b",
            vec![
                f("ang", FieldType::Angle { bits: 7 }),
                f(
                    "e",
                    FieldType::Enum {
                        variants: vec!["p".into(), "q".into(), "r".into()],
                    },
                ),
                f("who", FieldType::Player),
                f("n", FieldType::VarUint { max: 5000 }),
            ],
        )
        .lobby_fields(vec![
            f("t", FieldType::Int { min: 0, max: 9 }),
            f("m", FieldType::Str { max_len: 4 }),
        ])
        .private_fields(vec![f("c", FieldType::Int { min: 0, max: 3 })])
        .input_fields(vec![
            f("fire", FieldType::Button),
            f(
                "d",
                FieldType::F32 {
                    min: 0.0,
                    max: 1.0,
                    precision: 0.01,
                },
            ),
        ])
        .message_types(vec![TypeDef {
            name: "say".into(),
            fields: vec![f("txt", FieldType::Str { max_len: 10 })],
        }])
        .event_types(vec![TypeDef {
            name: "boom".into(),
            fields: vec![f("at", FieldType::Player)],
        }])
        .build()
        .expect("valid");
    Arc::new(Codec::new(schema, SEATS).expect("codec"))
}

/// One entity of a random world.
#[derive(Debug, Clone)]
struct Ent {
    id: u32,
    kind: u16,
    ctrl: u16,
    vis: Visibility,
    values: Vec<Value>,
}

fn visibility() -> impl Strategy<Value = Visibility> {
    prop_oneof![
        4 => Just(Visibility::Everyone),
        1 => (1..=SEATS).prop_map(|s| Visibility::Only(PlayerRef(s))),
        1 => any::<u8>().prop_map(|m| Visibility::Seats(u64::from(m & 0x1f))),
        1 => Just(Visibility::Nobody),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![Just('a'), Just('z'), Just('é')], 0..=max)
        .prop_map(|c| c.into_iter().collect())
}

fn values(kind: u16) -> BoxedStrategy<Vec<Value>> {
    if kind == 0 {
        (
            any::<bool>(),
            -10i64..1010,
            -12.0f32..12.0,
            (-5.0f32..105.0, -60.0f32..60.0),
            text(7),
            text(4),
        )
            .prop_map(|(b, i, x, (vx, vy), s, o)| {
                vec![
                    Value::Bool(b),
                    Value::Int(i),
                    Value::F32(x),
                    Value::Vec2([vx, vy]),
                    Value::Str(s),
                    Value::Str(o),
                ]
            })
            .boxed()
    } else {
        // n: small most of the time, sometimes past its max (written as 5000).
        let n = prop_oneof![3 => -2i64..9, 1 => 0i64..70_000];
        (-10.0f32..10.0, 0u32..4, 0u16..=7, n)
            .prop_map(|(a, e, w, n)| {
                vec![
                    Value::Angle(a),
                    Value::Enum(e),
                    Value::Player(w),
                    Value::Int(n),
                ]
            })
            .boxed()
    }
}

fn entity() -> impl Strategy<Value = Ent> {
    (1u32..40, 0u16..2, 0u16..=SEATS, visibility()).prop_flat_map(|(id, kind, ctrl, vis)| {
        values(kind).prop_map(move |values| Ent {
            id,
            kind,
            ctrl,
            vis,
            values,
        })
    })
}

/// A tick: its entities (by id; the later of duplicates wins) and the lobby's values.
fn world() -> impl Strategy<Value = (Vec<Ent>, i64, String, Vec<i64>)> {
    (
        proptest::collection::vec(entity(), 0..12),
        0i64..12,
        text(5),
        proptest::collection::vec(0i64..=3, SEATS as usize),
    )
}

fn build(codec: &Codec, s: &mut State, tick: u32, w: &(Vec<Ent>, i64, String, Vec<i64>)) {
    let (ents, t, m, private) = w;
    s.begin(codec, tick);
    s.set_lobby_values(codec, &[Value::Int(*t), Value::Str(m.clone())]);
    for (i, c) in private.iter().enumerate() {
        s.set_private_values(codec, PlayerRef(i as u16 + 1), &[Value::Int(*c)])
            .expect("seat");
    }
    let mut seen = std::collections::BTreeMap::new();
    for e in ents {
        seen.insert(e.id, e.clone());
    }
    for e in seen.values() {
        s.push_entity_values(codec, e.kind, e.id, PlayerRef(e.ctrl), e.vis, &e.values)
            .expect("kind");
    }
    s.finish(codec).expect("unique ids");
}

/// What seat `seat` must hold: the entities it sees, `owner_only` fields zero unless it
/// controls the entity.
fn check(codec: &Codec, s: &State, client: &ClientState, seat: u16) -> Result<(), TestCaseError> {
    let mut want_ids = Vec::new();
    for e in s.entities() {
        if !e.visibility.sees(PlayerRef(seat)) {
            continue;
        }
        want_ids.push(e.id);
        let row = codec.kind_row(e.kind).expect("kind");
        let zero = Row::zero(row).values(row);
        let mut want = s.entity_values(codec, e.id).expect("entity");
        for (k, f) in row.fields().iter().enumerate() {
            if f.owner_only && e.controlled_by != PlayerRef(seat) {
                want[k] = zero[k].clone();
            }
        }
        let got: Vec<Value> = client
            .entity_values(e.id)
            .expect("client has it")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        prop_assert_eq!(&got, &want, "entity {} seat {}", e.id, seat);
        let ce = client.entity(e.id).expect("entity");
        prop_assert_eq!(ce.kind, e.kind);
        prop_assert_eq!(ce.controlled_by, e.controlled_by);
    }
    let got_ids: Vec<u32> = client.entities().map(|e| e.id).collect();
    prop_assert_eq!(got_ids, want_ids);
    Ok(())
}

/// The angle quantization as documented (`PROTOCOL.md`), with libm's floor and round.
fn angle_reference(v: f32, bits: u32) -> u32 {
    if !v.is_finite() {
        return 0;
    }
    let turns = f64::from(v) / std::f64::consts::TAU;
    let frac = turns - turns.floor();
    ((frac * (1u64 << bits) as f64).round() as u64 % (1u64 << bits)) as u32
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn angles_quantize_as_documented(v in any::<f32>(), bits in 1u32..=32) {
        prop_assert_eq!(ticksync_protocol::state::quantize_angle(v, bits), angle_reference(v, bits));
    }

    #[test]
    fn small_angles_quantize_as_documented(v in -100.0f32..100.0, bits in 1u32..=32) {
        prop_assert_eq!(ticksync_protocol::state::quantize_angle(v, bits), angle_reference(v, bits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_seat_holds_what_it_may_see(worlds in proptest::collection::vec(world(), 1..8)) {
        let codec = codec();
        let mut enc = Encoder::new();
        let mut states: Vec<State> = Vec::new();
        for (t, w) in worlds.iter().enumerate() {
            let mut s = State::new(&codec);
            build(&codec, &mut s, t as u32 + 1, w);
            states.push(s);
        }
        for seat in 1..=SEATS {
            let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(seat));
            for (t, s) in states.iter().enumerate() {
                let from = t.checked_sub(1).map(|p| &states[p]);
                let mut msg = Vec::new();
                enc.encode_snapshot(&codec, from, s, PlayerRef(seat), t as u32, &mut msg);
                let applied = client.apply(&msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(applied.full, t == 0);
                check(&codec, s, &client, seat)?;
                let lobby = client.lobby_values();
                prop_assert_eq!(&lobby, &codec.lobby_row().values(
                    &{
                        let mut r = Row::default();
                        r.set_values(codec.lobby_row(), &[Value::Int(worlds[t].1), Value::Str(worlds[t].2.clone())]);
                        r
                    }.words,
                    &{
                        let mut r = Row::default();
                        r.set_values(codec.lobby_row(), &[Value::Int(worlds[t].1), Value::Str(worlds[t].2.clone())]);
                        r
                    }.text,
                ));
                prop_assert_eq!(client.private_values(), vec![Value::Int(worlds[t].3[seat as usize - 1])]);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let codec = codec();
        let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(1));
        let _ = client.apply(&bytes);
        let mut tagged = bytes.clone();
        tagged.insert(0, ticksync_protocol::state::SNAPSHOT_TAG);
        let _ = client.apply(&tagged);
        for tag in [9u8, 10, 13] {
            let mut b = bytes.clone();
            b.insert(0, tag);
            let _ = decode_input(&codec, &b);
            let _ = decode_message(&codec, &b);
            let _ = decode_event(&codec, &b);
        }
        let _ = Schema::decode(&bytes);
    }

    #[test]
    fn damaged_snapshots_never_panic_and_change_nothing(
        a in world(),
        b in world(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let codec = codec();
        let (mut sa, mut sb) = (State::new(&codec), State::new(&codec));
        build(&codec, &mut sa, 1, &a);
        build(&codec, &mut sb, 2, &b);
        let mut enc = Encoder::new();
        let mut client = ClientState::new(Arc::clone(&codec), PlayerRef(2));
        let mut full = Vec::new();
        enc.encode_snapshot(&codec, None, &sa, PlayerRef(2), 0, &mut full);
        client.apply(&full).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let before: Vec<_> = client.entities().cloned().collect();
        let mut delta = Vec::new();
        enc.encode_snapshot(&codec, Some(&sa), &sb, PlayerRef(2), 0, &mut delta);
        let mut bad = delta.clone();
        for (at, x) in flips {
            let n = bad.len();
            bad[at % n] ^= x | 1;
        }
        bad.truncate(1 + cut % bad.len());
        if client.apply(&bad).is_err() {
            let after: Vec<_> = client.entities().cloned().collect();
            prop_assert_eq!(before, after);
            prop_assert_eq!(client.tick(), Some(1));
        }
    }

    #[test]
    fn buttons_count_every_press(presses in proptest::collection::vec(0u8..4, 1..30)) {
        // Each step: a client presses (and releases) some times, then sends an input;
        // the server may apply only some inputs; presses_since still counts them all
        // as long as fewer than 16 go by between two applied inputs.
        let mut b = Button::default();
        let mut applied = Button::default();
        let mut total = 0u32;
        let mut counted = 0u32;
        for (i, n) in presses.iter().enumerate() {
            for _ in 0..*n {
                b.press();
                b.release();
            }
            total += u32::from(*n);
            if i % 3 == 2 || i + 1 == presses.len() {
                counted += u32::from(b.presses_since(applied));
                applied = b;
            }
        }
        prop_assert_eq!(counted, total);
    }
}
