//! The run: start the bots at the connect rate, wait until every one has joined (or
//! failed), warm up, open the measured window, sample /proc at both ends, stop the bots
//! and gather what they saw into a [`Report`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticksync_client::lean::Target;
use ticksync_protocol::GameOptions;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Error;
use crate::bot::{self, BotResult, Role, Slot};
use crate::inputs::Buckets;
use crate::metrics;
use crate::options::{Behavior, GameChoice, JoinMode, Options};
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
    /// How bots find their lobby.
    pub(crate) join: JoinMode,
    /// `--game`: the game every lobby must play.
    pub(crate) game: Option<GameChoice>,
    /// Options of the lobbies the bots create.
    pub(crate) lobby_options: GameOptions,
    /// The game the lobbies play, from the first `Joined`'s schema.
    game_name: OnceLock<String>,
    input_phases: u16,
    /// Zero of the bots' microsecond clock; also when bot 0 connects.
    epoch: Instant,
    connect_rate: f64,
    /// One of the phase constants; bots read it at every event.
    pub(crate) phase: AtomicU8,
    /// Whether anything reads `recent_latency` (the progress display).
    pub(crate) recent: AtomicBool,
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
    pub(crate) stop: Stop,
}

/// The run's stop signal, made to be polled at every event of every bot: a flag, and
/// the wakers of the tasks waiting on it, each registered once. (A `CancellationToken`
/// future locks a mutex at every poll, which was a tenth of the bots' user-space
/// instructions.)
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Stop {
    /// Stops: every [`Stopped`] future completes.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in wakers {
            waker.wake();
        }
    }

    /// A future that completes once the run stops. Polling it again from the same task
    /// costs a flag load and a waker comparison.
    pub(crate) fn stopped(&self) -> Stopped<'_> {
        Stopped {
            stop: self,
            waker: None,
        }
    }
}

/// See [`Stop::stopped`].
#[derive(Debug)]
pub(crate) struct Stopped<'a> {
    stop: &'a Stop,
    /// The waker registered with `stop`, if any.
    waker: Option<Waker>,
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.stop.stopped.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            self.stop
                .wakers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(waker.clone());
            self.waker = Some(waker);
            // `stop` sets the flag before it takes the wakers: either it took this one,
            // or the flag is visible now.
            if self.stop.stopped.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

/// The run's histograms, in microseconds.
#[derive(Debug)]
pub(crate) struct Hists {
    /// Input-to-acknowledgement latency in the window.
    pub(crate) latency: Histogram<u64>,
    /// The same since the progress display last looked (recorded only while it shows).
    pub(crate) recent_latency: Histogram<u64>,
    /// How late the bots' input timers fired (the bots' own event-loop delay).
    pub(crate) loop_delay: Histogram<u64>,
    /// Snapshot arrival against the lobby's tick grid.
    pub(crate) lateness: Histogram<u64>,
    /// Join latency (connect to Welcome, lobby request to Joined) of bots that joined
    /// on the node they connected to.
    pub(crate) join_direct: Histogram<u64>,
    /// The same for bots that followed a Redirect to another node.
    pub(crate) join_redirected: Histogram<u64>,
}

impl Hists {
    fn new() -> Self {
        Self {
            latency: histogram(),
            recent_latency: histogram(),
            loop_delay: histogram(),
            lateness: histogram(),
            join_direct: histogram(),
            join_redirected: histogram(),
        }
    }
}

impl Hists {
    /// Records an input-to-acknowledgement latency: in the window's histogram when
    /// `measuring`, in the progress display's when `recent`.
    pub(crate) fn record_latency(&mut self, us: u64, measuring: bool, recent: bool) {
        if recent {
            self.recent_latency.saturating_record(us);
        }
        if measuring {
            self.latency.saturating_record(us);
        }
    }
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
        // Not `as_micros`: its u128 arithmetic was a visible cost at one call per event.
        let d = at.saturating_duration_since(self.epoch);
        d.as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()))
    }

    pub(crate) fn note_tick_rate(&self, rate: u16) {
        let _ = self.tick_rate.compare_exchange(
            0,
            u32::from(rate),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    pub(crate) fn note_game(&self, name: &str) {
        let _ = self.game_name.get_or_init(|| name.to_owned());
    }

    /// Records a bot's join latency.
    pub(crate) fn record_join(&self, latency: Duration, redirected: bool) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut h = self.hists();
        if redirected {
            h.join_redirected.saturating_record(us);
        } else {
            h.join_direct.saturating_record(us);
        }
    }

    pub(crate) fn hists(&self) -> MutexGuard<'_, Hists> {
        self.hists.lock().unwrap_or_else(PoisonError::into_inner)
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
        join: opts.join,
        game: opts.game,
        lobby_options: opts.lobby_game_options(),
        game_name: OnceLock::new(),
        input_phases: opts.input_phases,
        epoch: Instant::now() + Duration::from_millis(10),
        connect_rate: opts.connect_rate,
        phase: AtomicU8::new(CONNECTING),
        recent: AtomicBool::new(false),
        joined: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        disconnected: AtomicUsize::new(0),
        snapshots: AtomicU64::new(0),
        tick_rate: AtomicU32::new(0),
        hists: Mutex::new(Hists::new()),
        buckets: OnceLock::new(),
        stop: Stop::default(),
    });
    let servers: Vec<Proc> = opts.server_pid.iter().copied().map(Proc::Pid).collect();
    let mut server_rss_before = None;
    for (&pid, &p) in opts.server_pid.iter().zip(&servers) {
        let rss = procfs::rss_bytes(p).map_err(|_| Error::ServerPid(pid))?;
        *server_rss_before.get_or_insert(0) += rss;
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
    let server_cpu_0 = procfs::cpu_time_sum(&servers);
    let bots_cpu_0 = procfs::cpu_time(Proc::Current).ok();
    let system_0 = procfs::system_cpu().ok();
    let t0 = Instant::now();
    let window_unix_0 = unix_secs();
    swarm.phase.store(MEASURING, Ordering::Relaxed);
    progress.phase("measuring", opts.duration);
    tokio::time::sleep(Duration::from_secs_f64(opts.duration)).await;
    swarm.phase.store(DONE, Ordering::Relaxed);
    let window_secs = t0.elapsed().as_secs_f64();
    let window_unix = (window_unix_0, unix_secs());
    let server_cpu = server_cpu_0.and_then(|c0| Some(procfs::cpu_time_sum(&servers)?.since(c0)));
    let bots_cpu = bots_cpu_0.and_then(|c0| Some(procfs::cpu_time(Proc::Current).ok()?.since(c0)));
    let system = system_0.and_then(|s0| Some(procfs::system_cpu().ok()?.since(s0)));
    let server_rss_end = procfs::rss_sum(&servers);
    let metrics_1 = metrics::scrape(&swarm.target).await;
    let ticks = metrics_0
        .zip(metrics_1)
        .and_then(|(m0, m1)| metrics::tick_figures(&m0, &m1));
    progress.finish();

    swarm.stop.stop();
    let results = gather(&mut tasks).await;
    let hists = std::mem::replace(&mut *swarm.hists(), Hists::new());
    let samples = Samples {
        results,
        hists,
        window_secs,
        window_unix,
        connect_secs,
        tick_rate: swarm.tick_rate(),
        game: swarm.game_name.get().cloned(),
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

/// Wall-clock seconds since the Unix epoch (for lining the window up with samples
/// taken outside, e.g. Redis's command count).
fn unix_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn runtime_threads() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopping_wakes_the_waiting_and_stops_the_late() {
        let stop = Arc::new(Stop::default());
        let waiting = {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let stopped = stop.stopped();
                tokio::pin!(stopped);
                // Polled several times before the stop, as in a bot's loop.
                for _ in 0..3 {
                    tokio::select! {
                        biased;
                        () = &mut stopped => return true,
                        () = tokio::task::yield_now() => {}
                    }
                }
                stopped.await;
                true
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.stop();
        let woke = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(woke, Ok(Ok(true))));
        tokio::time::timeout(Duration::from_secs(5), stop.stopped())
            .await
            .expect("a future made after the stop is ready at once");
    }
}
