//! `PROTOCOL.md` states what the protocol crate defines: the message headings and tag
//! ranges, the error code, left reason, close code and limit tables, the reconnect rule's
//! close codes, the join code alphabet and the protocol version. A constant changed on
//! one side only fails here.

use std::path::PathBuf;

use ticksync_protocol::{
    ClientMessage, ErrorCode, LeftReason, PROTOCOL_VERSION, ServerMessage, close, join_code, limits,
};

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../PROTOCOL.md");
    std::fs::read_to_string(path).expect("read PROTOCOL.md")
}

/// The text from the heading line `heading` to the next heading of the same or a higher
/// level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("PROTOCOL.md has no heading {heading:?}"))
        + 1;
    let body = &doc[start + heading.len()..];
    let end = body
        .match_indices("\n#")
        .find(|&(i, _)| {
            let hashes = body[i + 1..].chars().take_while(|&c| c == '#').count();
            hashes <= level && body[i + 1 + hashes..].starts_with(' ')
        })
        .map_or(body.len(), |(i, _)| i);
    &body[..end]
}

/// `text` with every run of white space (line breaks and indentation included) as one
/// space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The cells of every table row of `text` after the header and separator rows, trimmed,
/// with backticks removed.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

/// The table that follows the paragraph containing `intro` in `text`.
fn table_after<'a>(text: &'a str, intro: &str) -> &'a str {
    let at = text
        .find(intro)
        .unwrap_or_else(|| panic!("PROTOCOL.md lacks {intro:?}"));
    let rest = &text[at..];
    let start = rest.find("\n|").expect("a table follows") + 1;
    let table = &rest[start..];
    let end = table.find("\n\n").unwrap_or(table.len());
    &table[..end]
}

#[test]
fn message_headings_are_the_tags() {
    let doc = doc();
    let headings = |section_text: &str| -> Vec<(String, u8)> {
        section_text
            .lines()
            .filter_map(|l| l.strip_prefix("#### "))
            .map(|h| {
                let (name, tag) = h
                    .strip_suffix(')')
                    .and_then(|h| h.split_once(" (tag "))
                    .unwrap_or_else(|| panic!("heading {h:?} is not `Name (tag N)`"));
                (name.to_owned(), tag.parse().expect("a tag number"))
            })
            .collect()
    };
    let expect = |names: &[&str]| -> Vec<(String, u8)> {
        names
            .iter()
            .zip(0u8..)
            .map(|(n, t)| ((*n).to_owned(), t))
            .collect()
    };
    assert_eq!(
        headings(section(&doc, "### Client messages (client → server)")),
        expect(&ClientMessage::NAMES)
    );
    assert_eq!(
        headings(section(&doc, "### Server messages (server → client)")),
        expect(&ServerMessage::NAMES)
    );
}

#[test]
fn decoding_rules_give_the_tag_ranges() {
    let doc = doc();
    let rules = section(&doc, "### Decoding rules");
    let want = format!(
        "(client tags 0..={}, server tags 0..={}, `JoinTarget` tags 0..=1)",
        ClientMessage::NAMES.len() - 1,
        ServerMessage::NAMES.len() - 1
    );
    assert!(rules.contains(&want), "Decoding rules should say {want}");
}

#[test]
fn error_codes_left_reasons_and_close_codes_are_tabled() {
    let doc = doc();
    let errors = section(&doc, "## Errors and close codes");

    let table: Vec<(String, String)> = rows(table_after(errors, "`Error.code` values"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let want: Vec<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_u16().to_string(), c.name().to_owned()))
        .collect();
    assert_eq!(table, want, "the ErrorCode table");

    let table: Vec<(String, String)> = rows(table_after(errors, "`Left.reason` values"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let want: Vec<(String, String)> = LeftReason::ALL
        .iter()
        .map(|r| (r.as_u8().to_string(), r.name().to_owned()))
        .collect();
    assert_eq!(table, want, "the LeftReason table");

    let table: Vec<(String, String)> =
        rows(table_after(errors, "WebSocket close codes the server uses"))
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    let want: Vec<(String, String)> = close::ALL
        .iter()
        .map(|&(name, code)| (code.to_string(), name.to_owned()))
        .collect();
    assert_eq!(table, want, "the close code table");
}

#[test]
fn the_reconnect_rule_names_the_final_close_codes() {
    let doc = doc();
    let mut codes: Vec<String> = close::FINAL.iter().map(u16::to_string).collect();
    codes.sort();
    let last = codes.pop().expect("final codes");
    let want = format!("{} and {last}.", codes.join(", "));
    let resume = section(&doc, "### Resuming a session");
    assert!(
        flat(resume).contains(&want),
        "the resume section should list close::FINAL: {want}"
    );
}

#[test]
fn the_limits_table_is_the_limits() {
    let doc = doc();
    let table: Vec<(String, u64)> = rows(section(&doc, "## Limits"))
        .into_iter()
        .map(|r| {
            let value = r[1].replace(' ', "").parse().expect("a number");
            (r[0].clone(), value)
        })
        .collect();
    let want: Vec<(String, u64)> = limits::ALL
        .iter()
        .map(|&(name, value)| (name.to_owned(), value))
        .collect();
    assert_eq!(table, want);
}

#[test]
fn version_join_codes_and_pong_are_stated() {
    let doc = doc();
    assert!(doc.starts_with(&format!(
        "# ticksync wire protocol\n\nProtocol version **{PROTOCOL_VERSION}**"
    )));
    let codes = section(&doc, "### Join codes");
    assert!(codes.contains(&format!("`{}`", join_code::ALPHABET)));
    assert!(codes.contains(&format!("{} symbols", join_code::SYMBOLS)));
    let example = "K7QXM-2PDHR";
    assert!(codes.contains(example) && doc.matches(example).count() >= 3);
    assert_eq!(join_code::normalize(example).as_deref(), Some(example));
    // Pong.server_tick has one meaning, in the flow and in the message's table.
    let meaning = "the tick number the lobby's next snapshot will carry";
    assert!(flat(section(&doc, "## Handshake and lobby flow")).contains(meaning));
    let pong = ServerMessage::NAMES
        .iter()
        .position(|n| *n == "Pong")
        .expect("a Pong");
    assert!(flat(section(&doc, &format!("#### Pong (tag {pong})"))).contains(meaning));
}

#[test]
fn game_frames_are_stated_with_their_tags_field_types_and_golden_bytes() {
    use ticksync_protocol::codec::FIRST_FRAME_TAG;
    use ticksync_protocol::state::SNAPSHOT_TAG;
    use ticksync_protocol::state::io::{EVENT_TAG, INPUT_TAG, MESSAGE_TAG};

    let doc = doc();
    let frames = section(&doc, "## Game frames");
    let tags: Vec<(String, String)> = rows(table_after(frames, "`Joined`; game frames"))
        .into_iter()
        .map(|r| (r[0].clone(), r[2].clone()))
        .collect();
    assert_eq!(
        tags,
        [
            (SNAPSHOT_TAG.to_string(), "snapshot".to_owned()),
            (EVENT_TAG.to_string(), "event".to_owned()),
            (INPUT_TAG.to_string(), "input".to_owned()),
            (MESSAGE_TAG.to_string(), "game message".to_owned()),
        ]
    );
    assert!(flat(section(&doc, "## Transport")).contains(&format!(
        "tags from {FIRST_FRAME_TAG} (`codec::FIRST_FRAME_TAG`)"
    )));
    // The FieldType table: tag and name, in the enum's order.
    let names: Vec<(String, String)> = rows(table_after(
        section(&doc, "### The schema"),
        "`FieldType` is an enum",
    ))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let want = [
        "Bool", "Int", "F32", "Vec2", "Angle", "Enum", "Str", "Player", "Button", "VarUint",
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .enumerate()
        .map(|(i, n)| (i.to_string(), (*n).to_owned()))
        .collect();
    assert_eq!(names, want, "the FieldType table");
    // Every quoted game-frame example is the golden bytes.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/state_vectors.json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    for (name, value) in [
        ("arena_full", &golden["arena"]["full"]["hex"]),
        ("arena_delta", &golden["arena"]["delta"]["hex"]),
        ("every_type_input", &golden["every_type"]["input"]["hex"]),
        (
            "every_type_message",
            &golden["every_type"]["message"]["hex"],
        ),
        ("every_type_event", &golden["every_type"]["event"]["hex"]),
        ("every_type_full", &golden["every_type"]["full"]["hex"]),
        ("every_type_delta", &golden["every_type"]["delta"]["hex"]),
    ] {
        let hex = value.as_str().expect("hex");
        let quoted = format!("- `{name}` ({} bytes): `{hex}`", hex.len() / 2);
        assert!(
            frames.contains(&quoted),
            "PROTOCOL.md should quote {quoted}"
        );
    }
    let schema = golden["arena"]["schema_hex"].as_str().expect("hex");
    assert!(frames.contains(&format!("{} bytes, hash", schema.len() / 2)));
    // The arena's schema table: offsets in order, its bytes are the golden schema's.
    let mut offset = 0;
    let mut bytes = String::new();
    for row in rows(table_after(frames, "`arena.schema_hex`")) {
        assert_eq!(row[0], offset.to_string(), "offset of {}", row[2]);
        let hex = row[1].replace(' ', "");
        offset += hex.len() / 2;
        bytes += &hex;
    }
    assert_eq!(bytes, schema, "the arena schema table");
    let hash = golden["arena"]["schema_hash"].as_str().expect("hash");
    assert!(flat(frames).contains(&format!("hash `{hash}`")));
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn golden(file: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

/// What a decoder written from PROTOCOL.md alone (in Python) had to guess or got wrong,
/// now stated: how a schema hash is written as text, the `Joined` example's made-up hash,
/// `every_type`'s message types.
#[test]
fn what_an_independent_decoder_had_to_guess_is_stated() {
    use ticksync_protocol::schema::{FieldType, Schema, fnv1a64};
    use ticksync_protocol::state::Codec;
    use ticksync_protocol::state::io::encode_message_values;

    let doc = doc();
    let state = golden("state_vectors.json");
    // A hash written as text is the number in hex: the wire bytes reversed.
    let arena = Schema::decode(&unhex(state["arena"]["schema_hex"].as_str().expect("hex")))
        .expect("the arena schema");
    let hash = arena.hash();
    assert_eq!(state["arena"]["schema_hash"], format!("{hash:016x}"));
    let wire: Vec<String> = hash
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        flat(&doc).contains(&format!(
            "golden arena's hash `{hash:016x}` is the bytes `{}` in `Joined`",
            wire.join(" ")
        )),
        "PROTOCOL.md gives the arena hash's wire bytes"
    );
    // The Joined example's hash is made up, and the document says so, with the real one.
    let vectors = golden("vectors.json");
    let joined = vectors["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == "joined")
        .expect("the joined vector");
    let Ok(ServerMessage::Joined(j)) =
        ticksync_protocol::decode_server(&unhex(joined["hex"].as_str().expect("hex")))
    else {
        panic!("the joined vector decodes as Joined");
    };
    let real = fnv1a64(&j.schema);
    assert_ne!(u64::from_le_bytes(j.schema_hash), real);
    let joined_doc = flat(section(&doc, "#### Joined (tag 2)"));
    assert!(joined_doc.contains(&format!(
        "a made-up value (`0x{:016x}`), not the schema's hash (which is `{real:016x}`)",
        u64::from_le_bytes(j.schema_hash)
    )));
    // every_type's message types: chat { text: Str(32) } is 0, ready {} is 1 (`41 01`).
    let every = Schema::decode(&unhex(
        state["every_type"]["schema_hex"].as_str().expect("hex"),
    ))
    .expect("every_type's schema");
    let names: Vec<&str> = every.messages.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chat", "ready"]);
    assert_eq!(
        every.messages[0].fields[0].ty,
        FieldType::Str { max_len: 32 }
    );
    let codec = Codec::new(every, 8).expect("codec");
    let mut ready = Vec::new();
    assert!(encode_message_values(&codec, 1, &[], &mut ready));
    assert_eq!(ready, [0x41, 0x01]);
    let frames = flat(section(&doc, "### Game message (tag 65, client → server)"));
    assert!(frames.contains("`chat { text: Str(32) }` (index 0) and `ready {}` (index 1, no fields: the frame is the two bytes `41 01`)"));
}

/// The `every_type` walk-through's own parts and lengths are those of the golden bytes.
#[test]
fn the_every_type_walk_through_matches_the_golden_snapshots() {
    let doc = flat(&doc());
    let state = golden("state_vectors.json");
    for (which, shared_quote) in [
        ("full", "shared ({} bytes): tick 1000"),
        ("delta", "bits, {} bytes"),
    ] {
        let bytes = unhex(state["every_type"][which]["hex"].as_str().expect("hex"));
        let parts = ticksync_protocol::state::split_snapshot(&bytes).expect("a snapshot");
        let own_len = parts.own.len();
        let own: String = parts.own.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            doc.contains(&format!("own part length {own_len}"))
                && doc.contains(&format!("own part `{own}`")),
            "PROTOCOL.md walks through every_type.{which}'s own part `{own}`"
        );
        let shared = parts.shared.len();
        assert!(
            doc.contains(&shared_quote.replace("{}", &shared.to_string())),
            "every_type.{which}'s shared part is {shared} bytes"
        );
    }
}

/// "decoders refuse a padding bit that is set, and a byte after the padding": the golden
/// input (33 bits in 5 bytes) with a padding bit set, or a byte more, does not decode.
#[test]
fn a_set_padding_bit_or_a_byte_after_the_padding_is_refused() {
    use ticksync_protocol::schema::Schema;
    use ticksync_protocol::state::Codec;
    use ticksync_protocol::state::io::decode_input;

    let bits = flat(section(&doc(), "### Bit packing"));
    assert!(
        bits.contains("decoders refuse a padding bit that is set, and a byte after the padding")
    );
    let every = &golden("state_vectors.json")["every_type"];
    let schema =
        Schema::decode(&unhex(every["schema_hex"].as_str().expect("hex"))).expect("schema");
    let codec = Codec::new(schema, 8).expect("codec");
    let input = unhex(every["input"]["hex"].as_str().expect("hex"));
    assert!(decode_input(&codec, &input).is_ok());
    let mut padding_set = input.clone();
    *padding_set.last_mut().expect("a byte") |= 0x80;
    assert!(decode_input(&codec, &padding_set).is_err());
    let mut one_more = input;
    one_more.push(0);
    assert!(decode_input(&codec, &one_more).is_err());
}

/// The event example states the golden event's decoded values.
#[test]
fn the_event_example_gives_its_values() {
    let doc = flat(section(&doc(), "### Event (tag 65, server → client)"));
    let event = &golden("state_vectors.json")["every_type"]["event"];
    let by = &event["values"]["by"]["value"];
    let damage = &event["values"]["damage"]["value"];
    assert!(
        doc.contains(&format!(
            "tick {} (`e9 03 00 00`), type 0 (`{}`)",
            event["tick"],
            event["type"].as_str().expect("type")
        )),
        "the event's tick and type"
    );
    assert!(
        doc.contains(&format!("by {by} (4 bits"))
            && doc.contains(&format!("damage {damage} (7 bits)"))
    );
}
