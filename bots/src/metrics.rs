//! The server's own view of its ticks, from its `GET /metrics` (Prometheus text): the
//! tick time (simulation and snapshot encoding of one lobby tick) and the lateness of
//! tick starts, as histograms scraped at both ends of the window and subtracted.
//!
//! A plain HTTP/1.1 request on a fresh connection, `Connection: close`, read to the end:
//! twice per run, so no HTTP client crate is worth its dependencies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use ticksync_client::lean::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest /metrics body read.
const MAX_BODY: u64 = 1 << 20;
const SCRAPE_LIMIT: Duration = Duration::from_secs(2);

/// One scrape: every sample line, `name{labels}` to value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape(BTreeMap<String, f64>);

/// Scrapes `http://<the URL's host>/metrics`; `None` if the server has no such page or
/// does not answer in time.
pub(crate) async fn scrape(target: &Target) -> Option<Scrape> {
    tokio::time::timeout(SCRAPE_LIMIT, fetch(target))
        .await
        .ok()
        .flatten()
}

async fn fetch(target: &Target) -> Option<Scrape> {
    let mut stream = TcpStream::connect(target.addr).await.ok()?;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.host
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream
        .take(MAX_BODY)
        .read_to_end(&mut response)
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if head.split(' ').nth(1) != Some("200") || head.to_ascii_lowercase().contains("chunked") {
        return None;
    }
    Some(parse(body))
}

fn parse(body: &str) -> Scrape {
    Scrape(
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (key, value) = line.trim().rsplit_once(' ')?;
                Some((key.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

impl Scrape {
    fn value(&self, key: &str) -> Option<f64> {
        self.0.get(key).copied()
    }

    /// A histogram's cumulative buckets `(upper bound in seconds, count)`, sorted.
    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut buckets: Vec<(f64, f64)> = self
            .0
            .iter()
            .filter_map(|(key, &count)| {
                let le = key.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

/// A server histogram over the window, from its buckets' difference.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BucketQuantiles {
    /// Observations in the window.
    pub count: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// The bucket bound the median falls under, µs (`None`: above the largest bound).
    pub p50_le_us: Option<f64>,
    /// The bucket bound the 99th percentile falls under, µs.
    pub p99_le_us: Option<f64>,
}

/// The server's tick figures over the window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TickFigures {
    /// Lobby ticks run in the window.
    pub ticks: u64,
    /// Ticks that overran their period or started a period late.
    pub overruns: u64,
    /// Simulation plus snapshot encoding of one lobby tick.
    pub tick_time: Option<BucketQuantiles>,
    /// Writing one lobby tick's snapshots to its players' sockets (servers that
    /// publish it).
    pub fanout: Option<BucketQuantiles>,
    /// How late tick starts were against the fixed schedule.
    pub lateness: Option<BucketQuantiles>,
}

/// The difference of two scrapes, as tick figures; `None` if the server does not
/// publish them.
pub(crate) fn tick_figures(before: &Scrape, after: &Scrape) -> Option<TickFigures> {
    let delta = |key: &str| Some((after.value(key)? - before.value(key).unwrap_or(0.0)).max(0.0));
    let ticks = delta("ticksync_ticks_total")?;
    let hist = |name: &str| {
        let a = after.buckets(name);
        let b = before.buckets(name);
        let count = delta(&format!("{name}_count"))?;
        let sum = delta(&format!("{name}_sum"))?;
        if count <= 0.0 || a.is_empty() {
            return None;
        }
        let window: Vec<(f64, f64)> = a
            .iter()
            .map(|&(le, n)| {
                let earlier = b.iter().find(|x| x.0 == le).map_or(0.0, |x| x.1);
                (le, n - earlier)
            })
            .collect();
        let quantile = |q: f64| {
            let rank = (q * count).ceil().max(1.0);
            window
                .iter()
                .find(|&&(_, n)| n >= rank)
                .map(|&(le, _)| le * 1e6)
                .filter(|us| us.is_finite())
        };
        Some(BucketQuantiles {
            count: count as u64,
            mean_us: sum / count * 1e6,
            p50_le_us: quantile(0.50),
            p99_le_us: quantile(0.99),
        })
    };
    Some(TickFigures {
        ticks: ticks as u64,
        overruns: delta("ticksync_ticks_overrun_total").unwrap_or(0.0) as u64,
        tick_time: hist("ticksync_tick_duration_seconds"),
        fanout: hist("ticksync_tick_fanout_seconds"),
        lateness: hist("ticksync_tick_lateness_seconds"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# HELP ticksync_ticks Lobby ticks run.\n\
        ticksync_ticks_total 100\n\
        ticksync_tick_duration_seconds_sum 0.001\n\
        ticksync_tick_duration_seconds_count 100\n\
        ticksync_tick_duration_seconds_bucket{le=\"1e-5\"} 50\n\
        ticksync_tick_duration_seconds_bucket{le=\"2.5e-5\"} 100\n\
        ticksync_tick_duration_seconds_bucket{le=\"+Inf\"} 100\n";
    const AFTER: &str = "ticksync_ticks_total 1100\n\
        ticksync_tick_duration_seconds_sum 0.021\n\
        ticksync_tick_duration_seconds_count 1100\n\
        ticksync_tick_duration_seconds_bucket{le=\"1e-5\"} 50\n\
        ticksync_tick_duration_seconds_bucket{le=\"2.5e-5\"} 1085\n\
        ticksync_tick_duration_seconds_bucket{le=\"+Inf\"} 1100\n";

    #[test]
    fn window_quantiles_come_from_bucket_differences() {
        let t = tick_figures(&parse(BEFORE), &parse(AFTER)).expect("figures");
        assert_eq!(t.ticks, 1000);
        let d = t.tick_time.expect("tick time");
        assert_eq!(d.count, 1000);
        assert!((d.mean_us - 20.0).abs() < 1e-6);
        assert_eq!(d.p50_le_us, Some(25.0));
        // 985 of 1000 under 25 µs: the 99th percentile is above every finite bound.
        assert_eq!(d.p99_le_us, None);
        assert!(t.lateness.is_none());
    }
}
