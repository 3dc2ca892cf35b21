//! A panic in one lobby's game ends only that lobby: its players are told and return to
//! the lobby screen, the server counts it, and every other lobby keeps its tick rate.

use std::time::Duration;

use ticksync_client::{Client, Incoming};
use ticksync_protocol::{ClientMessage, ErrorCode, LeftReason, Messages, ServerMessage};
use ticksync_server::game::{
    Ctx, EntityId, Game, GameOptions, LeaveReason, NoMessages, PlayerInput, PlayerRef, Writer,
    factory,
};
use ticksync_tests::*;

#[derive(Messages, Debug, Clone, PartialEq)]
enum Thing {
    Marker,
}

/// A game of markers (one per player); in a lobby named "doomed" its step panics on
/// its 20th tick.
struct Maybe {
    doomed: bool,
    markers: Vec<(PlayerRef, EntityId)>,
}

impl Game for Maybe {
    const NAME: &'static str = "maybe";
    type Entity = Thing;
    type Lobby = ();
    type Private = ();
    type Input = ();
    type Message = NoMessages;
    type Event = NoMessages;

    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, NoMessages>,
        player: PlayerRef,
        _: &str,
        _: &GameOptions,
    ) -> Result<(), String> {
        self.markers.push((player, ctx.spawn()));
        Ok(())
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, NoMessages>, player: PlayerRef, _: LeaveReason) {
        for (_, id) in self.markers.iter().filter(|m| m.0 == player) {
            ctx.despawn(*id);
        }
        self.markers.retain(|m| m.0 != player);
    }

    fn step(&mut self, _: &mut Ctx<'_, NoMessages>, _: &[PlayerInput<()>], tick: u32, _: f32) {
        assert!(
            !self.doomed || tick < 20,
            "the doomed game fails on purpose"
        );
    }

    fn write(&self, out: &mut Writer<'_, Self>) {
        for &(player, id) in &self.markers {
            out.controlled(id, player, &Thing::Marker);
        }
    }
}

#[tokio::test]
async fn a_panicking_game_ends_only_its_own_lobby() {
    let game = factory(|spec| {
        Ok(Maybe {
            doomed: spec.name == "doomed",
            markers: Vec::new(),
        })
    })
    .expect("a valid schema");
    let server = spawn_server_with_game(test_config(), game).await;
    let url = server.ws_url();
    let (mut healthy, _, _) = Client::quick_player(&url, "healthy")
        .await
        .expect("healthy");
    let mut victim = Client::connect(&url).await.expect("connect");
    victim.hello("victim").await.expect("hello");
    victim
        .join(&create_lobby("doomed", 4, false))
        .await
        .expect("create");

    // The victim is told, in order: an error, then that it left because of a crash.
    let mut saw_error = false;
    let left = victim
        .recv_message_until(Duration::from_secs(5), |m| match m {
            ServerMessage::Error { code, .. } if *code == ErrorCode::LobbyClosed.as_u16() => {
                saw_error = true;
                None
            }
            ServerMessage::Left { reason } => Some(*reason),
            _ => None,
        })
        .await
        .expect("told about the crash");
    assert!(saw_error);
    assert_eq!(left, LeftReason::LobbyCrashed as u8);
    // Still connected, back on the lobby screen: it can list and join again.
    victim
        .send(&ClientMessage::ListLobbies)
        .await
        .expect("send");
    victim
        .recv_message_until(Duration::from_secs(5), |m| {
            matches!(m, ServerMessage::LobbyList { .. }).then_some(())
        })
        .await
        .expect("the session lives on");
    victim
        .join(&quick_join())
        .await
        .expect("can play elsewhere");

    // The healthy lobby kept its rate throughout (60 expected in 2 s; generous bounds).
    let start = tokio::time::Instant::now();
    let mut snapshots = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if let Ok(Incoming::Snapshot(_)) = healthy.recv_timeout(Duration::from_secs(1)).await {
            snapshots += 1;
        }
    }
    assert!(snapshots >= 45, "{snapshots} snapshots in 2 s");

    let metrics = http_get(server.addr, "/metrics").await.2;
    assert!(
        metrics.contains("ticksync_lobby_panics_total 1"),
        "{metrics}"
    );
    server.stop().await;
}
