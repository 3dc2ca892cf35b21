//! The coins example (server/examples/coins/) end to end: the real server on port 0 runs
//! it, the Rust client plays it. This file also builds the example's game module, so its
//! unit tests (`GameSim`, no runtime) run under `cargo test --workspace`.
//!
//! - `/api/game` names the game before anyone joins, with the hash `Joined` carries;
//! - a lobby created with a password refuses a join without it, with the game's reason;
//! - a runner steered to a coin collects it: every player hears `Collected`, only the
//!   collector's private purse counts it, and the coin is gone from the state.

#[path = "../../server/examples/coins/game.rs"]
pub mod coins;

use std::time::Duration;

use coins::{Ask, Coins, Purse, Run, Thing};
use glam::Vec2;
use ticksync_client::{Client, ClientError, Incoming, Value};
use ticksync_protocol::{ClientMessage, ErrorCode, GameOptions, JoinTarget};
use ticksync_server::game::factory;
use ticksync_tests::{http_get, spawn_server_with_game, test_config};

const LIMIT: Duration = Duration::from_secs(10);

fn create(options: GameOptions) -> ClientMessage {
    ClientMessage::CreateLobby {
        name: "coins".into(),
        max_players: 4,
        private: false,
        options,
    }
}

/// My runner's position and the nearest coin's (id, position), as `client` decodes them.
fn runner_and_nearest_coin(client: &Client) -> Option<(Vec2, u32, Vec2)> {
    let state = client.state()?;
    let mine = state.entities().find(|e| e.controlled_by == state.me())?.id;
    let Some(Thing::Runner { pos: me, .. }) = state.entity_of::<Thing>(mine) else {
        return None;
    };
    state
        .entities()
        .filter_map(|e| match state.entity_of::<Thing>(e.id) {
            Some(Thing::Coin { pos }) => Some((e.id, pos)),
            _ => None,
        })
        .min_by(|a, b| me.distance(a.1).total_cmp(&me.distance(b.1)))
        .map(|(id, pos)| (me, id, pos))
}

#[tokio::test]
async fn a_runner_collects_a_coin_and_everyone_hears_it() {
    let game = factory(Coins::for_lobby).expect("the coins schema is valid");
    let server = spawn_server_with_game(test_config(), game).await;

    let (status, _, body) = http_get(server.addr, "/api/game").await;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(info["game"], "coins");
    assert_eq!(info["title"], "Coins");
    assert_eq!(info["entities"], serde_json::json!(["Runner", "Coin"]));
    assert_eq!(info["messages"], serde_json::json!(["Drop"]));
    assert_eq!(info["events"], serde_json::json!(["Collected"]));

    let mut ann = Client::connect(&server.ws_url()).await.expect("connect");
    ann.hello("ann").await.expect("welcome");
    let password = GameOptions::none().with("password", "gold");
    let joined = ann.join(&create(password.clone())).await.expect("created");
    // /api/game's hash is the schema's, as Joined carries it (little-endian bytes).
    let hash = u64::from_le_bytes(joined.schema_hash);
    assert_eq!(info["schema_hash"], format!("{hash:016x}"));

    // Without the password: refused with the game's reason, and still connected.
    let mut bo = Client::connect(&server.ws_url()).await.expect("connect");
    bo.hello("bo").await.expect("welcome");
    let target = |options| ClientMessage::JoinLobby {
        target: JoinTarget::Id(joined.lobby_id),
        options,
    };
    match bo.join(&target(GameOptions::none())).await {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(code, ErrorCode::JoinRefused.as_u16());
            assert!(message.contains("password"), "{message}");
        }
        other => panic!("joined without the password: {other:?}"),
    }
    assert_eq!(bo.join(&target(password)).await.expect("joins").seat, 2);

    // Ann runs to the nearest coin until she has it.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut seq = 0;
    let mut chased = None;
    let by = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ann
            .recv_timeout(left)
            .await
            .expect("the coin is reached in time")
        {
            Incoming::Event(e) if e.name == "Collected" => break e.get("by").cloned(),
            Incoming::Snapshot(s) => {
                if let Some((me, id, coin)) = runner_and_nearest_coin(&ann) {
                    chased = Some(id);
                    seq += 1;
                    let dir = (coin - me).normalize_or_zero();
                    ann.send_input(seq, s.tick, &Run { dir })
                        .await
                        .expect("send");
                }
            }
            _ => {}
        }
    };
    assert_eq!(by, Some(Value::Player(1)));
    let chased = chased.expect("a coin was chased");

    // She stops (the newest input stays applied until another comes).
    ann.send_input(seq + 1, 0, &Run::default())
        .await
        .expect("send");

    // Bo hears it too; the purse is Ann's alone; the coin leaves the state.
    let heard = bo
        .recv_until(LIMIT, |m| match m {
            Incoming::Event(e) if e.name == "Collected" => Some(e.get("by").cloned()),
            _ => None,
        })
        .await
        .expect("Bo hears it");
    assert_eq!(heard, Some(Value::Player(1)));
    let acked = ann
        .recv_until(LIMIT, |m| m.snapshot().filter(|s| s.ack_seq > seq))
        .await;
    acked.expect("the stop is applied");
    let state = ann.state().expect("state");
    assert_eq!(state.private::<Purse>(), Purse { carried: 1 });
    assert!(state.entity(chased).is_none(), "the collected coin is gone");
    bo.recv_until(LIMIT, |m| m.snapshot())
        .await
        .expect("a snapshot");
    assert_eq!(
        bo.state().expect("state").private::<Purse>(),
        Purse { carried: 0 }
    );

    // Dropping it empties her purse (a dropped coin lies a second before anyone may
    // take it, so she does not pick it up again at once).
    ann.send_game_message(&Ask::Drop).await.expect("send");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while ann.state().expect("state").private::<Purse>().carried != 0 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        ann.recv_timeout(left).await.expect("the drop shows");
    }
    server.stop().await;
}
