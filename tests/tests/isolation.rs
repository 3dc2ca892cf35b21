//! A panic in one lobby's game ends only that lobby: its players are told and return to
//! the lobby screen, the server counts it, and every other lobby keeps its tick rate.

use std::sync::Arc;
use std::time::Duration;

use glam::Vec2;
use ticksync_client::Client;
use ticksync_protocol::{ClientMessage, ErrorCode, LeftReason, ServerMessage};
use ticksync_server::arena::Arena;
use ticksync_server::game::legacy::{EntityView, Game, LobbySpec, PlayerInput};
use ticksync_tests::{http_get, spawn_server_with_game, test_config};

/// A game whose step panics on its 20th tick.
struct Doomed;

impl Game for Doomed {
    fn world_size(&self) -> Vec2 {
        Vec2::splat(100.0)
    }
    fn max_speed(&self) -> f32 {
        1.0
    }
    fn spawn(&mut self, _: u8) {}
    fn despawn(&mut self, _: u8) {}
    fn step(&mut self, _: &[(u8, PlayerInput)], tick: u32, _: f32) {
        assert!(tick < 20, "the doomed game fails on purpose");
    }
    fn view(&self, _: &mut Vec<EntityView>) {}
}

#[tokio::test]
async fn a_panicking_game_ends_only_its_own_lobby() {
    let factory = |spec: &LobbySpec| -> Box<dyn Game> {
        if spec.name == "doomed" {
            Box::new(Doomed)
        } else {
            Box::new(Arena::new())
        }
    };
    let server = spawn_server_with_game(test_config(), Arc::new(factory)).await;
    let url = server.ws_url();
    let (mut healthy, _, _) = Client::quick_player(&url, "healthy")
        .await
        .expect("healthy");
    let mut victim = Client::connect(&url).await.expect("connect");
    victim.hello("victim").await.expect("hello");
    victim
        .join(&ClientMessage::CreateLobby {
            name: "doomed".into(),
            max_players: 4,
            private: false,
        })
        .await
        .expect("create");

    // The victim is told, in order: an error, then that it left because of a crash.
    let mut saw_error = false;
    let left = victim
        .recv_until(Duration::from_secs(5), |m| match m {
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
        .recv_until(Duration::from_secs(5), |m| {
            matches!(m, ServerMessage::LobbyList { .. }).then_some(())
        })
        .await
        .expect("the session lives on");
    victim
        .join(&ClientMessage::QuickJoin)
        .await
        .expect("can play elsewhere");

    // The healthy lobby kept its rate throughout (60 expected in 2 s; generous bounds).
    let start = tokio::time::Instant::now();
    let mut snapshots = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if let Ok(ServerMessage::Snapshot(_)) = healthy.recv_timeout(Duration::from_secs(1)).await {
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
