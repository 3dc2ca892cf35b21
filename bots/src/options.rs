//! The command line: one clap struct, also what the library's [`crate::run`] takes.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Load-test a ticksync server with simulated players on the standard workload
/// (shared/WORKLOAD.md): bots fill lobbies, send inputs, and measure snapshots,
/// input-to-acknowledgement latency, bytes, and the server's CPU and memory.
///
/// Exit code: 0 when the SLO holds, 3 when it is missed (or, with --find-capacity,
/// when not even the first count held), 1 on an error, 2 on a bad command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticksync-bots", version, about, long_about)]
pub struct Options {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,

    /// Number of bots (with --find-capacity: the first count tried).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub bots: u32,

    /// Players per lobby: the first bot of every group of P creates a lobby of P, the
    /// others join it by id.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub players_per_lobby: u8,

    /// Seconds of the measured window.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,

    /// Seconds of warm-up after every bot has joined, before the window opens.
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,

    /// Inputs per second per bot (default: the server's tick rate; 0: send none).
    #[arg(long)]
    pub input_hz: Option<f64>,

    /// Input phases per input period: bots are spread over this many timers, each
    /// sending the inputs of its bots at once (more phases: arrivals spread finer).
    #[arg(long, default_value_t = crate::inputs::DEFAULT_PHASES,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub input_phases: u16,

    /// Take delta snapshots (the server's default: changes against the previous
    /// snapshot). Without it the bots send `Options { delta_snapshots: false }` and get
    /// the whole lobby every tick, as the earlier full-snapshot figures did.
    #[arg(long)]
    pub delta: bool,

    /// How bots steer.
    #[arg(long, value_enum, default_value_t = Behavior::RandomWalk)]
    pub behavior: Behavior,

    /// New connections per second, so that a large swarm does not arrive as a SYN flood.
    #[arg(long, default_value_t = 500.0)]
    pub connect_rate: f64,

    /// Sample this process's CPU time and RSS from /proc over the measured window
    /// (repeatable: a cluster's nodes, summed).
    #[arg(long)]
    pub server_pid: Vec<u32>,

    /// The game the bots play (default: whatever the server runs, learnt from the
    /// lobby's schema). A bot whose lobby plays another game fails, counted in the
    /// report. Shooter bots decode the state, aim at the nearest ship and fire.
    #[arg(long, value_enum)]
    pub game: Option<GameChoice>,

    /// How bots find a lobby: `create` (the first of every P bots creates a lobby of P,
    /// the others join it by id) or `quick` (every bot sends QuickJoin, the first of
    /// every P at once, the others once it has joined; the server picks the lobby and
    /// its size, `--quick-lobby-size`; a cluster spreads them over its nodes and
    /// redirects).
    #[arg(long, value_enum, default_value_t = JoinMode::Create)]
    pub join: JoinMode,

    /// An option for the lobbies the bots create, KEY=VALUE (repeatable). Without any,
    /// `--game shooter` asks for a match that outlasts the run (match_secs=3600,
    /// kill_limit=999).
    #[arg(long = "lobby-option", value_parser = parse_pair)]
    pub lobby_options: Vec<(String, String)>,

    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Also write the JSON object to this file (the table still goes to stdout).
    #[arg(long)]
    pub json_out: Option<PathBuf>,

    /// SLO: every bot (p1 over bots) receives at least this fraction of the tick rate.
    #[arg(long, default_value_t = 0.95)]
    pub slo_min_rate: f64,

    /// SLO: input-to-acknowledgement latency p99 at most this many milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub slo_p99_ms: f64,

    /// Find the largest number of bots the server holds: start `ticksync-server` pinned
    /// to --server-cpu, pin the bots to --bots-cpu, and step the count up by --step from
    /// --bots until the SLO fails, then narrow down to --resolution. A fresh server
    /// for every count.
    #[arg(long)]
    pub find_capacity: bool,

    /// --find-capacity: bots added per step.
    #[arg(long, default_value_t = 500)]
    pub step: u32,

    /// --find-capacity: narrow the answer down to this many bots.
    #[arg(long, default_value_t = 250)]
    pub resolution: u32,

    /// --find-capacity: never try more bots than this.
    #[arg(long, default_value_t = 8000)]
    pub max_bots: u32,

    /// --find-capacity: the server binary (default: `ticksync-server` next to this
    /// binary, else on PATH).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// --find-capacity: CPU list for the server (taskset -c).
    #[arg(long, default_value = "0")]
    pub server_cpu: String,

    /// --find-capacity: CPU list for the bots themselves.
    #[arg(long, default_value = "1")]
    pub bots_cpu: String,

    /// --find-capacity: an extra argument for the server (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,

    /// Runtime threads for the bots (1: a single-threaded runtime, the cheapest).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,

    /// Read buffer per connection, in bytes (grown for a larger message).
    #[arg(long, default_value_t = ticksync_client::lean::DEFAULT_READ_BUFFER)]
    pub read_buffer: usize,

    /// No progress display.
    #[arg(long)]
    pub no_progress: bool,

    /// Seed of the bots' random directions and phases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        // The defaults are clap's; an empty command line always parses.
        Self::parse_from(["ticksync-bots"])
    }
}

/// A built-in game (`ticksync-server --game`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GameChoice {
    /// Tag: bots steer (as `--behavior` says).
    Arena,
    /// King of the hill: bots steer (as `--behavior` says).
    Hill,
    /// The shooter: bots random-walk, aim at the nearest ship and fire.
    Shooter,
}

impl GameChoice {
    /// The game's name in its schema.
    pub fn schema_name(self) -> &'static str {
        match self {
            GameChoice::Arena => "arena",
            GameChoice::Hill => "hill",
            GameChoice::Shooter => "shooter",
        }
    }
}

/// How bots find their lobby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinMode {
    /// One bot of each group creates the lobby, the others join it by id.
    Create,
    /// Every bot sends QuickJoin.
    Quick,
}

impl Options {
    /// The options of the lobbies the bots create (`--lobby-option`, or the game's).
    pub fn lobby_game_options(&self) -> ticksync_protocol::GameOptions {
        if !self.lobby_options.is_empty() {
            return ticksync_protocol::GameOptions(self.lobby_options.clone());
        }
        match self.game {
            // The default match (180 s, 20 kills) would end a long run and close its lobbies.
            Some(GameChoice::Shooter) => ticksync_protocol::GameOptions::none()
                .with("match_secs", "3600")
                .with("kill_limit", "999"),
            _ => ticksync_protocol::GameOptions::none(),
        }
    }
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// How a bot steers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    /// A random direction (each component in [-1, 1]), a new one every 1 to 2 seconds.
    RandomWalk,
    /// Full speed around a circle, one turn every 4 seconds.
    Circle,
    /// Standing still (still sending inputs, with a zero direction).
    Idle,
}
