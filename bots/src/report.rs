//! The report: every figure of shared/WORKLOAD.md for one run, as a table or JSON.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bot::BotResult;
use crate::metrics::TickFigures;
use crate::options::{Behavior, JoinMode, Options};
use crate::procfs::{CpuTime, SystemCpu, count_cpus};
use crate::swarm::Hists;

/// A run's figures. Rates are per bot per second and counts are of the measured window
/// unless a name says otherwise.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server's URL.
    pub url: String,
    /// Bots asked for.
    pub bots: u32,
    /// Lobby size.
    pub players_per_lobby: u8,
    /// Lobbies the bots played in (distinct lobby ids joined; before any joined, the
    /// lobbies asked for).
    pub lobbies: u32,
    /// How the bots found their lobbies.
    pub join: JoinMode,
    /// The game the lobbies play, from their schema.
    pub game: Option<String>,
    /// How the bots steered.
    pub behavior: Behavior,
    /// The bots asked for delta snapshots.
    pub delta: bool,
    /// Delta snapshots among the snapshots received in the window.
    pub delta_snapshots: u64,
    /// The server's tick rate (from `Welcome`; 0 if no bot got that far).
    pub tick_rate: u32,
    /// Inputs per second each bot was asked to send.
    pub input_hz: f64,
    /// Bots that joined their lobby.
    pub connected: usize,
    /// Bots that never joined.
    pub failed: usize,
    /// Seconds from the first connection until every bot had joined or failed.
    pub connect_secs: f64,
    /// Warm-up, seconds.
    pub warmup_secs: f64,
    /// The measured window, seconds.
    pub window_secs: f64,
    /// When the window opened and closed, seconds since the Unix epoch (wall clock).
    pub window_unix: (f64, f64),
    /// Snapshots per second per bot, over the bots that joined.
    pub snapshot_rate: RateStats,
    /// Ticks whose snapshot some bot never got (the server skipped it for that bot).
    pub snapshots_skipped: u64,
    /// Inputs sent per bot per second.
    pub inputs_per_bot_per_s: f64,
    /// Input-to-acknowledgement latency, ms: from sending input N to receiving the first
    /// snapshot that acknowledges N.
    pub latency_ms: Option<Quantiles>,
    /// Inputs acknowledged too late for the bots' ring to time them (> 2 s).
    pub acks_untimed: u64,
    /// Snapshot arrival after the lobby's tick grid (as each bot sees the grid), ms: tick
    /// lateness plus delivery delay.
    pub snapshot_lateness_ms: Option<Quantiles>,
    /// WebSocket bytes received per bot per second (payload and framing).
    pub bytes_in_per_bot_per_s: f64,
    /// WebSocket bytes sent per bot per second (payload and framing).
    pub bytes_out_per_bot_per_s: f64,
    /// Player-ticks in the window: over the bots, ticks from the first to the last
    /// snapshot received in it.
    pub player_ticks: u64,
    /// Join latency, split by whether the bot followed a Redirect (cluster mode).
    pub join_latency_ms: JoinLatency,
    /// Shooter bots: what they fired, hit and killed.
    pub shooter: Option<GameFigures>,
    /// Why bots failed to join, by kind.
    pub failures: BTreeMap<String, u64>,
    /// Why joined bots lost their connection or lobby, by kind.
    pub disconnects: BTreeMap<String, u64>,
    /// The server process, with `--server-pid`.
    pub server: Option<ServerFigures>,
    /// The server's tick time and tick lateness over the window, from its /metrics.
    pub server_ticks: Option<TickFigures>,
    /// The bots' own process.
    pub bots_process: BotsFigures,
    /// CPU used on the machine by processes other than the server and the bots, in
    /// cores (only known with `--server-pid`); more than a few percent disturbs figures.
    pub other_cpu_cores: Option<f64>,
    /// CPU time the hypervisor took (steal), in cores.
    pub steal_cores: Option<f64>,
    /// The service-level objective.
    pub slo: Slo,
    /// What makes figures doubtful.
    pub warnings: Vec<String>,
}

/// Join latency: connect to Welcome, plus the lobby request to Joined (a redirect and
/// the second connection included), ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct JoinLatency {
    /// Bots that joined on the node they connected to.
    pub direct: Option<Quantiles>,
    /// Bots that followed a Redirect to another node.
    pub redirected: Option<Quantiles>,
}

/// Shooter bots' play over the window: totals, and per bot per minute.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GameFigures {
    /// Their own bullets that appeared in their snapshots.
    pub shots: u64,
    /// Hits they scored (`Hit` events).
    pub hits: u64,
    /// Kills they scored (`Kill` events).
    pub kills: u64,
    /// Times they died.
    pub deaths: u64,
    /// Bullets of anyone that appeared in their snapshots.
    pub bullets_seen: u64,
    /// `Hit` events of anyone they received.
    pub hits_seen: u64,
    /// `Kill` events of anyone they received.
    pub kills_seen: u64,
    /// Shots per bot per minute.
    pub shots_per_bot_per_min: f64,
    /// Hits per bot per minute.
    pub hits_per_bot_per_min: f64,
    /// Kills per bot per minute.
    pub kills_per_bot_per_min: f64,
}

/// Per-bot snapshot rates.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RateStats {
    /// Slowest bot.
    pub min: f64,
    /// 1st percentile over bots: 99% of bots got at least this.
    pub p1: f64,
    /// Median bot.
    pub p50: f64,
    /// Fastest bot.
    pub max: f64,
    /// `p1` as a fraction of the tick rate.
    pub p1_fraction: f64,
}

/// Quantiles of a histogram, ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Quantiles {
    /// Values recorded.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Quantiles {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| {
            let ms = |us: u64| us as f64 / 1000.0;
            Self {
                samples: h.len(),
                p50: ms(h.value_at_quantile(0.50)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }
        })
    }
}

/// The server process over the window (with several `--server-pid`, their sums).
#[derive(Debug, Clone, Serialize)]
pub struct ServerFigures {
    /// Its pids.
    pub pids: Vec<u32>,
    /// User CPU, seconds.
    pub cpu_user_s: f64,
    /// Kernel CPU, seconds.
    pub cpu_sys_s: f64,
    /// CPU used per second of the window (1.0 = one core).
    pub cpu_cores: f64,
    /// User + kernel CPU per player-tick, µs: the comparable figure.
    pub cpu_us_per_player_tick: Option<f64>,
    /// Of which user space, µs.
    pub user_us_per_player_tick: Option<f64>,
    /// RSS before the bots connected, MB.
    pub rss_mb_before: Option<f64>,
    /// RSS at the end of the window, MB.
    pub rss_mb_end: Option<f64>,
    /// RSS growth per connected bot, KB.
    pub rss_kb_per_connection: Option<f64>,
}

/// The bots' own process over the window.
#[derive(Debug, Clone, Serialize)]
pub struct BotsFigures {
    /// User + kernel CPU, seconds.
    pub cpu_s: f64,
    /// CPU used per second of the window (1.0 = one core).
    pub cpu_cores: f64,
    /// CPU per player-tick (one snapshot received and one input sent), µs.
    pub cpu_us_per_player_tick: Option<f64>,
    /// Runtime threads.
    pub threads: usize,
    /// CPUs the bots may run on.
    pub cpus_allowed: Option<String>,
    /// How late the bots' input timers fired, p99 and max, ms.
    pub loop_delay_p99_ms: Option<f64>,
    /// Largest delay, ms.
    pub loop_delay_max_ms: Option<f64>,
    /// The bots used at least 90% of the cores they can use: the figures measure the
    /// bots, not the server.
    pub saturated: bool,
}

/// The SLO and whether the run met it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Slo {
    /// Required p1 snapshot rate, as a fraction of the tick rate.
    pub min_rate: f64,
    /// Required latency p99, ms.
    pub p99_ms: f64,
    /// p1 rate held.
    pub rate_met: bool,
    /// Latency p99 held.
    pub latency_met: bool,
    /// Every bot joined and none was dropped.
    pub all_connected: bool,
    /// All of the above.
    pub met: bool,
}

/// What a run measured, before it becomes a report.
#[derive(Debug)]
pub(crate) struct Samples {
    pub(crate) results: Vec<BotResult>,
    pub(crate) hists: Hists,
    pub(crate) window_secs: f64,
    pub(crate) window_unix: (f64, f64),
    pub(crate) connect_secs: f64,
    pub(crate) tick_rate: u32,
    pub(crate) game: Option<String>,
    pub(crate) server_cpu: Option<CpuTime>,
    pub(crate) server_rss_before: Option<u64>,
    pub(crate) server_rss_end: Option<u64>,
    pub(crate) bots_cpu: CpuTime,
    pub(crate) system: Option<SystemCpu>,
    pub(crate) ticks: Option<TickFigures>,
    pub(crate) bots_threads: usize,
    pub(crate) bots_cpus_allowed: Option<String>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

const MB: f64 = 1024.0 * 1024.0;

impl Report {
    pub(crate) fn new(opts: &Options, s: Samples) -> Self {
        let window = s.window_secs.max(1e-9);
        let joined: Vec<&BotResult> = s.results.iter().filter(|r| r.joined).collect();
        let connected = joined.len();
        let failed = s.results.len() - connected;
        let tally = |kinds: &mut dyn Iterator<Item = &String>| {
            let mut map = BTreeMap::new();
            for kind in kinds {
                *map.entry(kind.clone()).or_insert(0u64) += 1;
            }
            map
        };
        let failures = tally(&mut s.results.iter().filter_map(|r| r.failure.as_ref()));
        let disconnects = tally(&mut s.results.iter().filter_map(|r| r.disconnect.as_ref()));

        let mut rates: Vec<f64> = joined
            .iter()
            .map(|r| f64::from(r.snapshots) / window)
            .collect();
        rates.sort_by(f64::total_cmp);
        let tick_rate = f64::from(s.tick_rate);
        let p1 = percentile(&rates, 0.01);
        let snapshot_rate = RateStats {
            min: rates.first().copied().unwrap_or(0.0),
            p1,
            p50: percentile(&rates, 0.50),
            max: rates.last().copied().unwrap_or(0.0),
            p1_fraction: if tick_rate > 0.0 { p1 / tick_rate } else { 0.0 },
        };
        let per_bot = |total: u64| {
            if connected == 0 {
                0.0
            } else {
                total as f64 / connected as f64 / window
            }
        };
        let player_ticks: u64 = joined
            .iter()
            .filter_map(|r| r.ticks)
            .map(|(a, b)| u64::from(b.wrapping_sub(a)) + 1)
            .sum();
        let per_player_tick =
            |secs: f64| (player_ticks > 0).then(|| secs * 1e6 / player_ticks as f64);

        let server = s
            .server_cpu
            .filter(|_| !opts.server_pid.is_empty())
            .map(|cpu| {
                let rss_mb_before = s.server_rss_before.map(|b| b as f64 / MB);
                let rss_mb_end = s.server_rss_end.map(|b| b as f64 / MB);
                ServerFigures {
                    pids: opts.server_pid.clone(),
                    cpu_user_s: cpu.user,
                    cpu_sys_s: cpu.sys,
                    cpu_cores: cpu.total() / window,
                    cpu_us_per_player_tick: per_player_tick(cpu.total()),
                    user_us_per_player_tick: per_player_tick(cpu.user),
                    rss_mb_before,
                    rss_mb_end,
                    rss_kb_per_connection: s
                        .server_rss_before
                        .zip(s.server_rss_end)
                        .filter(|_| connected > 0)
                        .map(|(b, e)| e.saturating_sub(b) as f64 / 1024.0 / connected as f64),
                }
            });

        let usable = s
            .bots_cpus_allowed
            .as_deref()
            .map_or(s.bots_threads, |l| count_cpus(l).min(s.bots_threads))
            .max(1);
        let bots_cores = s.bots_cpu.total() / window;
        let loop_delay = Quantiles::of(&s.hists.loop_delay);
        let bots_process = BotsFigures {
            cpu_s: s.bots_cpu.total(),
            cpu_cores: bots_cores,
            cpu_us_per_player_tick: per_player_tick(s.bots_cpu.total()),
            threads: s.bots_threads,
            cpus_allowed: s.bots_cpus_allowed.clone(),
            loop_delay_p99_ms: loop_delay.map(|q| q.p99),
            loop_delay_max_ms: loop_delay.map(|q| q.max),
            saturated: bots_cores >= 0.9 * usable as f64,
        };

        let latency_ms = Quantiles::of(&s.hists.latency);
        let rate_met = connected > 0 && snapshot_rate.p1_fraction >= opts.slo_min_rate;
        let latency_met = latency_ms.is_some_and(|l| l.p99 <= opts.slo_p99_ms)
            || (latency_ms.is_none() && opts.input_hz == Some(0.0));
        let all_connected = failed == 0 && disconnects.is_empty();
        let slo = Slo {
            min_rate: opts.slo_min_rate,
            p99_ms: opts.slo_p99_ms,
            rate_met,
            latency_met,
            all_connected,
            met: rate_met && latency_met && all_connected,
        };

        let other_cpu_cores = s.system.zip(s.server_cpu).map(|(sys, server)| {
            ((sys.busy - server.total() - s.bots_cpu.total()) / window).max(0.0)
        });
        let steal_cores = s.system.map(|sys| sys.steal / window);

        let mut warnings = Vec::new();
        if let Some(other) = other_cpu_cores.filter(|&c| c > 0.05) {
            warnings.push(format!(
                "other processes used {:.0}% of a core during the window: the machine was \
                 not quiet, figures are disturbed",
                other * 100.0
            ));
        }
        if let Some(steal) = steal_cores.filter(|&c| c > 0.02) {
            warnings.push(format!(
                "the hypervisor stole {:.0}% of a core during the window",
                steal * 100.0
            ));
        }
        if bots_process.saturated {
            warnings.push(format!(
                "the bots used {:.0}% of the {usable} core(s) they can use: these figures \
                 measure the bots, not the server",
                bots_cores / usable as f64 * 100.0
            ));
        }
        if let Some(p99) = bots_process.loop_delay_p99_ms.filter(|&ms| ms > 5.0) {
            warnings.push(format!(
                "the bots' input timers fired {p99:.1} ms late (p99): their core is busy, \
                 latency figures include the bots' own delay"
            ));
        }
        let acks_untimed: u64 = joined.iter().map(|r| u64::from(r.acks_beyond_ring)).sum();
        if acks_untimed > 0 {
            warnings.push(format!(
                "{acks_untimed} inputs were acknowledged more than 2 s after they were sent \
                 and are not in the latency histogram"
            ));
        }
        if s.results.len() < opts.bots as usize {
            warnings.push("some bots are missing from the results".into());
        }

        let lobby_ids: std::collections::BTreeSet<u32> =
            joined.iter().filter_map(|r| r.lobby).collect();
        let lobbies = if lobby_ids.is_empty() {
            opts.bots.div_ceil(u32::from(opts.players_per_lobby))
        } else {
            u32::try_from(lobby_ids.len()).unwrap_or(u32::MAX)
        };
        let shooter = shooter_figures(&joined, window);
        let join_latency_ms = JoinLatency {
            direct: Quantiles::of(&s.hists.join_direct),
            redirected: Quantiles::of(&s.hists.join_redirected),
        };

        Report {
            url: opts.url.clone(),
            bots: opts.bots,
            players_per_lobby: opts.players_per_lobby,
            lobbies,
            join: opts.join,
            game: s.game,
            join_latency_ms,
            shooter,
            behavior: opts.behavior,
            delta: opts.delta,
            delta_snapshots: joined.iter().map(|r| u64::from(r.deltas)).sum(),
            tick_rate: s.tick_rate,
            input_hz: opts.input_hz.unwrap_or(tick_rate),
            connected,
            failed,
            connect_secs: s.connect_secs,
            warmup_secs: opts.warmup,
            window_secs: s.window_secs,
            window_unix: s.window_unix,
            snapshot_rate,
            snapshots_skipped: joined.iter().map(|r| u64::from(r.skipped)).sum(),
            inputs_per_bot_per_s: per_bot(joined.iter().map(|r| u64::from(r.inputs)).sum()),
            latency_ms,
            acks_untimed,
            snapshot_lateness_ms: Quantiles::of(&s.hists.lateness),
            bytes_in_per_bot_per_s: per_bot(joined.iter().map(|r| r.bytes_in).sum()),
            bytes_out_per_bot_per_s: per_bot(joined.iter().map(|r| r.bytes_out).sum()),
            player_ticks,
            failures,
            disconnects,
            server,
            server_ticks: s.ticks,
            bots_process,
            other_cpu_cores,
            steal_cores,
            slo,
            warnings,
        }
    }
}

/// The shooter bots' figures, if any bot played the shooter.
fn shooter_figures(joined: &[&BotResult], window: f64) -> Option<GameFigures> {
    let counts: Vec<_> = joined.iter().filter_map(|r| r.shooter).collect();
    if counts.is_empty() {
        return None;
    }
    let sum = |f: fn(&crate::shooter::Counts) -> u32| -> u64 {
        counts.iter().map(|c| u64::from(f(c))).sum()
    };
    let per_min = |total: u64| total as f64 / counts.len() as f64 / window * 60.0;
    let (shots, hits, kills) = (sum(|c| c.shots), sum(|c| c.hits), sum(|c| c.kills));
    Some(GameFigures {
        shots,
        hits,
        kills,
        deaths: sum(|c| c.deaths),
        bullets_seen: sum(|c| c.bullets_seen),
        hits_seen: sum(|c| c.hits_seen),
        kills_seen: sum(|c| c.kills_seen),
        shots_per_bot_per_min: per_min(shots),
        hits_per_bot_per_min: per_min(hits),
        kills_per_bot_per_min: per_min(kills),
    })
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}{unit}"))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ticksync-bots: {} bots in {} lobbies of {} ({}) against {} ({} Hz ticks, {:.0} \
             Hz inputs, {:?}{})",
            self.bots,
            self.lobbies,
            self.players_per_lobby,
            self.game.as_deref().unwrap_or("game unknown"),
            self.url,
            self.tick_rate,
            self.input_hz,
            self.behavior,
            if self.delta { ", delta snapshots" } else { "" }
        )?;
        writeln!(
            f,
            "  connected       {} of {} ({} failed) in {:.1} s; warm-up {:.0} s; window {:.1} s",
            self.connected,
            self.bots,
            self.failed,
            self.connect_secs,
            self.warmup_secs,
            self.window_secs
        )?;
        let r = &self.snapshot_rate;
        writeln!(
            f,
            "  snapshots/bot/s p1 {:.2} ({:.1}% of the tick rate)   p50 {:.2}   min {:.2}   \
             max {:.2}   skipped {}   deltas {}",
            r.p1,
            r.p1_fraction * 100.0,
            r.p50,
            r.min,
            r.max,
            self.snapshots_skipped,
            self.delta_snapshots
        )?;
        match &self.latency_ms {
            Some(l) => writeln!(
                f,
                "  latency (ms)    p50 {:.1}   p99 {:.1}   p999 {:.1}   max {:.1}   mean {:.1}   \
                 ({} acknowledged inputs)",
                l.p50, l.p99, l.p999, l.max, l.mean, l.samples
            )?,
            None => writeln!(f, "  latency (ms)    no acknowledged inputs")?,
        }
        if let Some(l) = &self.snapshot_lateness_ms {
            writeln!(
                f,
                "  snapshot lateness against the tick grid (ms)   p50 {:.2}   p99 {:.2}   max {:.2}",
                l.p50, l.p99, l.max
            )?;
        }
        let join = |q: &Option<Quantiles>| {
            q.map_or_else(
                || "none".to_owned(),
                |q| {
                    format!(
                        "{} bots, p50 {:.1} ms, p99 {:.1} ms",
                        q.samples, q.p50, q.p99
                    )
                },
            )
        };
        writeln!(
            f,
            "  join latency    direct: {}; redirected: {}",
            join(&self.join_latency_ms.direct),
            join(&self.join_latency_ms.redirected)
        )?;
        if let Some(g) = &self.shooter {
            writeln!(
                f,
                "  shooter         per bot per minute: {:.1} shots, {:.1} hits, {:.2} kills \
                 (totals: {} shots, {} hits, {} kills, {} deaths; seen: {} bullets, {} hits, \
                 {} kills)",
                g.shots_per_bot_per_min,
                g.hits_per_bot_per_min,
                g.kills_per_bot_per_min,
                g.shots,
                g.hits,
                g.kills,
                g.deaths,
                g.bullets_seen,
                g.hits_seen,
                g.kills_seen
            )?;
        }
        writeln!(
            f,
            "  bytes/bot/s     in {:.0} B   out {:.0} B   (WebSocket payload and framing; \
             inputs {:.1}/s)",
            self.bytes_in_per_bot_per_s, self.bytes_out_per_bot_per_s, self.inputs_per_bot_per_s
        )?;
        if let Some(s) = &self.server {
            writeln!(
                f,
                "  server pid {:<6} CPU {:.1}% of a core (user {:.2} s, sys {:.2} s) = {} per \
                 player-tick ({} user)",
                s.pids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("+"),
                s.cpu_cores * 100.0,
                s.cpu_user_s,
                s.cpu_sys_s,
                opt(s.cpu_us_per_player_tick, 2, " us"),
                opt(s.user_us_per_player_tick, 2, " us"),
            )?;
            writeln!(
                f,
                "                  RSS {} at the end ({} before the bots; {} per connection)",
                opt(s.rss_mb_end, 1, " MB"),
                opt(s.rss_mb_before, 1, " MB"),
                opt(s.rss_kb_per_connection, 1, " KB"),
            )?;
        }
        if let Some(t) = &self.server_ticks {
            let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("<= {v:.0} us"));
            if let Some(d) = &t.tick_time {
                writeln!(
                    f,
                    "  server ticks    {} in the window ({} overran); tick time p50 {}   p99 {}   \
                     mean {:.1} us",
                    t.ticks,
                    t.overruns,
                    us(d.p50_le_us),
                    us(d.p99_le_us),
                    d.mean_us
                )?;
            }
            if let Some(d) = &t.fanout {
                writeln!(
                    f,
                    "                  tick fanout (socket writes) p50 {}   p99 {}   mean {:.1} us",
                    us(d.p50_le_us),
                    us(d.p99_le_us),
                    d.mean_us
                )?;
            }
            if let Some(l) = &t.lateness {
                writeln!(
                    f,
                    "                  tick start lateness p50 {}   p99 {}   mean {:.1} us",
                    us(l.p50_le_us),
                    us(l.p99_le_us),
                    l.mean_us
                )?;
            }
        }
        let b = &self.bots_process;
        writeln!(
            f,
            "  bots            CPU {:.1}% of a core = {} per player-tick; {} thread(s) on \
             CPUs {}; timer delay p99 {} max {}",
            b.cpu_cores * 100.0,
            opt(b.cpu_us_per_player_tick, 2, " us"),
            b.threads,
            b.cpus_allowed.as_deref().unwrap_or("?"),
            opt(b.loop_delay_p99_ms, 2, " ms"),
            opt(b.loop_delay_max_ms, 2, " ms"),
        )?;
        if let Some(other) = self.other_cpu_cores {
            writeln!(
                f,
                "  other load      {:.1}% of a core used by other processes; steal {:.1}%",
                other * 100.0,
                self.steal_cores.unwrap_or(0.0) * 100.0
            )?;
        }
        for (title, map) in [
            ("failures", &self.failures),
            ("disconnects", &self.disconnects),
        ] {
            if map.is_empty() {
                writeln!(f, "  {title:<15} none")?;
            } else {
                for (kind, n) in map {
                    writeln!(f, "  {title:<15} {n} x {kind}")?;
                }
            }
        }
        writeln!(
            f,
            "  SLO             p1 rate >= {:.0}% of the tick rate: {}; latency p99 <= {:.0} ms: \
             {}; every bot connected: {}",
            self.slo.min_rate * 100.0,
            met(self.slo.rate_met),
            self.slo.p99_ms,
            met(self.slo.latency_met),
            met(self.slo.all_connected)
        )?;
        for w in &self.warnings {
            writeln!(f, "  WARNING: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.01), 2.0);
        assert_eq!(percentile(&v, 0.5), 100.0);
        assert_eq!(percentile(&v, 1.0), 200.0);
        assert_eq!(percentile(&[3.0], 0.01), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
