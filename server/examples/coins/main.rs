//! `cargo run -p ticksync-server --example coins`: the ticksync server playing the coins
//! game of `game.rs`, with the demo client at the printed URL. Takes every flag of
//! `ticksync-server`'s server settings (`--bind`, `--tick-rate`, ...; see `--help`).

pub mod game;

use anyhow::Context;
use clap::Parser;
use ticksync_server::Config;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    // The game's declared state is checked here: a mistake stops the start.
    let coins = ticksync_server::game::factory(game::Coins::for_lobby)
        .context("the coins game's declared state")?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // The line the demo client's browser tests wait for, as ticksync-server prints it.
    println!("ticksync: open http://{addr}/ to play (coins)");
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    ticksync_server::run_with_game(listener, config, coins, ctrl_c)
        .await
        .context("running the server")
}
