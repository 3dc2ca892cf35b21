//! `--find-capacity`: the largest number of bots a server holds on one core.
//!
//! Each count gets a fresh `ticksync-server`, started here pinned with `taskset` to
//! `--server-cpu`, bound to a free loopback port (it prints the address it bound), and
//! stopped with SIGTERM (then SIGKILL) afterwards. The count goes up by `--step` until
//! the SLO fails, then the gap between the last count held (or zero) and the first missed
//! is halved down to `--resolution`. A count missed while the bots' own core was saturated proves
//! nothing about the server: the search stops there and says so. Each count waits for
//! the machine to be quiet first, and a count missed while other processes were busy is
//! tried again (up to three times).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::options::Options;
use crate::report::Report;
use crate::{Error, procfs, swarm};

/// How long a starting server may take to print its address.
const START_LIMIT: Duration = Duration::from_secs(15);
/// How long a server may take to stop after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// The server's own default lobby cap; larger lobbies need its flag.
const SERVER_DEFAULT_LOBBY_CAP: u8 = 64;

/// One count tried.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityStep {
    /// Bots.
    pub bots: u32,
    /// The SLO held.
    pub held: bool,
    /// The run's report.
    pub report: Report,
}

/// The answer of `--find-capacity`.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// The largest count that held, if any did.
    pub held: Option<u32>,
    /// The smallest count that failed because of the server, if any did.
    pub missed: Option<u32>,
    /// Why the search ended.
    pub ended: String,
    /// Every count tried, in order.
    pub steps: Vec<CapacityStep>,
}

/// Runs the search. `on_step` sees each count's result as it comes (for a running
/// commentary).
pub async fn find_capacity(
    opts: &Options,
    mut on_step: impl FnMut(&CapacityStep),
) -> Result<CapacityReport, Error> {
    let mut steps = Vec::new();
    let mut held: Option<u32> = None;
    let mut missed: Option<u32> = None;
    let mut count = opts.bots;
    let ended = loop {
        let step = try_count(opts, count).await?;
        on_step(&step);
        let ok = step.held;
        let saturated = step.report.bots_process.saturated;
        steps.push(step);
        if !ok && saturated {
            break format!(
                "the bots' core saturated at {count} bots: make the bots cheaper or give them \
                 more cores to go further"
            );
        }
        if !ok {
            missed = Some(count);
            break format!("the SLO failed at {count} bots");
        }
        held = Some(count);
        if count >= opts.max_bots {
            break format!("reached --max-bots {}", opts.max_bots);
        }
        count = count.saturating_add(opts.step.max(1)).min(opts.max_bots);
    };
    // Narrow the gap between the last count held (none: 0) and the first missed.
    while let Some(hi) = missed {
        let lo = held.unwrap_or(0);
        if hi - lo <= opts.resolution.max(1) {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        let step = try_count(opts, mid).await?;
        on_step(&step);
        let (ok, saturated) = (step.held, step.report.bots_process.saturated);
        steps.push(step);
        match (ok, saturated) {
            (true, _) => held = Some(mid),
            (false, false) => missed = Some(mid),
            (false, true) => break,
        }
    }
    Ok(CapacityReport {
        held,
        missed,
        ended,
        steps,
    })
}

/// Tries a count; a miss on a machine that other processes disturbed is tried again
/// (the figures would measure them, not the server).
async fn try_count(opts: &Options, bots: u32) -> Result<CapacityStep, Error> {
    let mut attempt = 1;
    loop {
        wait_for_quiet().await;
        let step = try_count_once(opts, bots).await?;
        let disturbed = step
            .report
            .other_cpu_cores
            .is_some_and(|c| c > DISTURBED_CORES);
        if step.held || !disturbed || attempt == ATTEMPTS {
            return Ok(step);
        }
        eprintln!("{bots} bots: missed on a busy machine; trying again");
        attempt += 1;
    }
}

/// Other processes using more than this (cores) make a run doubtful.
const DISTURBED_CORES: f64 = 0.10;
/// Runs of one count at most.
const ATTEMPTS: u32 = 3;
/// Longest wait for the machine to be quiet before a run.
const QUIET_WAIT: Duration = Duration::from_secs(120);

/// Waits (up to [`QUIET_WAIT`]) until the machine's CPUs are nearly idle: nothing of ours
/// runs between counts, so what is busy is someone else.
async fn wait_for_quiet() {
    let deadline = tokio::time::Instant::now() + QUIET_WAIT;
    while tokio::time::Instant::now() < deadline {
        let Ok(before) = procfs::system_cpu() else {
            return;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(after) = procfs::system_cpu() else {
            return;
        };
        if after.since(before).busy < DISTURBED_CORES {
            return;
        }
    }
}

async fn try_count_once(opts: &Options, bots: u32) -> Result<CapacityStep, Error> {
    let server = ServerProcess::start(opts).await?;
    let mut run = opts.clone();
    run.bots = bots;
    run.url = server.url.clone();
    run.server_pid = vec![server.pid];
    run.find_capacity = false;
    let report = swarm::run(&run).await;
    server.stop().await;
    let report = report?;
    Ok(CapacityStep {
        bots,
        held: report.slo.met,
        report,
    })
}

/// A `ticksync-server` started for one count.
#[derive(Debug)]
struct ServerProcess {
    child: Child,
    pid: u32,
    url: String,
    /// Reads and drops the server's stdout until it exits.
    drain: JoinHandle<()>,
}

impl ServerProcess {
    async fn start(opts: &Options) -> Result<Self, Error> {
        let bin = server_binary(opts);
        let mut cmd = Command::new("taskset");
        cmd.arg("-c")
            .arg(&opts.server_cpu)
            .arg(&bin)
            .args(["--bind", "127.0.0.1:0"]);
        if opts.players_per_lobby > SERVER_DEFAULT_LOBBY_CAP {
            cmd.arg("--max-players-per-lobby")
                .arg(opts.players_per_lobby.to_string());
        }
        // Every bot comes from 127.0.0.1: lift the per-address cap (1,024 by default)
        // above the largest count tried (so --server-arg must not repeat these two flags).
        cmd.arg("--max-connections-per-ip")
            .arg((opts.max_bots.max(opts.bots) + 100).to_string())
            .arg("--max-connections")
            .arg((opts.max_bots.max(opts.bots) + 1000).to_string());
        // And the per-address lobby quota: one bot of each group creates its lobby.
        let lobbies = (opts.max_bots.max(opts.bots) / u32::from(opts.players_per_lobby.max(1))
            + 100)
            .to_string();
        cmd.env("TICKSYNC_MAX_LOBBIES_PER_IP", &lobbies)
            .env("TICKSYNC_LOBBY_CREATES_PER_MINUTE", &lobbies);
        // The game the bots are told to play is the one the server runs.
        if let Some(game) = opts.game {
            cmd.args(["--game", game.schema_name()]);
        }
        cmd.args(&opts.server_args)
            .env(
                "RUST_LOG",
                std::env::var("TICKSYNC_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::Server(format!(
                "taskset -c {} {}: {e}",
                opts.server_cpu,
                bin.display()
            ))
        })?;
        // taskset execs the server, so this is the server's pid.
        let pid = child
            .id()
            .ok_or_else(|| Error::Server("the server exited at once".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Server("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(START_LIMIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                // main.rs prints "ticksync: open http://127.0.0.1:PORT/ to play" first
                // (ticksync-bare: "ticksync-bare: open http://...").
                if let Some((_, rest)) = line.split_once(": open http://") {
                    return rest.split('/').next().map(str::to_owned);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        // The server may log to stdout too: keep reading, so that it never blocks on a
        // full pipe. The task ends when the server closes its stdout.
        let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let Some(addr) = addr else {
            let _ = child.kill().await;
            return Err(Error::Server(format!(
                "{} did not print its address (is it built? try --server-bin)",
                bin.display()
            )));
        };
        Ok(Self {
            child,
            pid,
            url: format!("ws://{addr}/ws"),
            drain,
        })
    }

    async fn stop(mut self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        let stopped = term.is_ok()
            && tokio::time::timeout(STOP_LIMIT, self.child.wait())
                .await
                .is_ok();
        if !stopped {
            let _ = self.child.kill().await;
        }
        self.drain.abort();
    }
}

/// `--server-bin`, else `ticksync-server` beside this binary, else on PATH.
fn server_binary(opts: &Options) -> PathBuf {
    if let Some(bin) = &opts.server_bin {
        return bin.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("ticksync-server")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("ticksync-server"))
}

impl std::fmt::Display for CapacityReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "capacity search ({}):", self.ended)?;
        writeln!(
            f,
            "  {:>6}  {:>5}  {:>9}  {:>8}  {:>8}  {:>11}  {:>9}  {:>8}",
            "bots", "held", "rate p1", "p99 ms", "srv CPU", "us/plr-tick", "RSS MB", "bots CPU"
        )?;
        for s in &self.steps {
            let r = &s.report;
            let server = r.server.as_ref();
            writeln!(
                f,
                "  {:>6}  {:>5}  {:>8.1}%  {:>8}  {:>7.0}%  {:>11}  {:>9}  {:>7.0}%",
                s.bots,
                if s.held { "yes" } else { "no" },
                r.snapshot_rate.p1_fraction * 100.0,
                r.latency_ms
                    .map_or_else(|| "-".into(), |l| format!("{:.1}", l.p99)),
                server.map_or(0.0, |s| s.cpu_cores * 100.0),
                server
                    .and_then(|s| s.cpu_us_per_player_tick)
                    .map_or_else(|| "-".into(), |v| format!("{v:.2}")),
                server
                    .and_then(|s| s.rss_mb_end)
                    .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
                r.bots_process.cpu_cores * 100.0,
            )?;
        }
        match self.held {
            Some(n) => writeln!(f, "held: {n} bots")?,
            None => writeln!(f, "held: none of the counts tried")?,
        }
        Ok(())
    }
}
