//! "King of the hill": another game on the same [`Game`] trait, to show that a game author
//! writes rules only. Players drift with momentum (input is acceleration, not velocity);
//! whoever stands alone on the hill in the middle scores a point per second.
//!
//! Run it: `cargo run --release -p ticksync-server --example hill`, then open the printed
//! URL (the demo client draws any game's entities).

use std::sync::Arc;

use glam::Vec2;
use ticksync_protocol::{EntityId, ScoreEntry};
use ticksync_server::game::legacy::{EntityView, Game, LobbySpec, PlayerInput};
use ticksync_server::{Config, run_with_game};
use tokio::net::TcpListener;

const SIZE: f32 = 600.0;
const ACCEL: f32 = 400.0;
const MAX_SPEED: f32 = 250.0;
const DRAG: f32 = 0.9;
const HILL_RADIUS: f32 = 60.0;
/// Entity flag: standing on the hill.
const FLAG_ON_HILL: u8 = 1;

#[derive(Default)]
struct Hill {
    players: Vec<(EntityId, Vec2, Vec2, u32)>,
    /// Ticks spent alone on the hill, per player (scores are whole seconds).
    tick_rate: u32,
}

impl Game for Hill {
    fn world_size(&self) -> Vec2 {
        Vec2::splat(SIZE)
    }

    fn max_speed(&self) -> f32 {
        MAX_SPEED
    }

    fn spawn(&mut self, id: EntityId) {
        let angle = f32::from(id) * 2.4;
        let pos = Vec2::splat(SIZE / 2.0) + Vec2::new(angle.cos(), angle.sin()) * 250.0;
        self.players.push((id, pos, Vec2::ZERO, 0));
        self.players.sort_by_key(|p| p.0);
    }

    fn despawn(&mut self, id: EntityId) {
        self.players.retain(|p| p.0 != id);
    }

    fn step(&mut self, inputs: &[(EntityId, PlayerInput)], _tick: u32, dt: f32) {
        self.tick_rate = (1.0 / dt).round() as u32;
        for (id, pos, vel, _) in &mut self.players {
            let dir = inputs
                .iter()
                .find(|(i, _)| i == id)
                .map_or(Vec2::ZERO, |(_, input)| input.dir);
            *vel = ((*vel + dir * ACCEL * dt) * DRAG.powf(dt * 10.0)).clamp_length_max(MAX_SPEED);
            *pos = (*pos + *vel * dt).clamp(Vec2::ZERO, Vec2::splat(SIZE));
        }
        let center = Vec2::splat(SIZE / 2.0);
        let on_hill: Vec<usize> = (0..self.players.len())
            .filter(|&i| self.players[i].1.distance(center) < HILL_RADIUS)
            .collect();
        if let [alone] = on_hill[..] {
            self.players[alone].3 += 1;
        }
    }

    fn view(&self, out: &mut Vec<EntityView>) {
        let center = Vec2::splat(SIZE / 2.0);
        out.extend(self.players.iter().map(|&(id, pos, vel, _)| EntityView {
            id,
            pos,
            vel,
            flags: if pos.distance(center) < HILL_RADIUS {
                FLAG_ON_HILL
            } else {
                0
            },
        }));
    }

    fn scores(&self, out: &mut Vec<ScoreEntry>) {
        let per_second = self.tick_rate.max(1);
        out.extend(
            self.players
                .iter()
                .map(|&(entity, _, _, ticks)| ScoreEntry {
                    entity,
                    score: i32::try_from(ticks / per_second).unwrap_or(i32::MAX),
                }),
        );
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The server's own flags and TICKSYNC_* variables (--bind, --tick-rate, ...).
    let config = <Config as clap::Parser>::parse();
    let listener = TcpListener::bind(config.bind).await?;
    println!("king of the hill: open http://{}/", listener.local_addr()?);
    let game = Arc::new(|_: &LobbySpec| Box::new(Hill::default()) as Box<dyn Game>);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run_with_game(listener, config, game, shutdown)
        .await
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_on_the_hill_scores() {
        let mut game = Hill::default();
        game.spawn(0);
        game.players[0].1 = Vec2::splat(SIZE / 2.0);
        for tick in 0..60 {
            game.step(&[], tick, 1.0 / 30.0);
        }
        let mut scores = Vec::new();
        game.scores(&mut scores);
        assert_eq!(scores[0].score, 2);
    }
}
