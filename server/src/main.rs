//! The `ticksync-server` binary: parse flags (and an optional config file), start
//! logging, bind, run until Ctrl-C or SIGTERM.

use anyhow::Context;
use ticksync_server::Error;
use ticksync_server::config::{Cli, LogFormat};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = match Cli::load(std::env::args_os()) {
        Ok(cli) => cli,
        // Prints help and version to stdout with status 0, errors to stderr with 2.
        Err(Error::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("ticksync-server: {e}");
            std::process::exit(2);
        }
    };
    if cli.print_config {
        print!("{}", cli.config.to_toml());
        return Ok(());
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        // Logs go to stderr; stdout carries only the URL line.
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
    }
    // Every connection costs a descriptor: take all the hard limit allows (the caps are
    // sized to what this gives, see `fd_limit`).
    match ticksync_server::fd_limit::raise() {
        Ok(limit) => tracing::info!(fd_limit = ?limit, "descriptor limit raised to the hard limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the descriptor limit"),
    }
    let config = cli.config;
    // The game's schema is checked here: a declaration mistake stops the start.
    let game = cli.game.factory().context("the game's declared state")?;
    let workers = match cli.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        println!("ticksync: open http://{addr}/ to play");
        ticksync_server::run_with_game(listener, config, game, shutdown_signal())
            .await
            .context("running the server")
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
