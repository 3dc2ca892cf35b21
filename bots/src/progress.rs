//! The live display on stderr: phase, connected bots, snapshots per second, recent p99.
//! Refreshed four times a second by one task, so it costs the bots nothing per message;
//! hidden when stderr is not a terminal or with `--no-progress`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::options::Options;
use crate::swarm::Swarm;

const REFRESH: Duration = Duration::from_millis(250);

/// The display and its refresh task.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
    phase: Arc<Mutex<Phase>>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Phase {
    name: &'static str,
    since: Instant,
    secs: f64,
}

impl Progress {
    pub(crate) fn start(swarm: Arc<Swarm>, opts: &Options) -> Self {
        let target = if opts.no_progress {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(4)
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let phase = Arc::new(Mutex::new(Phase {
            name: "connecting",
            since: Instant::now(),
            secs: 0.0,
        }));
        // Only the display reads the recent latencies: hidden, the bots skip recording them.
        swarm.recent.store(!bar.is_hidden(), Ordering::Relaxed);
        let task = (!bar.is_hidden()).then(|| {
            let bar = bar.clone();
            let phase = Arc::clone(&phase);
            let bots = opts.bots;
            tokio::spawn(async move {
                let mut last = (Instant::now(), 0u64);
                let mut rate = 0.0;
                let mut p99 = None;
                let mut ticker = tokio::time::interval(REFRESH);
                loop {
                    ticker.tick().await;
                    let now = Instant::now();
                    let snapshots = swarm.snapshots.load(Ordering::Relaxed);
                    let dt = now.duration_since(last.0).as_secs_f64();
                    if dt >= 1.0 {
                        rate = (snapshots - last.1) as f64 / dt;
                        last = (now, snapshots);
                        p99 = swarm.take_recent_p99_ms().or(p99);
                    }
                    let (name, left) = {
                        let p = phase.lock().unwrap_or_else(PoisonError::into_inner);
                        (p.name, p.secs - p.since.elapsed().as_secs_f64())
                    };
                    let timer = if left > 0.0 {
                        format!(" {left:.0} s left")
                    } else {
                        String::new()
                    };
                    let failed = swarm
                        .settled
                        .load(Ordering::Relaxed)
                        .saturating_sub(swarm.joined.load(Ordering::Relaxed));
                    bar.set_message(format!(
                        "{name}{timer} | joined {}/{bots} ({failed} failed, {} dropped) | \
                         {rate:.0} snapshots/s | p99 {}",
                        swarm.joined.load(Ordering::Relaxed),
                        swarm.disconnected.load(Ordering::Relaxed),
                        p99.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms")),
                    ));
                    bar.tick();
                }
            })
        });
        Self { bar, phase, task }
    }

    /// A new phase of `secs` seconds.
    pub(crate) fn phase(&self, name: &'static str, secs: f64) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = Phase {
            name,
            since: Instant::now(),
            secs,
        };
    }

    /// Stops refreshing and clears the line.
    pub(crate) fn finish(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
