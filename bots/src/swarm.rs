//! The run: start the bots at the connect rate, wait until every one has joined (or
//! failed), warm up, open the measured window, sample /proc at both ends, stop the bots
//! and gather what they saw into a [`Report`].

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticksync_client::lean::Target;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::bot::{self, BotResult, Role, Slot};
use crate::inputs::Buckets;
use crate::metrics;
use crate::options::{Behavior, Options};
use crate::procfs::{self, Proc};
use crate::progress::Progress;
use crate::report::{Report, Samples};

/// Phases of a run, in order.
pub(crate) const CONNECTING: u8 = 0;
pub(crate) const WARMUP: u8 = 1;
pub(crate) const MEASURING: u8 = 2;
pub(crate) const DONE: u8 = 3;

/// Longest latency the histograms hold: a minute, in microseconds.
const HIST_MAX_US: u64 = 60_000_000;
/// How long the bots get to stop once told.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// What every bot of a run shares.
#[derive(Debug)]
pub(crate) struct Swarm {
    pub(crate) target: Target,
    pub(crate) read_buffer: usize,
    pub(crate) input_hz: Option<f64>,
    pub(crate) behavior: Behavior,
    pub(crate) seed: u64,
    /// Ask for delta snapshots.
    pub(crate) delta: bool,
    input_phases: u16,
    /// Zero of the bots' microsecond clock; also when bot 0 connects.
    epoch: Instant,
    connect_rate: f64,
    /// One of the phase constants; bots read it at every event.
    pub(crate) phase: AtomicU8,
    pub(crate) joined: AtomicUsize,
    /// Joined or failed.
    pub(crate) settled: AtomicUsize,
    pub(crate) disconnected: AtomicUsize,
    /// Snapshots received, all phases (for the progress display).
    pub(crate) snapshots: AtomicU64,
    /// The server's tick rate, from the first `Welcome` (0 until then).
    tick_rate: AtomicU32,
    hists: Mutex<Hists>,
    /// The input buckets, started by the first bot to join (the period comes from the
    /// server's tick rate).
    buckets: OnceLock<Buckets>,
    pub(crate) cancel: CancellationToken,
}

/// The run's histograms, in microseconds.
#[derive(Debug)]
pub(crate) struct Hists {
    /// Input-to-acknowledgement latency in the window.
    pub(crate) latency: Histogram<u64>,
    /// The same since the progress display last looked.
    pub(crate) recent_latency: Histogram<u64>,
    /// How late the bots' input timers fired (the bots' own event-loop delay).
    pub(crate) loop_delay: Histogram<u64>,
    /// Snapshot arrival against the lobby's tick grid.
    pub(crate) lateness: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("constant bounds are valid")
}

impl Swarm {
    /// When bot `index` may connect.
    pub(crate) fn start_slot(&self, index: u32) -> Instant {
        self.epoch + Duration::from_secs_f64(f64::from(index) / self.connect_rate)
    }

    /// Microseconds since the epoch.
    pub(crate) fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    pub(crate) fn note_tick_rate(&self, rate: u16) {
        let _ = self.tick_rate.compare_exchange(
            0,
            u32::from(rate),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn hists(&self) -> std::sync::MutexGuard<'_, Hists> {
        self.hists.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the latencies a snapshot acknowledged and, in the window, its lateness.
    pub(crate) fn record_snapshot(&self, latencies_us: &[u64], lateness_us: Option<u64>) {
        if latencies_us.is_empty() && lateness_us.is_none() {
            return;
        }
        let measuring = self.phase.load(Ordering::Relaxed) == MEASURING;
        let mut h = self.hists();
        for &us in latencies_us {
            h.recent_latency.saturating_record(us);
            if measuring {
                h.latency.saturating_record(us);
            }
        }
        if let Some(us) = lateness_us {
            h.lateness.saturating_record(us);
        }
    }

    pub(crate) fn record_loop_delay(&self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.hists().loop_delay.saturating_record(us);
    }

    /// p99 of the latencies since the last call, in ms, and forgets them.
    pub(crate) fn take_recent_p99_ms(&self) -> Option<f64> {
        let mut h = self.hists();
        let p99 = (!h.recent_latency.is_empty())
            .then(|| h.recent_latency.value_at_quantile(0.99) as f64 / 1000.0);
        h.recent_latency.reset();
        p99
    }

    /// The input buckets, started on first use with inputs every `period`.
    pub(crate) fn buckets(self: &Arc<Self>, period: Duration) -> &Buckets {
        self.buckets
            .get_or_init(|| Buckets::start(self, period, self.input_phases))
    }

    pub(crate) fn tick_rate(&self) -> u32 {
        self.tick_rate.load(Ordering::Relaxed)
    }
}

/// Runs the bots against the server and returns the report. Must run inside a tokio
/// runtime with time and I/O enabled; for figures worth having, a single-threaded one
/// on a core of its own.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    check(opts)?;
    let target = Target::parse(&opts.url).map_err(|e| Error::Url(e.to_string()))?;
    let bots = opts.bots;
    let swarm = Arc::new(Swarm {
        target,
        read_buffer: opts.read_buffer.max(64),
        input_hz: opts.input_hz,
        behavior: opts.behavior,
        seed: opts.seed,
        delta: opts.delta,
        input_phases: opts.input_phases,
        epoch: Instant::now() + Duration::from_millis(10),
        connect_rate: opts.connect_rate,
        phase: AtomicU8::new(CONNECTING),
        joined: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        disconnected: AtomicUsize::new(0),
        snapshots: AtomicU64::new(0),
        tick_rate: AtomicU32::new(0),
        hists: Mutex::new(Hists {
            latency: histogram(),
            recent_latency: histogram(),
            loop_delay: histogram(),
            lateness: histogram(),
        }),
        buckets: OnceLock::new(),
        cancel: CancellationToken::new(),
    });
    let server = opts.server_pid.map(Proc::Pid);
    let server_rss_before = server.and_then(|p| procfs::rss_bytes(p).ok());
    if let Some(Proc::Pid(pid)) = server
        && server_rss_before.is_none()
    {
        return Err(Error::ServerPid(pid));
    }

    let progress = Progress::start(Arc::clone(&swarm), opts);
    let mut tasks = JoinSet::new();
    spawn_bots(&swarm, opts, &mut tasks);

    // Every bot joins or fails within its setup limit after its start slot.
    let connect_started = Instant::now();
    let last_slot = swarm.start_slot(bots.saturating_sub(1));
    let settle_deadline = last_slot + Duration::from_secs(40);
    let bots_usize = usize::try_from(bots).unwrap_or(usize::MAX);
    while swarm.settled.load(Ordering::Acquire) < bots_usize && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();

    swarm.phase.store(WARMUP, Ordering::Relaxed);
    progress.phase("warm-up", opts.warmup);
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;

    let metrics_0 = metrics::scrape(&swarm.target).await;
    let server_cpu_0 = server.map(procfs::cpu_time).transpose().ok().flatten();
    let bots_cpu_0 = procfs::cpu_time(Proc::Current).ok();
    let system_0 = procfs::system_cpu().ok();
    let t0 = Instant::now();
    swarm.phase.store(MEASURING, Ordering::Relaxed);
    progress.phase("measuring", opts.duration);
    tokio::time::sleep(Duration::from_secs_f64(opts.duration)).await;
    swarm.phase.store(DONE, Ordering::Relaxed);
    let window_secs = t0.elapsed().as_secs_f64();
    let server_cpu = server_cpu_0.and_then(|c0| {
        let c1 = server.map(procfs::cpu_time)?.ok()?;
        Some(c1.since(c0))
    });
    let bots_cpu = bots_cpu_0.and_then(|c0| Some(procfs::cpu_time(Proc::Current).ok()?.since(c0)));
    let system = system_0.and_then(|s0| Some(procfs::system_cpu().ok()?.since(s0)));
    let server_rss_end = server.and_then(|p| procfs::rss_bytes(p).ok());
    let metrics_1 = metrics::scrape(&swarm.target).await;
    let ticks = metrics_0
        .zip(metrics_1)
        .and_then(|(m0, m1)| metrics::tick_figures(&m0, &m1));
    progress.finish();

    swarm.cancel.cancel();
    let results = gather(&mut tasks).await;
    let hists = std::mem::replace(
        &mut *swarm.hists(),
        Hists {
            latency: histogram(),
            recent_latency: histogram(),
            loop_delay: histogram(),
            lateness: histogram(),
        },
    );
    let samples = Samples {
        results,
        hists,
        window_secs,
        connect_secs,
        tick_rate: swarm.tick_rate(),
        server_cpu,
        server_rss_before,
        server_rss_end,
        bots_cpu: bots_cpu.unwrap_or_default(),
        system,
        ticks,
        bots_threads: runtime_threads(),
        bots_cpus_allowed: procfs::cpus_allowed(Proc::Current),
    };
    Ok(Report::new(opts, samples))
}

fn check(opts: &Options) -> Result<(), Error> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !(positive(opts.duration) && opts.warmup.is_finite() && opts.warmup >= 0.0) {
        return Err(Error::Options(
            "--duration must be > 0 and --warmup >= 0".into(),
        ));
    }
    if !positive(opts.connect_rate) {
        return Err(Error::Options("--connect-rate must be > 0".into()));
    }
    if opts
        .input_hz
        .is_some_and(|hz| !(hz.is_finite() && hz >= 0.0))
    {
        return Err(Error::Options("--input-hz must be >= 0".into()));
    }
    Ok(())
}

fn spawn_bots(swarm: &Arc<Swarm>, opts: &Options, tasks: &mut JoinSet<BotResult>) {
    let p = u32::from(opts.players_per_lobby);
    let mut slot: Option<watch::Receiver<Slot>> = None;
    for index in 0..opts.bots {
        let role = if index % p == 0 {
            let (lobby, rx) = watch::channel(Slot::Pending);
            slot = Some(rx);
            Role::Leader {
                group: index / p,
                size: opts.players_per_lobby,
                lobby,
            }
        } else {
            match &slot {
                Some(rx) => Role::Follower(rx.clone()),
                None => unreachable!("index 0 is a leader"),
            }
        };
        tasks.spawn(bot::run(Arc::clone(swarm), index, role));
    }
}

async fn gather(tasks: &mut JoinSet<BotResult>) -> Vec<BotResult> {
    let mut results = Vec::with_capacity(tasks.len());
    let deadline = tokio::time::Instant::now() + STOP_LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(result))) => results.push(result),
            Ok(Some(Err(e))) => results.push(BotResult {
                failure: Some(format!("bot task ended abnormally ({e})")),
                ..BotResult::default()
            }),
            Ok(None) => break,
            Err(_) => {
                // A bot stuck in a write to a server that stopped reading: count it.
                let stuck = tasks.len();
                tasks.abort_all();
                results.extend((0..stuck).map(|_| BotResult {
                    joined: true,
                    disconnect: Some("stop: bot did not stop in time".into()),
                    ..BotResult::default()
                }));
                break;
            }
        }
    }
    results
}

fn runtime_threads() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers())
}
