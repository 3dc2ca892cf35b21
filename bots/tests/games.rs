//! A smoke test per built-in game: the real server (in this process, on a loopback
//! port) running the game, a few bots with `--game` for about 2 s. They must join,
//! receive snapshots, and for the shooter fire bullets that the snapshots show (and
//! score hits). A run against a server of another game fails every bot, counted.

use std::net::SocketAddr;
use std::time::Duration;

use ticksync_bots::{GameChoice, JoinMode, Options, Report, run};
use ticksync_server::Config;
use ticksync_server::games::BuiltinGame;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Runs `bots` bots in lobbies of `per_lobby` against a server of `server_game`,
/// telling them to play `bots_game`.
async fn play(
    server_game: BuiltinGame,
    bots_game: GameChoice,
    bots: u32,
    join: JoinMode,
) -> Report {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let config = Config {
        bind: addr,
        ..Config::default()
    };
    let game = server_game.factory().expect("a built-in game");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        ticksync_server::run_with_game(listener, config, game, async {
            let _ = stopped.await;
        })
        .await
    });
    let opts = Options {
        url: format!("ws://{addr}/ws"),
        bots,
        players_per_lobby: 4,
        duration: 2.0,
        warmup: 0.5,
        connect_rate: 200.0,
        game: Some(bots_game),
        join,
        no_progress: true,
        ..Options::default()
    };
    let report = run(&opts).await.expect("the run completes");
    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "the server stops cleanly");
    report
}

fn assert_played(report: &Report, bots: usize, game: &str) {
    let text = report.to_string();
    assert_eq!((report.connected, report.failed), (bots, 0), "{text}");
    assert!(report.disconnects.is_empty(), "{text}");
    assert_eq!(report.game.as_deref(), Some(game), "{text}");
    assert!(report.snapshot_rate.p50 > 15.0, "{text}");
    assert!(report.latency_ms.is_some_and(|l| l.samples > 0), "{text}");
    let direct = report.join_latency_ms.direct.expect("join latency");
    assert_eq!(direct.samples as usize, bots, "{text}");
    assert!(report.join_latency_ms.redirected.is_none(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arena_bots_play_arena() {
    let report = play(BuiltinGame::Arena, GameChoice::Arena, 8, JoinMode::Create).await;
    assert_played(&report, 8, "arena");
    assert_eq!(report.lobbies, 2);
    // Arena bots read snapshot heads only.
    assert!(report.shooter.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hill_bots_play_hill_through_quick_join() {
    let report = play(BuiltinGame::Hill, GameChoice::Hill, 8, JoinMode::Quick).await;
    assert_played(&report, 8, "hill");
    // Quick-join fills the server's lobbies of 10 before it opens another.
    assert_eq!(report.lobbies, 1, "{report}");
    assert!(report.shooter.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shooter_bots_aim_fire_and_hit() {
    let report = play(
        BuiltinGame::Shooter,
        GameChoice::Shooter,
        8,
        JoinMode::Create,
    )
    .await;
    assert_played(&report, 8, "shooter");
    let text = report.to_string();
    let g = report.shooter.expect("shooter figures");
    // Each bot holds fire at a target nearly all the time: the gun fires ~6 times a
    // second between reloads, so 2 s of 8 bots is well over 20 shots.
    assert!(g.shots > 20, "{text}");
    // Every bot sees every bullet of its lobby of 4, its own included.
    assert!(g.bullets_seen >= g.shots * 2, "{text}");
    // Aimed at the nearest ship, some land (a hit is an event to everyone).
    assert!(g.hits > 0 && g.hits_seen >= g.hits, "{text}");
    assert!(g.shots_per_bot_per_min > 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_told_the_wrong_game_fail_counted() {
    let report = play(BuiltinGame::Arena, GameChoice::Shooter, 4, JoinMode::Create).await;
    let text = report.to_string();
    assert_eq!((report.connected, report.failed), (0, 4), "{text}");
    let kinds: Vec<&String> = report.failures.keys().collect();
    assert!(
        kinds.iter().any(|k| k.contains("plays arena, not shooter")),
        "{text}"
    );
    assert!(!report.slo.met, "{text}");
}
