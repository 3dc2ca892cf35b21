//! Golden vectors of game state (protocol 2), shared with the JavaScript decoder: a test
//! schema using every field type (`VarUint` included) (its bytes and hash), a full snapshot and a delta for
//! one seat, an input, a message and an event, each with its decoded values; and arena
//! snapshots, the worked examples of `PROTOCOL.md`. The file is checked in; this test
//! fails when the encoding changes without the file being regenerated
//! (`UPDATE_GOLDEN=1 cargo test -p ticksync-protocol --test state_golden`).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value as Json, json};
use ticksync_protocol::schema::{Field, FieldType, Schema, TypeDef};
use ticksync_protocol::state::io::{
    decode_event, decode_input, decode_message, encode_event_values, encode_input_values,
    encode_message_values,
};
use ticksync_protocol::state::{
    Applied, Button, ClientState, Codec, Encoder, PlayerRef, State, Value, Visibility,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

const MAX_PLAYERS: u16 = 8;
const ME: PlayerRef = PlayerRef(2);

fn test_schema() -> Schema {
    let f = Field::new;
    let owner = |name: &str, ty| Field {
        owner_only: true,
        ..Field::new(name, ty)
    };
    Schema::builder("every_type")
        .entity_fields(
            "unit",
            vec![
                f("alive", FieldType::Bool),
                f("health", FieldType::Int { min: 0, max: 100 }),
                f("level", FieldType::Int { min: -8, max: 7 }),
                f(
                    "throttle",
                    FieldType::F32 {
                        min: -1.0,
                        max: 1.0,
                        precision: 0.01,
                    },
                ),
                f(
                    "pos",
                    FieldType::Vec2 {
                        min_x: 0.0,
                        max_x: 1000.0,
                        min_y: 0.0,
                        max_y: 600.0,
                        precision: 0.05,
                    },
                ),
                f("aim", FieldType::Angle { bits: 10 }),
                f(
                    "team",
                    FieldType::Enum {
                        variants: vec!["red".into(), "blue".into(), "green".into()],
                    },
                ),
                f("name", FieldType::Str { max_len: 12 }),
                f("target", FieldType::Player),
                owner("ammo", FieldType::Int { min: 0, max: 30 }),
                f("kills", FieldType::VarUint { max: 999 }),
            ],
        )
        .entity_fields(
            "marker",
            vec![f(
                "at",
                FieldType::Vec2 {
                    min_x: 0.0,
                    max_x: 1000.0,
                    min_y: 0.0,
                    max_y: 600.0,
                    precision: 1.0,
                },
            )],
        )
        .lobby_fields(vec![
            f(
                "phase",
                FieldType::Enum {
                    variants: vec!["warmup".into(), "play".into(), "over".into()],
                },
            ),
            f("time_left", FieldType::Int { min: 0, max: 600 }),
        ])
        .private_fields(vec![
            f("coins", FieldType::Int { min: 0, max: 255 }),
            f("hand", FieldType::Str { max_len: 8 }),
        ])
        .input_fields(vec![
            f(
                "steer",
                FieldType::Vec2 {
                    min_x: -1.0,
                    max_x: 1.0,
                    min_y: -1.0,
                    max_y: 1.0,
                    precision: 0.01,
                },
            ),
            f("aim", FieldType::Angle { bits: 12 }),
            f("fire", FieldType::Button),
        ])
        .message_types(vec![
            TypeDef {
                name: "chat".into(),
                fields: vec![f("text", FieldType::Str { max_len: 32 })],
            },
            TypeDef {
                name: "ready".into(),
                fields: vec![],
            },
        ])
        .event_types(vec![TypeDef {
            name: "hit".into(),
            fields: vec![
                f("by", FieldType::Player),
                f("damage", FieldType::Int { min: 0, max: 100 }),
            ],
        }])
        .build()
        .expect("valid")
}

#[allow(clippy::too_many_arguments)]
fn unit(
    alive: bool,
    health: i64,
    level: i64,
    throttle: f32,
    pos: [f32; 2],
    aim: f32,
    team: u32,
    name: &str,
    target: u16,
    ammo: i64,
    kills: i64,
) -> Vec<Value> {
    vec![
        Value::Bool(alive),
        Value::Int(health),
        Value::Int(level),
        Value::F32(throttle),
        Value::Vec2(pos),
        Value::Angle(aim),
        Value::Enum(team),
        Value::Str(name.into()),
        Value::Player(target),
        Value::Int(ammo),
        Value::Int(kills),
    ]
}

fn test_states(codec: &Codec) -> (State, State) {
    let mut a = State::new(codec);
    a.begin(codec, 1000);
    a.set_lobby_values(codec, &[Value::Enum(1), Value::Int(90)]);
    a.set_private_values(codec, ME, &[Value::Int(12), Value::Str("AK".into())])
        .expect("seat");
    a.set_private_values(
        codec,
        PlayerRef(3),
        &[Value::Int(99), Value::Str("QQ".into())],
    )
    .expect("seat");
    let e = Visibility::Everyone;
    a.push_entity_values(
        codec,
        0,
        1,
        ME,
        e,
        &unit(true, 100, -3, 0.5, [250.0, 300.0], 1.0, 1, "ada", 3, 30, 5),
    )
    .expect("kind");
    a.push_entity_values(
        codec,
        0,
        2,
        PlayerRef(3),
        e,
        &unit(true, 80, 7, -1.0, [900.5, 12.25], 3.5, 0, "bob", 2, 11, 70),
    )
    .expect("kind");
    a.push_entity_values(
        codec,
        1,
        7,
        PlayerRef::NONE,
        e,
        &[Value::Vec2([500.0, 300.0])],
    )
    .expect("kind");
    // Seen by seat 2 only (fog of war): in seat 2's own part.
    a.push_entity_values(
        codec,
        1,
        9,
        PlayerRef::NONE,
        Visibility::Only(ME),
        &[Value::Vec2([10.0, 20.0])],
    )
    .expect("kind");
    // Seen by seat 3 only: never in seat 2's bytes.
    a.push_entity_values(
        codec,
        1,
        10,
        PlayerRef::NONE,
        Visibility::Only(PlayerRef(3)),
        &[Value::Vec2([30.0, 40.0])],
    )
    .expect("kind");
    a.finish(codec).expect("finish");

    let mut b = State::new(codec);
    b.begin(codec, 1001);
    b.set_lobby_values(codec, &[Value::Enum(1), Value::Int(89)]);
    b.set_private_values(codec, ME, &[Value::Int(13), Value::Str("AK".into())])
        .expect("seat");
    b.set_private_values(
        codec,
        PlayerRef(3),
        &[Value::Int(99), Value::Str("QQ".into())],
    )
    .expect("seat");
    b.push_entity_values(
        codec,
        0,
        1,
        ME,
        e,
        &unit(true, 100, -3, 0.5, [251.0, 300.0], 1.0, 1, "ada", 3, 29, 9),
    )
    .expect("kind");
    // Entity 2 is gone; marker 7 stays; 9 moves; 12 is new.
    b.push_entity_values(
        codec,
        1,
        7,
        PlayerRef::NONE,
        e,
        &[Value::Vec2([500.0, 300.0])],
    )
    .expect("kind");
    b.push_entity_values(
        codec,
        1,
        9,
        PlayerRef::NONE,
        Visibility::Only(ME),
        &[Value::Vec2([11.0, 20.0])],
    )
    .expect("kind");
    b.push_entity_values(
        codec,
        0,
        12,
        PlayerRef(4),
        e,
        // Kills above the max: written as 999.
        &unit(false, 0, 0, 0.0, [0.0, 600.0], 6.0, 2, "Émile", 0, 5, 1000),
    )
    .expect("kind");
    b.finish(codec).expect("finish");
    (a, b)
}

fn client_json(client: &ClientState, applied: &Applied<'_>) -> Json {
    let codec = client.codec();
    let names = |fields: &[Field], values: Vec<Value>| {
        let mut m = serde_json::Map::new();
        for (f, v) in fields.iter().zip(values) {
            m.insert(f.name.clone(), serde_json::to_value(v).expect("json"));
        }
        Json::Object(m)
    };
    let entities: Vec<Json> = client
        .entities()
        .map(|e| {
            let row = codec.kind_row(e.kind).expect("kind");
            json!({
                "id": e.id,
                "kind": row.name(),
                "controlled_by": e.controlled_by.0,
                "fields": names(row.fields(), e.row.values(row)),
            })
        })
        .collect();
    json!({
        "tick": applied.tick,
        "full": applied.full,
        "ack_seq": applied.ack_seq,
        "created": applied.created,
        "changed": applied.changed,
        "removed": applied.removed,
        "lobby": names(&codec.schema().lobby, client.lobby_values()),
        "private": names(&codec.schema().private, client.private_values()),
        "entities": entities,
    })
}

fn values_json(fields: &[Field], values: Vec<Value>) -> Json {
    let mut m = serde_json::Map::new();
    for (f, v) in fields.iter().zip(values) {
        m.insert(f.name.clone(), serde_json::to_value(v).expect("json"));
    }
    Json::Object(m)
}

fn arena_schema() -> Schema {
    Schema::builder("arena")
        .entity_fields(
            "player",
            vec![
                Field::new(
                    "pos",
                    FieldType::Vec2 {
                        min_x: 0.0,
                        max_x: 1000.0,
                        min_y: 0.0,
                        max_y: 1000.0,
                        precision: 0.0153,
                    },
                ),
                Field::new(
                    "vel",
                    FieldType::Vec2 {
                        min_x: -200.0,
                        max_x: 200.0,
                        min_y: -200.0,
                        max_y: 200.0,
                        precision: 1.575,
                    },
                ),
                Field::new("it", FieldType::Bool),
                // As the built-in game's `#[state(varint)] score: u16`.
                Field::new("score", FieldType::VarUint { max: 65535 }),
            ],
        )
        .build()
        .expect("valid")
}

fn arena_state(codec: &Codec, tick: u32, players: &[([f32; 2], [f32; 2], bool, i64)]) -> State {
    let mut s = State::new(codec);
    s.begin(codec, tick);
    for (i, (pos, vel, it, score)) in players.iter().enumerate() {
        s.push_entity_values(
            codec,
            0,
            i as u32 + 1,
            PlayerRef(i as u16 + 1),
            Visibility::Everyone,
            &[
                Value::Vec2(*pos),
                Value::Vec2(*vel),
                Value::Bool(*it),
                Value::Int(*score),
            ],
        )
        .expect("kind");
    }
    s.finish(codec).expect("finish");
    s
}

fn vectors() -> Json {
    let schema = test_schema();
    let codec = Arc::new(Codec::new(schema.clone(), MAX_PLAYERS).expect("codec"));
    let (a, b) = test_states(&codec);
    let mut enc = Encoder::new();
    let mut full = Vec::new();
    enc.encode_snapshot(&codec, None, &a, ME, 41, &mut full);
    let mut delta = Vec::new();
    enc.encode_snapshot(&codec, Some(&a), &b, ME, 42, &mut delta);
    let mut client = ClientState::new(Arc::clone(&codec), ME);
    let applied_full = take(client.apply(&full).expect("full"));
    let full_state = snapshot_json(&client, applied_full);
    let applied_delta = take(client.apply(&delta).expect("delta"));
    let delta_state = snapshot_json(&client, applied_delta);

    let mut fire = Button::default();
    fire.press();
    fire.release();
    fire.press();
    let input_values = vec![
        Value::Vec2([0.6, -0.8]),
        Value::Angle(4.0),
        Value::Button(fire),
    ];
    let mut input = Vec::new();
    encode_input_values(&codec, 77, 1000, &input_values, &mut input);
    let decoded = decode_input(&codec, &input).expect("input");
    let mut message = Vec::new();
    assert!(encode_message_values(
        &codec,
        0,
        &[Value::Str("gg, Émile".into())],
        &mut message
    ));
    let dm = decode_message(&codec, &message).expect("message");
    let mut event = Vec::new();
    assert!(encode_event_values(
        &codec,
        1001,
        0,
        &[Value::Player(3), Value::Int(25)],
        &mut event
    ));
    let de = decode_event(&codec, &event).expect("event");

    // Arena's entity as the built-in game declares it (pos, vel, it, a VarUint score; the
    // built-in schema also names its kind `Player` and has an input): two players, then one
    // of them moves.
    let arena = Arc::new(Codec::new(arena_schema(), 16).expect("codec"));
    let a0 = arena_state(
        &arena,
        99,
        &[
            ([500.0, 1000.0], [200.0, -200.0], true, 3),
            ([0.0, 4.5777], [0.0, 100.787], false, 12),
        ],
    );
    let a1 = arena_state(
        &arena,
        100,
        &[
            ([493.3318, 1000.0], [200.0, -200.0], true, 3),
            ([0.0, 4.5777], [0.0, 100.787], false, 12),
        ],
    );
    let mut arena_full = Vec::new();
    enc.encode_snapshot(&arena, None, &a0, PlayerRef(1), 1234, &mut arena_full);
    let mut arena_delta = Vec::new();
    enc.encode_snapshot(&arena, Some(&a0), &a1, PlayerRef(1), 1235, &mut arena_delta);
    let mut ac = ClientState::new(Arc::clone(&arena), PlayerRef(1));
    let t = take(ac.apply(&arena_full).expect("full"));
    let arena_full_state = snapshot_json(&ac, t);
    let t = take(ac.apply(&arena_delta).expect("delta"));
    let arena_delta_state = snapshot_json(&ac, t);

    json!({
        "about": "ticksync game-state golden vectors (protocol 2, PROTOCOL.md \"Game frames\"). Generated by protocol/tests/state_golden.rs; regenerate with UPDATE_GOLDEN=1 cargo test -p ticksync-protocol --test state_golden. f32 values are the decoded f32s printed as f64: compare with Math.fround.",
        "every_type": {
            "max_players": MAX_PLAYERS,
            "seat": ME.0,
            "schema": serde_json::to_value(&schema).expect("json"),
            "schema_hex": hex(&schema.encode()),
            "schema_hash": format!("{:016x}", schema.hash()),
            "full": { "hex": hex(&full), "state": full_state },
            "delta": { "hex": hex(&delta), "state": delta_state },
            "input": {
                "hex": hex(&input),
                "seq": decoded.seq,
                "client_tick": decoded.client_tick,
                "values": values_json(&schema.input, decoded.row.values(codec.input_row())),
            },
            "message": {
                "hex": hex(&message),
                "type": schema.messages[dm.index].name,
                "values": values_json(&schema.messages[dm.index].fields, dm.row.values(codec.message_row(dm.index).expect("row"))),
            },
            "event": {
                "hex": hex(&event),
                "tick": de.tick,
                "type": schema.events[de.index].name,
                "values": values_json(&schema.events[de.index].fields, de.row.values(codec.event_row(de.index).expect("row"))),
            },
        },
        "arena": {
            "max_players": 16,
            "seat": 1,
            "schema": serde_json::to_value(arena.schema()).expect("json"),
            "schema_hex": hex(&arena.schema().encode()),
            "schema_hash": format!("{:016x}", arena.schema().hash()),
            "full": { "hex": hex(&arena_full), "state": arena_full_state },
            "delta": { "hex": hex(&arena_delta), "state": arena_delta_state },
        },
    })
}

type Taken = (u32, bool, u32, Vec<u32>, Vec<u32>, Vec<u32>);

fn take(a: Applied<'_>) -> Taken {
    (
        a.tick,
        a.full,
        a.ack_seq,
        a.created.to_vec(),
        a.changed.to_vec(),
        a.removed.to_vec(),
    )
}

fn snapshot_json(client: &ClientState, t: Taken) -> Json {
    let (tick, full, ack_seq, created, changed, removed) = t;
    client_json(
        client,
        &Applied {
            tick,
            full,
            ack_seq,
            created: &created,
            changed: &changed,
            removed: &removed,
        },
    )
}

#[test]
fn golden_state_vectors_are_current() {
    let fresh = serde_json::to_string_pretty(&vectors()).expect("json") + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/state_vectors.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() || !path.exists() {
        std::fs::write(&path, &fresh).expect("write golden file");
        return;
    }
    let current = std::fs::read_to_string(&path).expect("read golden file");
    assert!(
        current == fresh,
        "protocol/golden/state_vectors.json is stale: the game-state encoding changed. Check \
         PROTOCOL.md, then run UPDATE_GOLDEN=1 cargo test -p ticksync-protocol --test \
         state_golden"
    );
}

#[test]
fn golden_bytes_decode_to_the_golden_values() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/state_vectors.json");
    let file: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    for set in ["every_type", "arena"] {
        let v = &file[set];
        let schema =
            Schema::decode(&unhex(v["schema_hex"].as_str().expect("hex"))).expect("schema");
        assert_eq!(format!("{:016x}", schema.hash()), v["schema_hash"]);
        let max = v["max_players"].as_u64().expect("cap") as u16;
        let seat = PlayerRef(v["seat"].as_u64().expect("seat") as u16);
        let codec = Arc::new(Codec::new(schema, max).expect("codec"));
        let mut client = ClientState::new(Arc::clone(&codec), seat);
        for step in ["full", "delta"] {
            let bytes = unhex(v[step]["hex"].as_str().expect("hex"));
            let t = take(client.apply(&bytes).expect("applies"));
            assert_eq!(snapshot_json(&client, t), v[step]["state"], "{set} {step}");
        }
    }
    // Seat 2 never receives entity 10 (seat 3's) nor seat 3's private row.
    let full = &file["every_type"]["full"]["state"];
    let ids: Vec<u64> = full["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [1, 2, 7, 9]);
    assert_eq!(full["private"]["coins"]["value"], 12);
    // Unit 2 is seat 3's: its ammo is owner_only and reads as 0 for seat 2.
    assert_eq!(full["entities"][1]["fields"]["ammo"]["value"], 0);
    assert_eq!(full["entities"][0]["fields"]["ammo"]["value"], 30);
    // kills is a VarUint (tag 9): 5 and 70 in full, 9 after the delta, 1000 clamped.
    assert_eq!(full["entities"][0]["fields"]["kills"]["value"], 5);
    assert_eq!(full["entities"][1]["fields"]["kills"]["value"], 70);
    let delta = &file["every_type"]["delta"]["state"];
    let kills: Vec<&Json> = delta["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter(|e| e["kind"] == "unit")
        .map(|e| &e["fields"]["kills"]["value"])
        .collect();
    assert_eq!(kills, [&json!(9), &json!(999)]);
}
