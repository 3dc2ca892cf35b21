//! The Game API end to end: a test game ("lab") that uses every field type, run by the
//! real server on port 0 and played by the Rust client over real sockets.
//!
//! - every field type of an entity, the lobby row and the private row round-trips to the
//!   client exactly (values chosen on the quantization grid);
//! - declaration mistakes are start-up errors with a message naming the field;
//! - a refused join shows the game's reason (`Error JoinRefused`);
//! - an ended match sends `MatchEnded` with results and closes the lobby
//!   (`Left MatchEnded`);
//! - a press and release between two ticks reaches the game exactly once;
//! - a burst of 12 inputs sent at once ends with the newest applied and acknowledged,
//!   and no snapshot ever shows an older input applied after a newer one;
//! - fog of war: an entity hidden from a player and another player's `owner_only`
//!   fields never reach it, checked on the raw bytes it receives (with the owner's bytes
//!   as the control that the check finds them when they are there);
//! - game messages over the rate limit are refused.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use glam::Vec2;
use ticksync_client::{Client, Incoming};
use ticksync_protocol::schema::{AxisQuant, Fields, Messages, SchemaError};
use ticksync_protocol::state::{Value, angle_value};
use ticksync_protocol::{
    ClientMessage, ErrorCode, GameOptions, JoinTarget, LeftReason, ServerMessage, StateEnum,
};
use ticksync_server::game::{
    Button, Ctx, EntityId, Game, GameFactory, LeaveReason, NoMessages, PlayerInput, PlayerRef,
    Visibility, Writer, factory, rank_by_score,
};
use ticksync_tests::{spawn_server_with_game, test_config};

const LIMIT: Duration = Duration::from_secs(5);

#[derive(StateEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mood {
    #[default]
    Calm,
    Angry,
    Sleepy,
}

/// Every field type, in an entity kind.
#[derive(ticksync_protocol::Messages, Debug, Clone, PartialEq)]
enum LabEntity {
    Probe {
        flag: bool,
        small: u8,
        word: u16,
        big: u32,
        tiny: i8,
        short: i16,
        wide: i32,
        #[state(range = -50..=50)]
        ranged: i16,
        #[state(range = 0.0..=10.0, precision = 0.5)]
        level: f32,
        #[state(x = 0.0..=1000.0, y = -100.0..=100.0, precision = 0.25)]
        pos: Vec2,
        #[state(angle_bits = 8)]
        heading: f32,
        mood: Mood,
        #[state(max_len = 24)]
        label: String,
        owner: PlayerRef,
        /// The fire button as last applied (a `Button` is an input field only).
        held: bool,
        #[state(range = 0..=15)]
        counter: u8,
        /// The sequence number of the input applied at the last step.
        seq: u32,
        /// Its direction.
        #[state(range = -1.0..=1.0, precision = 0.001)]
        dir: Vec2,
        /// Fire presses counted so far.
        presses: u16,
        /// Only the probe's player receives this.
        #[state(owner_only, max_len = 40)]
        pin: String,
        /// A var4 integer (`VarUint`): 100 takes 12 bits.
        #[state(varint, max = 999)]
        tally: u16,
    },
    /// Seen by seat 1 only.
    Secret {
        #[state(max_len = 40)]
        note: String,
        code: u32,
    },
}

#[derive(ticksync_protocol::State, Debug, Clone, PartialEq, Default)]
struct LabLobby {
    #[state(range = 0..=9)]
    round: u8,
    #[state(max_len = 16)]
    title: String,
    mood: Mood,
}

#[derive(ticksync_protocol::State, Debug, Clone, PartialEq, Default)]
struct LabPrivate {
    #[state(range = 0..=9999)]
    coins: u16,
    #[state(max_len = 16)]
    hand: String,
}

#[derive(ticksync_protocol::State, Debug, Clone, Copy, PartialEq, Default)]
struct LabInput {
    #[state(range = -1.0..=1.0, precision = 0.001)]
    dir: Vec2,
    fire: Button,
}

#[derive(ticksync_protocol::Messages, Debug, Clone, PartialEq)]
enum LabMessage {
    Chat {
        #[state(max_len = 64)]
        text: String,
    },
    Finish,
}

#[derive(ticksync_protocol::Messages, Debug, Clone, PartialEq)]
enum LabEvent {
    Said {
        by: PlayerRef,
        #[state(max_len = 64)]
        text: String,
    },
    Pressed {
        by: PlayerRef,
        #[state(range = 0..=15)]
        presses: u8,
    },
}

const SECRET_NOTE: &str = "TOPSECRET-7f3a9c1e-never-for-seat-two";
const SECRET_CODE: u32 = 0xA5C3_9E71;

fn pin_of(seat: u16) -> String {
    format!("PIN-{seat}-d41d8cd98f00b204e9800998ecf8")
}

/// `v` on the grid of a field of `min..=max` at `precision`: what the server sends
/// (within half a step of `v`), so the client's value must equal it exactly.
fn grid(min: f32, max: f32, precision: f32, v: f32) -> f32 {
    let axis = AxisQuant::new(min, max, precision).expect("valid range");
    let on_grid = axis.value(axis.quantize(v));
    assert!((on_grid - v).abs() <= precision / 2.0, "{v} -> {on_grid}");
    on_grid
}

/// What seat `seat`'s probe holds before any input.
fn probe_of(seat: u16) -> LabEntity {
    let s = seat;
    LabEntity::Probe {
        flag: s % 2 == 1,
        small: u8::MAX,
        word: u16::MAX - s,
        big: u32::MAX,
        tiny: i8::MIN,
        short: i16::MIN + s as i16,
        wide: i32::MIN,
        ranged: -50 + s as i16,
        level: grid(0.0, 10.0, 0.5, 2.5 * f32::from(s)),
        pos: Vec2::new(
            grid(0.0, 1000.0, 0.25, 12.25 * f32::from(s)),
            grid(-100.0, 100.0, 0.25, -99.75),
        ),
        heading: angle_value(32 * u32::from(s), 8),
        mood: Mood::Angry,
        label: format!("probe-{s}-ünïcödé"),
        owner: PlayerRef(s),
        held: false,
        counter: 0,
        seq: 0,
        dir: Vec2::ZERO,
        presses: 0,
        pin: pin_of(s),
        tally: 100 * s,
    }
}

#[derive(Debug, Default)]
struct Lab {
    probes: Vec<(PlayerRef, EntityId, LabEntity)>,
    secret: Option<EntityId>,
}

impl Game for Lab {
    const NAME: &'static str = "lab";
    type Entity = LabEntity;
    type Lobby = LabLobby;
    type Private = LabPrivate;
    type Input = LabInput;
    type Message = LabMessage;
    type Event = LabEvent;

    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, LabEvent>,
        player: PlayerRef,
        name: &str,
        options: &GameOptions,
    ) -> Result<(), String> {
        if name.starts_with("refuse") {
            return Err("the lab is closed to visitors".into());
        }
        if options.get("role") == Some("spectator") {
            return Err("no spectators in the lab".into());
        }
        if self.secret.is_none() {
            self.secret = Some(ctx.spawn());
        }
        let id = ctx.spawn();
        self.probes.push((player, id, probe_of(player.0)));
        self.probes.sort_by_key(|p| p.0);
        Ok(())
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, LabEvent>, player: PlayerRef, _: LeaveReason) {
        self.probes.retain(|(p, id, _)| {
            if *p == player {
                ctx.despawn(*id);
            }
            *p != player
        });
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, LabEvent>, player: PlayerRef, message: LabMessage) {
        match message {
            LabMessage::Chat { text } => ctx.broadcast(LabEvent::Said { by: player, text }),
            LabMessage::Finish => {
                let scores = self.probes.iter().map(|(p, _, e)| match e {
                    LabEntity::Probe { presses, .. } => (*p, i32::from(*presses)),
                    LabEntity::Secret { .. } => (*p, 0),
                });
                ctx.end_match("lab over", rank_by_score(scores));
                ctx.close_lobby("the experiment is finished");
            }
        }
    }

    fn step(
        &mut self,
        ctx: &mut Ctx<'_, LabEvent>,
        inputs: &[PlayerInput<LabInput>],
        _tick: u32,
        _dt: f32,
    ) {
        for input in inputs {
            let Some((
                _,
                _,
                LabEntity::Probe {
                    held,
                    counter,
                    seq,
                    dir,
                    presses,
                    ..
                },
            )) = self.probes.iter_mut().find(|p| p.0 == input.player)
            else {
                continue;
            };
            let new = input.presses(|i| i.fire);
            *held = input.input.fire.held;
            *counter = input.input.fire.presses;
            *seq = input.seq;
            *dir = input.input.dir;
            *presses += u16::from(new);
            if new > 0 {
                ctx.broadcast(LabEvent::Pressed {
                    by: input.player,
                    presses: new,
                });
            }
        }
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        out.lobby(&LabLobby {
            round: 7,
            title: "the lab".into(),
            mood: Mood::Sleepy,
        });
        for (player, id, probe) in &self.probes {
            out.private(
                *player,
                &LabPrivate {
                    coins: 1000 + player.0,
                    hand: format!("hand of {}", player.0),
                },
            );
            out.controlled(*id, *player, probe);
        }
        if let Some(id) = self.secret {
            out.entity_with(
                id,
                PlayerRef::NONE,
                Visibility::Only(PlayerRef(1)),
                &LabEntity::Secret {
                    note: SECRET_NOTE.into(),
                    code: SECRET_CODE,
                },
            );
        }
    }
}

fn lab() -> Arc<dyn GameFactory> {
    factory(|_| Ok(Lab::default())).expect("the lab's schema is valid")
}

/// A player in a new lab lobby (seat 1) and one who joined it (seat 2).
async fn two_players(url: &str) -> (Client, Client, u32) {
    let mut a = Client::connect(url).await.expect("connect");
    a.hello("alice").await.expect("welcome");
    let joined = a
        .join(&ticksync_tests::create_lobby("lab", 4, false))
        .await
        .expect("created");
    assert_eq!(joined.seat, 1);
    let mut b = Client::connect(url).await.expect("connect");
    b.hello("bob").await.expect("welcome");
    let joined_b = b
        .join(&ticksync_tests::join_id(joined.lobby_id))
        .await
        .expect("joined");
    assert_eq!(joined_b.seat, 2);
    (a, b, joined.lobby_id)
}

/// The probe seat `seat` controls, as `client` decodes it.
fn probe(client: &Client, seat: u16) -> Option<LabEntity> {
    let state = client.state()?;
    let id = state
        .entities()
        .find(|e| e.controlled_by == PlayerRef(seat))?
        .id;
    state.entity_of::<LabEntity>(id)
}

/// Receives until `client`'s decoded state satisfies `done`.
async fn until_state(client: &mut Client, mut done: impl FnMut(&Client) -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !done(client) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        client.recv_timeout(left).await.expect("the state arrives");
    }
}

#[tokio::test]
async fn every_field_type_round_trips_to_the_rust_client() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (mut a, mut b, _) = two_players(&server.ws_url()).await;
    // Both probes in A's state (B's arrives after B joined).
    until_state(&mut a, |c| probe(c, 2).is_some()).await;
    until_state(&mut b, |c| probe(c, 1).is_some()).await;

    assert_eq!(
        probe(&a, 1),
        Some(probe_of(1)),
        "A's own probe, pin included"
    );
    assert_eq!(
        probe(&b, 2),
        Some(probe_of(2)),
        "B's own probe, pin included"
    );
    // Another player's probe: every field but the owner_only pin, which stays empty.
    let without_pin = |seat| {
        let mut p = probe_of(seat);
        if let LabEntity::Probe { pin, .. } = &mut p {
            pin.clear();
        }
        p
    };
    assert_eq!(probe(&a, 2), Some(without_pin(2)));
    assert_eq!(probe(&b, 1), Some(without_pin(1)));

    for client in [&a, &b] {
        let state = client.state().expect("joined");
        assert_eq!(
            state.lobby::<LabLobby>(),
            LabLobby {
                round: 7,
                title: "the lab".into(),
                mood: Mood::Sleepy
            }
        );
        let me = state.me().0;
        assert_eq!(
            state.private::<LabPrivate>(),
            LabPrivate {
                coins: 1000 + me,
                hand: format!("hand of {me}")
            }
        );
    }

    // The dynamic view (no generated code) names every field and types each value.
    let state = a.state().expect("joined");
    let id = state
        .entities()
        .find(|e| e.controlled_by == PlayerRef(1))
        .expect("probe")
        .id;
    let values = state.entity_values(id).expect("values");
    let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "flag", "small", "word", "big", "tiny", "short", "wide", "ranged", "level", "pos",
            "heading", "mood", "label", "owner", "held", "counter", "seq", "dir", "presses", "pin",
            "tally"
        ]
    );
    assert_eq!(values[20].1, Value::Int(100));
    assert_eq!(values[3].1, Value::Int(i64::from(u32::MAX)));
    assert_eq!(values[6].1, Value::Int(i64::from(i32::MIN)));
    assert_eq!(
        values[9].1,
        Value::Vec2([
            grid(0.0, 1000.0, 0.25, 12.25),
            grid(-100.0, 100.0, 0.25, -99.75)
        ])
    );
    assert_eq!(values[11].1, Value::Enum(1));
    assert_eq!(values[13].1, Value::Player(1));
    assert!(matches!(values[10].1, Value::Angle(_)));

    // An input's fields come back through the game (the probe mirrors them).
    let mut fire = Button::default();
    fire.press();
    let sent = LabInput {
        dir: Vec2::new(grid(-1.0, 1.0, 0.001, 0.5), grid(-1.0, 1.0, 0.001, -0.25)),
        fire,
    };
    a.send_input(1, 0, &sent).await.expect("send");
    until_state(&mut a, |c| {
        matches!(probe(c, 1), Some(LabEntity::Probe { seq: 1, .. }))
    })
    .await;
    let Some(LabEntity::Probe {
        held,
        counter,
        dir,
        presses,
        ..
    }) = probe(&a, 1)
    else {
        panic!("a probe");
    };
    assert_eq!((held, counter, dir, presses), (true, 1, sent.dir, 1));
    server.stop().await;
}

/// A game whose schema is wrong in the way `E`, `L` and `I` are.
struct Bad<E, L, I>(Types<E, L, I>);

/// The types a [`Bad`] game declares with.
type Types<E, L, I> = PhantomData<fn() -> (E, L, I)>;

impl<E, L, I> Game for Bad<E, L, I>
where
    E: Messages + 'static,
    L: Fields + 'static,
    I: Fields + Default + Clone + Send + 'static,
{
    const NAME: &'static str = "bad";
    type Entity = E;
    type Lobby = L;
    type Private = ();
    type Input = I;
    type Message = NoMessages;
    type Event = NoMessages;

    fn step(&mut self, _: &mut Ctx<'_, NoMessages>, _: &[PlayerInput<I>], _: u32, _: f32) {}
    fn write(&self, _: &mut Writer<'_, Self>) {}
}

#[derive(ticksync_protocol::Messages, Debug, Clone, PartialEq)]
enum TooFine {
    Dot {
        /// 2^35 steps: more than 32 bits.
        #[state(range = 0.0..=1000.0, precision = 0.00000003)]
        pos: Vec2,
    },
}

/// Up to 1,530 bytes of text: more than an input may be.
#[derive(ticksync_protocol::State, Debug, Clone, PartialEq, Default)]
struct Essay {
    #[state(max_len = 255)]
    a: String,
    #[state(max_len = 255)]
    b: String,
    #[state(max_len = 255)]
    c: String,
    #[state(max_len = 255)]
    d: String,
    #[state(max_len = 255)]
    e: String,
    #[state(max_len = 255)]
    f: String,
}

#[derive(ticksync_protocol::State, Debug, Clone, PartialEq, Default)]
struct Fine {
    ok: bool,
}

/// The start-up error of a game's factory (the factory itself is not `Debug`).
fn startup_error(made: Result<Arc<dyn GameFactory>, SchemaError>) -> String {
    match made {
        Ok(_) => panic!("the schema was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn declaration_mistakes_are_startup_errors_naming_the_field() {
    // Mistakes the derive cannot see (it does not count bits) stop the factory, so the
    // server never starts with them; the message says where and what.
    let text = startup_error(factory(|_| Ok(Bad::<TooFine, (), Fine>(PhantomData))));
    assert!(
        text.contains("entity") && text.contains("pos") && text.contains("32 bits"),
        "{text}"
    );
    let text = startup_error(factory(|_| Ok(Bad::<LabEntity, (), Essay>(PhantomData))));
    assert!(
        text.contains("input") && text.contains("must fit"),
        "{text}"
    );
    // The same game with the mistakes fixed starts.
    assert!(factory(|_| Ok(Bad::<LabEntity, LabLobby, Fine>(PhantomData))).is_ok());
}

#[tokio::test]
async fn a_refused_join_shows_the_games_reason() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (_a, _b, lobby) = two_players(&server.ws_url()).await;

    let mut c = Client::connect(&server.ws_url()).await.expect("connect");
    c.hello("refused-visitor").await.expect("welcome");
    let err = c
        .join(&ticksync_tests::join_id(lobby))
        .await
        .expect_err("refused");
    match err {
        ticksync_client::ClientError::Server { code, message } => {
            assert_eq!(code, ErrorCode::JoinRefused.as_u16());
            assert_eq!(message, "the lab is closed to visitors");
        }
        other => panic!("{other:?}"),
    }

    // Join options reach the game too; the refused player stays connected and can ask
    // again.
    let mut d = Client::connect(&server.ws_url()).await.expect("connect");
    d.hello("dora").await.expect("welcome");
    let spectator = ClientMessage::JoinLobby {
        target: JoinTarget::Id(lobby),
        options: GameOptions::none().with("role", "spectator"),
    };
    match d.join(&spectator).await.expect_err("refused") {
        ticksync_client::ClientError::Server { code, message } => {
            assert_eq!(code, ErrorCode::JoinRefused.as_u16());
            assert_eq!(message, "no spectators in the lab");
        }
        other => panic!("{other:?}"),
    }
    let joined = d
        .join(&ticksync_tests::join_id(lobby))
        .await
        .expect("a player is welcome");
    assert_eq!(joined.seat, 3);
    server.stop().await;
}

#[tokio::test]
async fn an_ended_match_sends_results_and_closes_the_lobby() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (mut a, mut b, lobby) = two_players(&server.ws_url()).await;
    // B presses twice so the results have an order.
    let mut fire = Button::default();
    fire.press();
    fire.release();
    fire.press();
    fire.release();
    b.send_input(
        1,
        0,
        &LabInput {
            dir: Vec2::ZERO,
            fire,
        },
    )
    .await
    .expect("send");
    until_state(&mut a, |c| {
        matches!(probe(c, 2), Some(LabEntity::Probe { presses: 2, .. }))
    })
    .await;

    a.send_game_message(&LabMessage::Finish)
        .await
        .expect("send");
    for client in [&mut a, &mut b] {
        let (summary, results) = client
            .recv_message_until(LIMIT, |m| match m {
                ServerMessage::MatchEnded { summary, results } => {
                    Some((summary.clone(), results.clone()))
                }
                _ => None,
            })
            .await
            .expect("MatchEnded");
        assert_eq!(summary, "lab over");
        let rows: Vec<_> = results
            .iter()
            .map(|r| (r.seat, r.name.as_str(), r.score, r.place))
            .collect();
        assert_eq!(rows, [(2, "bob", 2, 1), (1, "alice", 0, 2)]);
        // Then the game's reason for closing, and the lobby is left.
        let next = client.recv_message_timeout(LIMIT).await.expect("Error");
        assert_eq!(
            next,
            ServerMessage::Error {
                code: ErrorCode::LobbyClosed.as_u16(),
                message: "the experiment is finished".into()
            }
        );
        let next = client.recv_message_timeout(LIMIT).await.expect("Left");
        assert_eq!(
            next,
            ServerMessage::Left {
                reason: LeftReason::MatchEnded.as_u8()
            }
        );
    }

    // The lobby is gone.
    let mut c = Client::connect(&server.ws_url()).await.expect("connect");
    c.hello("carol").await.expect("welcome");
    match c.join(&ticksync_tests::join_id(lobby)).await {
        Err(ticksync_client::ClientError::Server { code, .. }) => {
            assert_eq!(code, ErrorCode::LobbyNotFound.as_u16());
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_press_and_release_between_two_ticks_reaches_the_game_once() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (mut a, _b, _) = two_players(&server.ws_url()).await;
    until_state(&mut a, |c| probe(c, 1).is_some()).await;

    // Pressed, then released, sent back to back: the server applies the newest input of
    // a tick only, and its counter still carries the press.
    let mut fire = Button::default();
    fire.press();
    let pressed = LabInput {
        dir: Vec2::ZERO,
        fire,
    };
    fire.release();
    let released = LabInput {
        dir: Vec2::ZERO,
        fire,
    };
    a.send_input(1, 0, &pressed).await.expect("send");
    a.send_input(2, 0, &released).await.expect("send");

    // Watch 30 snapshots after the release was applied: one Pressed event, one press.
    let mut events = Vec::new();
    let mut after = 0;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while after < 30 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match a.recv_timeout(left).await.expect("snapshots") {
            Incoming::Event(e) if e.get("presses").is_some() => events.push(e),
            Incoming::Snapshot(s) if s.ack_seq >= 2 => after += 1,
            _ => {}
        }
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].get("by"), Some(&Value::Player(1)));
    assert_eq!(events[0].get("presses"), Some(&Value::Int(1)));
    let Some(LabEntity::Probe {
        presses,
        held,
        counter,
        ..
    }) = probe(&a, 1)
    else {
        panic!("a probe");
    };
    assert_eq!(presses, 1);
    assert_eq!((held, counter), (false, 1), "released, one press counted");
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_12_inputs_ends_with_the_newest_applied_and_acked() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (mut a, _b, _) = two_players(&server.ws_url()).await;
    until_state(&mut a, |c| probe(c, 1).is_some()).await;

    let dir_of = |seq: u32| Vec2::new(seq as f32 / 100.0, -(seq as f32) / 50.0);
    for seq in 1..=12 {
        let input = LabInput {
            dir: dir_of(seq),
            fire: Button::default(),
        };
        a.send_input(seq, 0, &input).await.expect("send");
    }

    // Every snapshot: the ack never goes back, and the input the game applied in that
    // tick is the acknowledged one (never an older input after a newer).
    let mut last_ack = 0;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Incoming::Snapshot(s) = a.recv_timeout(left).await.expect("snapshots") else {
            continue;
        };
        assert!(
            s.ack_seq >= last_ack,
            "ack went from {last_ack} to {}",
            s.ack_seq
        );
        last_ack = s.ack_seq;
        let Some(LabEntity::Probe { seq, dir, .. }) = probe(&a, 1) else {
            panic!("a probe");
        };
        assert_eq!(seq, s.ack_seq, "the applied input is the acknowledged one");
        if seq > 0 {
            assert!(
                (dir - dir_of(seq)).abs().max_element() < 1e-3,
                "input {seq} applied with its own direction: {dir}"
            );
        }
        if s.ack_seq == 12 {
            break;
        }
    }
    server.stop().await;
}

/// Whether `needle`'s bits appear in `haystack` at any bit offset (the state encoding is
/// bit-packed, LSB first, so a field need not start on a byte).
fn contains_bits(haystack: &[u8], needle: &[u8]) -> bool {
    let bit = |bytes: &[u8], i: usize| (bytes[i / 8] >> (i % 8)) & 1;
    let (h, n) = (haystack.len() * 8, needle.len() * 8);
    (0..(h + 1).saturating_sub(n))
        .any(|start| (0..n).all(|i| bit(haystack, start + i) == bit(needle, i)))
}

#[tokio::test]
async fn hidden_entities_and_owner_fields_never_reach_the_bytes_of_other_players() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (mut a, mut b, _) = two_players(&server.ws_url()).await;
    let secrets: [(&str, Vec<u8>); 3] = [
        ("the secret's note", SECRET_NOTE.as_bytes().to_vec()),
        ("the secret's code", SECRET_CODE.to_le_bytes().to_vec()),
        ("A's pin", pin_of(1).into_bytes()),
    ];

    // 60 snapshots each, full (the first, and on request) and deltas; every byte kept.
    let seen = |bytes: &[u8], found: &mut [bool; 3]| {
        for (k, (_, s)) in secrets.iter().enumerate() {
            found[k] |= contains_bits(bytes, s);
        }
    };
    let mut a_found = [false; 3];
    let mut b_found = [false; 3];
    let mut b_snapshots = 0;
    b.set_deltas(false).await.expect("options");
    for round in 0..60 {
        if round == 30 {
            b.set_deltas(true).await.expect("options");
        }
        let bytes = b.recv_bytes().await.expect("bytes");
        if bytes.first() == Some(&ticksync_protocol::state::SNAPSHOT_TAG) {
            b_snapshots += 1;
        }
        seen(&bytes, &mut b_found);
        let bytes = a.recv_bytes().await.expect("bytes");
        seen(&bytes, &mut a_found);
    }
    assert!(b_snapshots >= 50, "{b_snapshots}");
    for (k, (what, _)) in secrets.iter().enumerate() {
        assert!(a_found[k], "control: {what} is in A's bytes");
        assert!(!b_found[k], "{what} reached B's bytes");
    }
    server.stop().await;
}

#[tokio::test]
async fn game_messages_over_the_rate_limit_are_refused() {
    let server = spawn_server_with_game(test_config(), lab()).await;
    let (mut a, mut b, _) = two_players(&server.ws_url()).await;
    for i in 0..40 {
        a.send_game_message(&LabMessage::Chat {
            text: format!("hello {i}"),
        })
        .await
        .expect("send");
    }
    let mut refused = 0;
    let mut said = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match a.recv_timeout(left).await {
            Ok(Incoming::Message(ServerMessage::Error { code, .. })) => {
                assert_eq!(code, ErrorCode::RateLimited.as_u16());
                refused += 1;
            }
            Ok(Incoming::Event(e)) if e.get("text").is_some() => said.push(e),
            Ok(_) => {}
            Err(ticksync_client::ClientError::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // A burst of 20 goes through (perhaps one more refilled meanwhile), the rest is
    // refused, each with an error.
    assert!((20..=22).contains(&said.len()), "{} said", said.len());
    assert_eq!(refused + said.len(), 40);
    assert_eq!(said[0].get("text"), Some(&Value::Str("hello 0".into())));
    // The others heard the same chats, in order.
    let mut heard = Vec::new();
    while heard.len() < said.len() {
        if let Incoming::Event(e) = b.recv_timeout(LIMIT).await.expect("events") {
            if e.get("text").is_some() {
                heard.push(e.get("text").cloned());
            }
        }
    }
    let said: Vec<_> = said.iter().map(|e| e.get("text").cloned()).collect();
    assert_eq!(heard, said);
    server.stop().await;
}
