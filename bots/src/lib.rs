//! # ticksync-bots
//!
//! A load tester for ticksync on the standard workload of `shared/WORKLOAD.md`: many
//! simulated players in one process, each a real WebSocket client speaking the real
//! protocol, and a report of what they saw and what it cost the server.
//!
//! ## Layout
//!
//! - `options`: the command line ([`Options`]), also what [`run`] takes.
//! - `swarm`: one run. Starts the bots at `--connect-rate`, waits until all have joined,
//!   warms up, opens the measured window, samples the server and the bots from /proc at
//!   both ends, stops the bots and builds the [`Report`].
//! - `bot`: one bot, on [`ticksync_client::lean::LeanClient`]: join a lobby of P (the
//!   first of every P bots creates it), then a hot loop reading snapshots by their head
//!   only. Latency is timed per input sequence.
//! - `shooter`: what a shooter bot sees and does: the state decoded by the lobby's
//!   schema (only for the shooter: arena and hill bots read snapshot heads only), the
//!   nearest ship to aim at, and its shots, hits and kills.
//! - `inputs`: the bots' inputs, sent by 32 bucket tasks (random phases over the input
//!   period), each with one timer and a non-blocking write per bot.
//! - `report`: the figures, as a table (`Display`) or JSON (`Serialize`), and the SLO.
//! - `capacity`: `--find-capacity`, which starts its own pinned server for each count.
//! - `progress`: the live line on stderr (indicatif), refreshed 4 times a second.
//! - `metrics`: the server's tick time and lateness, from its `/metrics` at both ends of
//!   the window.
//! - `procfs`: CPU time, RSS and CPU affinity from /proc, and the machine's other load.
//!
//! ## Cost
//!
//! The bots must cost far less than what they ask of the server, or the figures measure
//! the bots. Run them on a single-threaded runtime (the binary's default) on a core of
//! their own; the report gives their CPU per player-tick and warns when their core is
//! saturated or their timers run late.

mod bot;
mod capacity;
mod inputs;
mod metrics;
mod options;
mod procfs;
mod progress;
mod report;
mod shooter;
mod swarm;

pub use crate::capacity::{CapacityReport, CapacityStep, find_capacity};
pub use crate::metrics::{BucketQuantiles, TickFigures};
pub use crate::options::{Behavior, GameChoice, JoinMode, Options};
pub use crate::report::{
    BotsFigures, GameFigures, JoinLatency, Quantiles, RateStats, Report, ServerFigures, Slo,
};
pub use crate::swarm::run;

/// Why a run could not be made (a run that misses its SLO is not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--url` is not a usable `ws://` URL.
    #[error("bad --url: {0}")]
    Url(String),
    /// An option is out of range.
    #[error("bad options: {0}")]
    Options(String),
    /// `--server-pid` names no process whose /proc entry can be read.
    #[error("cannot read /proc/{0}: is --server-pid right?")]
    ServerPid(u32),
    /// The server of `--find-capacity` could not be started.
    #[error("starting the server: {0}")]
    Server(String),
}
