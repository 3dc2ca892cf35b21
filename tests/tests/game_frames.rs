//! Protocol 2 through the real server and the Rust client, with a test game: a join the
//! game refuses shows its reason, game messages reach the game and its events come back
//! to one player or to all, game messages beyond their rate limit get `RateLimited`
//! (and the connection stays), a hidden entity's bytes never reach the player it is
//! hidden from, and an ended match reports its results and closes the lobby.

use std::time::Duration;

use ticksync_client::{Client, Incoming};
use ticksync_protocol::{ErrorCode, LeftReason, Messages, ServerMessage, State as DeriveState};
use ticksync_server::game::{
    Ctx, EntityId, Game, GameOptions, LeaveReason, PlayerInput, PlayerRef, Visibility, Writer,
    factory, rank_by_score,
};
use ticksync_tests::*;

const T: Duration = Duration::from_secs(5);

#[derive(Messages, Debug, Clone, PartialEq)]
enum Thing {
    /// Every player's own marker, seen by everyone.
    Marker {
        #[state(range = 0..=1000)]
        said: u16,
    },
    /// A treasure only seat 1 sees, with a recognizable value.
    Treasure {
        #[state(range = 0..=65535)]
        secret: u16,
    },
}

#[derive(DeriveState, Debug, Clone, Default, PartialEq)]
struct Input {
    #[state(range = 0..=3)]
    mode: u8,
}

#[derive(Messages, Debug, Clone, PartialEq)]
enum Msg {
    Say {
        #[state(range = 0..=1000)]
        n: u16,
    },
    Finish,
}

#[derive(Messages, Debug, Clone, PartialEq)]
enum Event {
    Heard {
        by: PlayerRef,
        #[state(range = 0..=1000)]
        n: u16,
    },
    Private {
        #[state(max_len = 8)]
        note: String,
    },
}

/// The secret, 0xbeef: its bytes must never reach seat 2.
const SECRET: u16 = 0xbeef;

#[derive(Default)]
struct Echo {
    markers: Vec<(PlayerRef, EntityId, u16)>,
    treasure: Option<EntityId>,
    finish: bool,
}

impl Game for Echo {
    const NAME: &'static str = "echo";
    type Entity = Thing;
    type Lobby = ();
    type Private = ();
    type Input = Input;
    type Message = Msg;
    type Event = Event;

    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, Event>,
        player: PlayerRef,
        name: &str,
        options: &GameOptions,
    ) -> Result<(), String> {
        if options.get("team") == Some("spectator") {
            return Err(format!("{name}: no spectators in this game"));
        }
        let id = ctx.spawn();
        self.markers.push((player, id, 0));
        if self.treasure.is_none() {
            self.treasure = Some(ctx.spawn());
        }
        ctx.send(player, Event::Private { note: "hi".into() });
        Ok(())
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Event>, player: PlayerRef, _: LeaveReason) {
        for m in self.markers.iter().filter(|m| m.0 == player) {
            ctx.despawn(m.1);
        }
        self.markers.retain(|m| m.0 != player);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Event>, player: PlayerRef, message: Msg) {
        match message {
            Msg::Say { n } => {
                if let Some(m) = self.markers.iter_mut().find(|m| m.0 == player) {
                    m.2 = n;
                }
                ctx.broadcast(Event::Heard { by: player, n });
            }
            Msg::Finish => self.finish = true,
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_, Event>, _: &[PlayerInput<Input>], _: u32, _: f32) {
        if std::mem::take(&mut self.finish) {
            let scores = self.markers.iter().map(|m| (m.0, i32::from(m.2)));
            ctx.end_match("echo is over", rank_by_score(scores));
            ctx.close_lobby("the match is over");
        }
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        for &(player, id, said) in &self.markers {
            out.controlled(id, player, &Thing::Marker { said });
        }
        if let Some(id) = self.treasure {
            out.entity_with(
                id,
                PlayerRef::NONE,
                Visibility::Only(PlayerRef(1)),
                &Thing::Treasure { secret: SECRET },
            );
        }
    }
}

async fn server() -> TestServer {
    let game = factory(|_| Ok(Echo::default())).expect("a valid schema");
    spawn_server_with_game(test_config(), game).await
}

async fn player(url: &str, name: &str) -> Client {
    let mut client = Client::connect(url).await.expect("connect");
    client.hello(name).await.expect("welcome");
    client
}

fn said(client: &Client, seat: u16) -> Option<i64> {
    let state = client.state()?;
    let e = state
        .entities()
        .find(|e| e.controlled_by.0 == seat && e.kind == 0)?;
    match state.entity_values(e.id)?.first()? {
        (_, ticksync_client::Value::Int(n)) => Some(*n),
        _ => None,
    }
}

#[tokio::test]
async fn a_refused_join_shows_the_games_reason() {
    let server = server().await;
    let url = server.ws_url();
    let mut host = player(&url, "host").await;
    let joined = host
        .join(&create_lobby("room", 4, false))
        .await
        .expect("create");
    let mut spectator = player(&url, "sam").await;
    let refused = spectator
        .join(&ticksync_protocol::ClientMessage::JoinLobby {
            target: ticksync_protocol::JoinTarget::Id(joined.lobby_id),
            options: GameOptions::none().with("team", "spectator"),
        })
        .await;
    match refused {
        Err(ticksync_client::ClientError::Server { code, message }) => {
            assert_eq!(code, ErrorCode::JoinRefused.as_u16());
            assert_eq!(message, "sam: no spectators in this game");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Options over the limits are refused before any game sees them.
    let bad = spectator
        .join(&ticksync_protocol::ClientMessage::JoinLobby {
            target: ticksync_protocol::JoinTarget::Id(joined.lobby_id),
            options: GameOptions::none().with("Bad Key", "x"),
        })
        .await;
    assert!(
        matches!(bad, Err(ticksync_client::ClientError::Server { code, .. }) if code == ErrorCode::InvalidArgument.as_u16()),
        "{bad:?}"
    );
    // The connection stays; a plain join works.
    spectator
        .join(&join_id(joined.lobby_id))
        .await
        .expect("joins without the option");
    server.stop().await;
}

#[tokio::test]
async fn messages_reach_the_game_and_events_come_back_in_order() {
    let server = server().await;
    let url = server.ws_url();
    let mut ann = player(&url, "ann").await;
    let joined = ann
        .join(&create_lobby("room", 4, false))
        .await
        .expect("create");
    let mut bob = player(&url, "bob").await;
    bob.join(&join_id(joined.lobby_id)).await.expect("join");
    // Each gets its own private event.
    let note = bob
        .recv_until(T, |m| match m {
            Incoming::Event(e) if e.name == "Private" => Some(e.get("note").cloned()),
            _ => None,
        })
        .await
        .expect("a private event");
    assert_eq!(note, Some(ticksync_client::Value::Str("hi".into())));
    ann.send_game_message(&Msg::Say { n: 42 })
        .await
        .expect("send");
    // Bob hears it, then sees the state that the same tick wrote.
    let heard_at = bob
        .recv_until(T, |m| match m {
            Incoming::Event(e) if e.name == "Heard" => {
                assert_eq!(e.get("by"), Some(&ticksync_client::Value::Player(1)));
                assert_eq!(e.get("n"), Some(&ticksync_client::Value::Int(42)));
                Some(e.tick)
            }
            _ => None,
        })
        .await
        .expect("the event");
    let snapshot = bob.recv_snapshot(T).await.expect("a snapshot");
    assert!(snapshot.tick >= heard_at);
    assert_eq!(said(&bob, 1), Some(42));
    server.stop().await;
}

#[tokio::test]
async fn game_messages_over_their_rate_limit_are_refused_and_the_connection_stays() {
    let server = server().await;
    let mut ann = player(&server.ws_url(), "ann").await;
    ann.join(&quick_join()).await.expect("join");
    for n in 0..30 {
        ann.send_game_message(&Msg::Say { n }).await.expect("send");
    }
    let code = ann
        .recv_message_until(T, |m| match m {
            ServerMessage::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await
        .expect("an error");
    assert_eq!(code, ErrorCode::RateLimited.as_u16());
    // Still playing.
    ann.recv_snapshot(T).await.expect("snapshots go on");
    let metrics = http_get(server.addr, "/metrics").await.2;
    let rejected: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("ticksync_game_messages_rejected_total{reason=\"rate_limited\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("the rejection counter");
    // 30 at once against a burst of 20 (and 10/s of refill while they were sent).
    assert!((5.0..=10.0).contains(&rejected), "{rejected} rejected");
    server.stop().await;
}

#[tokio::test]
async fn a_hidden_entity_never_reaches_the_player_it_is_hidden_from() {
    let server = server().await;
    let url = server.ws_url();
    let mut ann = player(&url, "ann").await;
    let joined = ann
        .join(&create_lobby("room", 4, false))
        .await
        .expect("create");
    let mut bob = player(&url, "bob").await;
    bob.join(&join_id(joined.lobby_id)).await.expect("join");
    // The secret's 16 bits, at any bit offset, would show as this pattern in a bit
    // stream; look for the value at every offset of every snapshot bob receives.
    let contains_secret = |bytes: &[u8]| {
        let bits: Vec<bool> = bytes
            .iter()
            .flat_map(|b| (0..8).map(move |i| b >> i & 1 == 1))
            .collect();
        bits.windows(16).any(|w| {
            w.iter()
                .enumerate()
                .fold(0u16, |v, (i, &b)| v | (u16::from(b) << i))
                == SECRET
        })
    };
    let mut seen = 0;
    while seen < 20 {
        let bytes = bob.recv_bytes().await.expect("recv");
        if bytes.first() == Some(&ticksync_protocol::state::SNAPSHOT_TAG) {
            assert!(!contains_secret(&bytes), "the secret reached bob");
            seen += 1;
        }
    }
    // Ann, whom it is shown to, has it: the check above would have found it.
    let mut found = false;
    for _ in 0..10 {
        let bytes = ann.recv_bytes().await.expect("recv");
        if bytes.first() == Some(&ticksync_protocol::state::SNAPSHOT_TAG) && contains_secret(&bytes)
        {
            found = true;
            break;
        }
    }
    assert!(found, "ann's snapshots carry the treasure");
    server.stop().await;
}

#[tokio::test]
async fn an_ended_match_reports_results_and_closes_the_lobby() {
    let server = server().await;
    let url = server.ws_url();
    let mut ann = player(&url, "ann").await;
    let joined = ann
        .join(&create_lobby("room", 4, false))
        .await
        .expect("create");
    let mut bob = player(&url, "bob").await;
    bob.join(&join_id(joined.lobby_id)).await.expect("join");
    bob.send_game_message(&Msg::Say { n: 7 })
        .await
        .expect("say");
    ann.send_game_message(&Msg::Say { n: 3 })
        .await
        .expect("say");
    bob.recv_until(T, |m| match m {
        Incoming::Event(e) if e.get("n") == Some(&ticksync_client::Value::Int(3)) => Some(()),
        _ => None,
    })
    .await
    .expect("both said");
    ann.send_game_message(&Msg::Finish).await.expect("finish");
    let mut told = Vec::new();
    loop {
        match bob.recv_message_timeout(T).await.expect("recv") {
            ServerMessage::MatchEnded { summary, results } => {
                assert_eq!(summary, "echo is over");
                let standings: Vec<(u16, &str, i32, u16)> = results
                    .iter()
                    .map(|r| (r.seat, r.name.as_str(), r.score, r.place))
                    .collect();
                assert_eq!(standings, [(2, "bob", 7, 1), (1, "ann", 3, 2)]);
                told.push("results");
            }
            ServerMessage::Left { reason } => {
                assert_eq!(reason, LeftReason::MatchEnded.as_u8());
                told.push("left");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(told, ["results", "left"]);
    server.stop().await;
}
