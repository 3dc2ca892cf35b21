//! The session state machine under arbitrary scripts (valid messages in any order,
//! `Options` turning delta snapshots on and off, garbage bytes, text frames, pings, and
//! waits during which lobbies tick), driven over an in-memory pipe on a paused clock (so
//! that a script's seconds of play cost no wall time and every run is deterministic). It
//! checks what the client saw, decoded, against the protocol's promises
//! (`ticksync_server::testing::check`): nothing undecodable, only documented close codes,
//! snapshots only within a stay in a lobby with ticks moving forward and acks never going
//! back, and every delta applying to the snapshot just before it.
//! `fuzz/fuzz_targets/session.rs` runs the same harness under libFuzzer.

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use ticksync_protocol::state::{Codec, Value};
use ticksync_protocol::{ClientMessage, ServerMessage, close, encode_client};
use ticksync_server::Config;
use ticksync_server::testing::{
    Harness, Outcome, Received, Step, check, drive_steps, snapshot_heads,
};
use ticksync_tests::*;
use tokio_tungstenite::tungstenite::Message;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ann".to_owned()),
        Just(String::new()),
        "[a-z\u{1}]{0,30}"
    ]
}

fn hello_message() -> impl Strategy<Value = ClientMessage> {
    (
        prop_oneof![3 => Just(ticksync_protocol::PROTOCOL_VERSION), 1 => any::<u16>()],
        name(),
        proptest::option::weighted(0.2, any::<[u8; 16]>()),
    )
        .prop_map(|(v, n, t)| ClientMessage::Hello {
            protocol_version: v,
            name: n,
            resume_token: t,
        })
}

/// A request to enter a lobby (in a lobby: a protocol error).
fn lobby_request() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (name(), any::<u16>(), any::<bool>()).prop_map(|(n, m, p)| create_lobby(n, m, p)),
        (0u32..4).prop_map(join_id),
        "[A-Z2-9-]{0,12}".prop_map(join_code),
        Just(quick_join()),
    ]
}

/// Any control message but Hello.
fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        2 => Just(ClientMessage::ListLobbies),
        1 => lobby_request(),
        2 => Just(ClientMessage::LeaveLobby),
        2 => any::<u32>().prop_map(|t| ClientMessage::Ping { client_time: t }),
        4 => prop::bool::weighted(0.25).prop_map(|on| ClientMessage::Options { delta_snapshots: on }),
    ]
}

/// The arena's schema, for its inputs (no seat fields: any cap compiles them alike).
fn arena_codec() -> Codec {
    let schema = ticksync_server::game::schema_of::<ticksync_server::games::arena::Arena>()
        .expect("arena's schema");
    Codec::new(schema, 10).expect("compiles")
}

/// An arena input frame (any direction, non-finite ones too: the schema clamps).
fn input_frame(seq: u32, x: f32, y: f32) -> Step {
    let mut bytes = Vec::new();
    ticksync_protocol::state::io::encode_input_values(
        &arena_codec(),
        seq,
        seq,
        &[Value::Vec2([x, y])],
        &mut bytes,
    );
    Step::Send(Message::Binary(Bytes::from(bytes)))
}

/// An input: mostly small, growing-ish sequence numbers (so that acks move), sometimes
/// anything.
fn input_step() -> impl Strategy<Value = Step> {
    let seq = prop_oneof![4 => 1u32..64, 1 => any::<u32>()];
    let dir = prop_oneof![1 => any::<f32>(), 4 => -2.0f32..2.0];
    (seq, dir.clone(), dir).prop_map(|(seq, x, y)| input_frame(seq, x, y))
}

fn binary(message: &ClientMessage) -> Step {
    Step::Send(Message::Binary(Bytes::from(encode_client(message))))
}

/// One step, or a few that go together (leave, then enter another lobby).
fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop_oneof![
        12 => client_message().prop_map(|m| vec![binary(&m)]),
        48 => input_step().prop_map(|s| vec![s]),
        8 => lobby_request().prop_map(|m| vec![binary(&ClientMessage::LeaveLobby), binary(&m)]),
        4 => Just(vec![Step::Send(Message::Ping(Bytes::from_static(b"hi")))]),
        24 => (0u64..500).prop_map(|ms| vec![Step::Wait(Duration::from_millis(ms))]),
        // Protocol errors, which end the session: rare, so that most scripts play on.
        1 => hello_message().prop_map(|m| vec![binary(&m)]),
        1 => prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| vec![Step::Send(Message::Binary(Bytes::from(b)))]),
        // A game frame of garbage (an input or a game message that does not decode).
        1 => (64u8..66, prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(tag, mut b)| {
            b.insert(0, tag);
            vec![Step::Send(Message::Binary(Bytes::from(b)))]
        }),
        1 => "[ -~]{0,20}".prop_map(|t| vec![Step::Send(Message::text(t))]),
    ]
}

fn valid_hello() -> ClientMessage {
    ClientMessage::Hello {
        protocol_version: ticksync_protocol::PROTOCOL_VERSION,
        name: "ann".into(),
        resume_token: None,
    }
}

/// A script: usually a Hello first and often a lobby, then anything.
fn script() -> impl Strategy<Value = Vec<Step>> {
    let enter = prop_oneof![
        Just(quick_join()),
        (1u16..6, any::<bool>()).prop_map(|(m, p)| create_lobby("room", m, p)),
    ];
    (
        proptest::option::weighted(
            0.9,
            prop_oneof![4 => Just(valid_hello()), 1 => hello_message()],
        ),
        proptest::option::weighted(0.85, enter),
        prop::collection::vec(steps(), 0..32),
    )
        .prop_map(|(hello, enter, body)| {
            hello
                .iter()
                .chain(enter.iter())
                .map(binary)
                .chain(body.into_iter().flatten())
                .collect()
        })
}

fn config() -> Config {
    Config {
        hello_timeout: Duration::from_millis(500),
        empty_lobby_grace: Duration::from_millis(100),
        ..Config::default()
    }
}

/// Whether the client may see deltas: they are the default, unless the script asks for
/// full snapshots before its first lobby request and never for deltas again.
fn deltas_allowed(steps: &[Step]) -> bool {
    let mut entered = false;
    let mut full_first = false;
    for s in steps {
        let Step::Send(Message::Binary(b)) = s else {
            continue;
        };
        match ticksync_protocol::decode_client(b) {
            Ok(ClientMessage::Options {
                delta_snapshots: true,
            }) => return true,
            Ok(ClientMessage::Options {
                delta_snapshots: false,
            }) if !entered => full_first = true,
            Ok(
                ClientMessage::CreateLobby { .. }
                | ClientMessage::JoinLobby { .. }
                | ClientMessage::QuickJoin { .. },
            ) => entered = true,
            _ => {}
        }
    }
    !full_first
}

/// Runs `steps` on a fresh harness, on a current-thread runtime with a paused clock.
fn play(steps: Vec<Step>) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let harness = Harness::new(config());
        let outcome = drive_steps(&harness, steps).await;
        harness.shutdown().await;
        outcome
    })
}

fn send(message: ClientMessage) -> Step {
    binary(&message)
}

fn hello() -> Step {
    send(valid_hello())
}

fn input(seq: u32, dir_x: f32) -> Step {
    input_frame(seq, dir_x, 0.0)
}

/// The control messages of an outcome.
fn control(outcome: &Outcome) -> Vec<&ServerMessage> {
    outcome
        .messages
        .iter()
        .filter_map(|m| match m {
            Received::Control(m) => Some(m),
            Received::Frame(_) => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_script_keeps_the_protocol_s_promises(steps in script()) {
        let allowed = deltas_allowed(&steps);
        let outcome = play(steps);
        if let Err(broken) = check(&outcome, allowed) {
            return Err(TestCaseError::fail(format!("{broken}; saw {:?}", outcome.messages)));
        }
    }
}

#[test]
fn a_well_behaved_script_plays_with_deltas_and_acks() {
    let wait = || Step::Wait(Duration::from_millis(300));
    let steps = vec![
        hello(),
        send(quick_join()),
        wait(),
        input(1, 1.0),
        wait(),
        input(2, 0.0),
        wait(),
        send(ClientMessage::Ping { client_time: 7 }),
        wait(),
    ];
    let outcome = play(steps);
    let deltas = check(&outcome, true).expect("the promises hold");
    let m = control(&outcome);
    assert!(
        matches!(m.first(), Some(ServerMessage::Welcome { .. })),
        "{m:?}"
    );
    assert!(m.iter().any(|m| matches!(m, ServerMessage::Joined(_))));
    assert!(
        m.iter()
            .any(|m| matches!(m, ServerMessage::Pong { client_time: 7, .. }))
    );
    // The arena's entity moves while the input says so, and stops: deltas carry that.
    assert!(deltas > 10, "{deltas} deltas applied");
    let heads = snapshot_heads(&outcome);
    assert!(!heads[0].2, "the first snapshot is full");
    assert_eq!(
        heads.last().map(|h| h.1),
        Some(2),
        "the newest input is acked"
    );
    assert_eq!(outcome.close_code, None, "a goodbye is no error");
}

#[test]
fn deltas_stop_when_turned_off() {
    let wait = || Step::Wait(Duration::from_millis(300));
    let steps = vec![
        hello(),
        send(quick_join()),
        input(1, 1.0),
        wait(),
        send(ClientMessage::Options {
            delta_snapshots: false,
        }),
        // A marker: everything after its Pong was sent with deltas off.
        send(ClientMessage::Ping { client_time: 1 }),
        wait(),
    ];
    let outcome = play(steps);
    check(&outcome, true).expect("the promises hold");
    let m = &outcome.messages;
    let marker = m
        .iter()
        .position(|m| {
            matches!(
                m,
                Received::Control(ServerMessage::Pong { client_time: 1, .. })
            )
        })
        .expect("pong");
    let before = Outcome {
        messages: m[..marker].to_vec(),
        ..Outcome::default()
    };
    assert!(
        snapshot_heads(&before).iter().any(|h| h.2),
        "deltas by default"
    );
    let after = Outcome {
        messages: m[marker..].to_vec(),
        ..Outcome::default()
    };
    let after = snapshot_heads(&after);
    assert!(after.len() > 5);
    assert!(after.iter().all(|h| !h.2), "no delta after Options off");
}

#[test]
fn a_broken_promise_is_caught() {
    // The checker itself: a delta on a baseline the client never had fails it.
    let outcome = play(vec![
        hello(),
        send(quick_join()),
        input(1, 1.0),
        Step::Wait(Duration::from_millis(300)),
    ]);
    check(&outcome, true).expect("the real run holds");
    let is_snapshot = |m: &Received| matches!(m, Received::Frame(b) if b.first() == Some(&ticksync_protocol::state::SNAPSHOT_TAG));
    // Drop the snapshot before some delta: that delta's baseline is missing.
    let mut forged = Outcome {
        messages: outcome.messages.clone(),
        ..Outcome::default()
    };
    let snapshots: Vec<usize> = forged
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| is_snapshot(m))
        .map(|(i, _)| i)
        .collect();
    assert!(snapshots.len() > 3);
    forged.messages.remove(snapshots[2]);
    assert!(
        check(&forged, true).is_err(),
        "a delta on the wrong baseline"
    );
    let mut forged = Outcome {
        messages: outcome.messages.clone(),
        ..Outcome::default()
    };
    forged
        .messages
        .retain(|m| !matches!(m, Received::Control(ServerMessage::Joined(_))));
    assert!(check(&forged, true).is_err(), "snapshots outside a lobby");
    let mut forged = Outcome {
        messages: outcome.messages.clone(),
        ..Outcome::default()
    };
    let last = forged
        .messages
        .iter_mut()
        .rev()
        .find_map(|m| match m {
            Received::Frame(b) if b.first() == Some(&ticksync_protocol::state::SNAPSHOT_TAG) => {
                Some(b)
            }
            _ => None,
        })
        .expect("snapshots");
    assert_eq!(
        last[1], 1,
        "the input was acked (ack_seq 1: one LEB128 byte)"
    );
    last[1] = 0;
    assert!(check(&forged, true).is_err(), "an ack going back");
    assert!(check(&outcome, false).is_err(), "deltas nobody asked for");
    let closed = Outcome {
        close_code: Some(4999),
        ..Outcome::default()
    };
    assert!(check(&closed, false).is_err());
    let normal = Outcome {
        close_code: Some(close::NORMAL),
        ..Outcome::default()
    };
    assert!(check(&normal, false).is_ok());
}
