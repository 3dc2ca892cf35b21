//! `GET /metrics`: Prometheus text format, encoded by `prometheus-client` from the
//! server's own atomics at scrape time. The tick path only ever does relaxed atomic adds;
//! a scrape reads them and walks the lobby registry, and never takes a lock a tick needs.
//! Labels are bounded: close codes, message kinds, refusal reasons; never a player or
//! lobby id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::net::quota::GUESS_KINDS;
use crate::shared::Shared;
use ticksync_protocol::close;

use crate::stats::{AtomicHistogram, BUCKETS_US, REFUSALS};

/// Renders every metric.
pub(crate) fn render(shared: &Arc<Shared>) -> String {
    let mut registry = Registry::with_prefix("ticksync");
    registry.register_collector(Box::new(ServerCollector(Arc::clone(shared))));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

struct ServerCollector(Arc<Shared>);

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value.load(Ordering::Relaxed));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn labelled_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (String, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in values {
        let labels = [(label, value.as_str())];
        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &AtomicHistogram,
) -> Result<(), std::fmt::Error> {
    let (cumulative, sum_us) = histogram.read();
    let count = cumulative.last().copied().unwrap_or(0);
    let buckets: Vec<(f64, u64)> = BUCKETS_US
        .iter()
        .map(|&b| b as f64 / 1e6)
        .chain(std::iter::once(f64::INFINITY))
        .zip(cumulative)
        .collect();
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        sum_us as f64 / 1e6,
        count,
        &buckets,
        None,
    )
}

fn plain_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Cluster mode's figures (none on a single node): the directory's counters, and the
/// node's id and slot as the labels (`node`, `slot`) of `cluster_node_info`.
fn cluster(e: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let Some(cluster) = shared.cluster() else {
        return Ok(());
    };
    let m = cluster.metrics();
    let c = &cluster.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    {
        let mut family = e.encode_descriptor(
            "cluster_node_info",
            "This node's id and slot in the cluster directory (always 1).",
            None,
            MetricType::Gauge,
        )?;
        let slot = cluster.slot().to_string();
        let labels = [("node", cluster.node_id()), ("slot", slot.as_str())];
        ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
    }
    gauge(
        e,
        "cluster_redis_up",
        "1 if the last Redis call succeeded.",
        i64::from(m.redis_up),
    )?;
    gauge(
        e,
        "cluster_lobbies_published",
        "Lobbies this node wrote to the directory at its last renewal.",
        i64::try_from(m.lobbies_published).unwrap_or(i64::MAX),
    )?;
    for (name, help, value) in [
        (
            "cluster_renewals",
            "Successful renewals of this node's lease.",
            m.renewals,
        ),
        (
            "cluster_renewal_failures",
            "Renewals that failed (Redis down or slow).",
            m.renewal_failures,
        ),
        (
            "cluster_lease_lapses",
            "Renewals that found the lease had lapsed (re-registered).",
            m.lease_lapses,
        ),
        (
            "cluster_reservations_made",
            "Seat reservations and create tickets this node made.",
            m.reservations_made,
        ),
        (
            "cluster_reservations_used",
            "Reservations redeemed on this node.",
            m.reservations_used,
        ),
        (
            "cluster_reservations_expired",
            "Reservations for this node's lobbies that expired unused.",
            m.reservations_expired,
        ),
        (
            "cluster_reservations_released",
            "Redeemed seats given back at once because their player was not seated.",
            m.reservations_released,
        ),
        (
            "cluster_redis_errors",
            "Redis calls that failed or timed out.",
            m.redis_errors,
        ),
        (
            "cluster_redirects",
            "Joins answered with a Redirect to another node.",
            load(&c.redirects),
        ),
        (
            "cluster_resume_redirects",
            "Resumes sent to the node that holds the player.",
            load(&c.resume_redirects),
        ),
        (
            "cluster_unavailable",
            "Requests refused because they needed Redis and it did not answer.",
            load(&c.unavailable),
        ),
        (
            "cluster_local_fallbacks",
            "Listings and joins served by this node alone while Redis did not answer.",
            load(&c.local_fallbacks),
        ),
    ] {
        plain_counter(e, name, help, value)?;
    }
    Ok(())
}

impl Collector for ServerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        let s = &shared.stats;
        let lobbies = shared.registry.handles();
        let players: i64 = lobbies.iter().map(|l| i64::from(l.players())).sum();
        gauge(
            &mut e,
            "connections_open",
            "Open TCP connections.",
            shared.conns.total() as i64,
        )?;
        gauge(
            &mut e,
            "sessions_open",
            "Open WebSocket sessions.",
            s.sessions_open.load(Ordering::Relaxed) as i64,
        )?;
        gauge(&mut e, "lobbies", "Open lobbies.", lobbies.len() as i64)?;
        gauge(
            &mut e,
            "players",
            "Players seated in lobbies (including those within their resume grace).",
            players,
        )?;
        gauge(
            &mut e,
            "player_sessions",
            "Players known by session token (connected or within their resume grace).",
            shared.players.len() as i64,
        )?;
        gauge(
            &mut e,
            "draining",
            "1 while the server shuts down.",
            i64::from(shared.is_draining()),
        )?;
        cluster(&mut e, shared)?;
        counter(
            &mut e,
            "connections",
            "TCP connections accepted.",
            &s.connections_total,
        )?;
        labelled_counter(
            &mut e,
            "connections_refused",
            "Connections refused, by reason.",
            "reason",
            REFUSALS
                .iter()
                .zip(&s.refused)
                .map(|(r, c)| ((*r).to_owned(), c.load(Ordering::Relaxed))),
        )?;
        counter(
            &mut e,
            "sessions",
            "WebSocket sessions started.",
            &s.sessions_total,
        )?;
        labelled_counter(
            &mut e,
            "disconnects",
            "Sessions ended, by close code sent (0: the client closed or the connection dropped).",
            "code",
            std::iter::once("0".to_owned())
                .chain(close::ALL.iter().map(|(_, c)| c.to_string()))
                .chain(std::iter::once("other".to_owned()))
                .zip(&s.closes)
                .map(|(code, c)| (code, c.load(Ordering::Relaxed))),
        )?;
        counter(&mut e, "ticks", "Lobby ticks run.", &s.ticks)?;
        counter(
            &mut e,
            "ticks_overrun",
            "Ticks that took longer than the tick period or started a period late.",
            &s.ticks_overrun,
        )?;
        histogram(
            &mut e,
            "tick_duration_seconds",
            "Simulation time of one lobby tick: the game's hooks and its state written.",
            &s.tick_time,
        )?;
        histogram(
            &mut e,
            "tick_fanout_seconds",
            "Time to deliver one lobby tick: its shared snapshot parts encoded (each on the first player who needs it) and every player's snapshot written to its socket.",
            &s.fanout_time,
        )?;
        histogram(
            &mut e,
            "tick_lateness_seconds",
            "How late lobby ticks start against their fixed schedule.",
            &s.tick_lateness,
        )?;
        counter(
            &mut e,
            "snapshots_sent",
            "Snapshots written to clients.",
            &s.snapshots_sent,
        )?;
        counter(
            &mut e,
            "snapshots_skipped",
            "Snapshots a slow client never got because a newer one replaced them.",
            &s.snapshots_skipped,
        )?;
        counter(
            &mut e,
            "bytes_in",
            "WebSocket payload bytes received.",
            &s.bytes_in,
        )?;
        counter(
            &mut e,
            "bytes_out",
            "WebSocket payload bytes sent.",
            &s.bytes_out,
        )?;
        labelled_counter(
            &mut e,
            "messages_in",
            "Client messages received, by kind.",
            "kind",
            crate::stats::message_kinds()
                .map(str::to_owned)
                .zip(&s.messages_by_kind)
                .map(|(k, c)| (k, c.load(Ordering::Relaxed))),
        )?;
        counter(
            &mut e,
            "decode_errors",
            "Client messages that could not be decoded.",
            &s.decode_errors,
        )?;
        labelled_counter(
            &mut e,
            "inputs_dropped",
            "Inputs not applied, by reason.",
            "reason",
            [
                ("rate_limited", &s.inputs_rate_limited),
                ("superseded", &s.inputs_superseded),
                ("stale", &s.inputs_stale),
            ]
            .into_iter()
            .map(|(r, c)| (r.to_owned(), c.load(Ordering::Relaxed))),
        )?;
        counter(
            &mut e,
            "inputs_clamped",
            "Input values outside their declared range, clamped before the game saw them.",
            &s.inputs_clamped,
        )?;
        labelled_counter(
            &mut e,
            "inputs_rejected",
            "Inputs refused (not decodable by the lobby's schema, or sent outside a lobby), by reason.",
            "reason",
            crate::stats::FRAME_REJECTIONS
                .iter()
                .zip(&s.inputs_rejected)
                .map(|(r, c)| ((*r).to_owned(), c.load(Ordering::Relaxed))),
        )?;
        counter(
            &mut e,
            "game_messages",
            "Game messages passed to their lobby's game.",
            &s.game_messages,
        )?;
        counter(
            &mut e,
            "game_messages_clamped",
            "Game message values outside their declared range, clamped.",
            &s.game_messages_clamped,
        )?;
        labelled_counter(
            &mut e,
            "game_messages_rejected",
            "Game messages refused (undecodable, over the rate limit, outside a lobby), by reason.",
            "reason",
            crate::stats::FRAME_REJECTIONS
                .iter()
                .zip(&s.game_messages_rejected)
                .map(|(r, c)| ((*r).to_owned(), c.load(Ordering::Relaxed))),
        )?;
        counter(
            &mut e,
            "events_sent",
            "Game events sent (once each, to one player or to all).",
            &s.events_sent,
        )?;
        counter(
            &mut e,
            "events_overflowed",
            "Players dropped from their lobby because events waited for them beyond the bound (close 4004).",
            &s.events_overflowed,
        )?;
        counter(
            &mut e,
            "write_timeouts",
            "Clients dropped for accepting nothing within the write timeout.",
            &s.write_timeouts,
        )?;
        counter(
            &mut e,
            "resumes",
            "Sessions resumed with a session token.",
            &s.resumes,
        )?;
        counter(&mut e, "kicks", "Players kicked by operators.", &s.kicks)?;
        counter(
            &mut e,
            "lobby_panics",
            "Lobbies closed because their game panicked.",
            &s.lobby_panics,
        )?;
        counter(
            &mut e,
            "admin_actions",
            "Admin API actions performed.",
            &s.admin_actions,
        )?;
        let guesses = &shared.guesses;
        labelled_counter(
            &mut e,
            "auth_failures",
            "Failed guesses: wrong admin tokens, unknown join codes, bad join tokens.",
            "kind",
            GUESS_KINDS
                .iter()
                .zip(&guesses.failures)
                .map(|(k, n)| ((*k).to_owned(), n.load(Ordering::Relaxed))),
        )?;
        labelled_counter(
            &mut e,
            "auth_refused",
            "Attempts refused because their address failed too many guesses.",
            "kind",
            GUESS_KINDS
                .iter()
                .zip(&guesses.refused)
                .map(|(k, n)| ((*k).to_owned(), n.load(Ordering::Relaxed))),
        )?;
        let caps = shared.conns.limits();
        gauge(
            &mut e,
            "max_connections",
            "The connection cap in force (--max-connections, sized to the descriptor limit).",
            i64::try_from(caps.max_connections).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut e,
            "max_connections_per_ip",
            "The per-address cap in force (--max-connections-per-ip, sized to the descriptor limit).",
            i64::try_from(caps.max_per_ip).unwrap_or(i64::MAX),
        )?;
        Ok(())
    }
}
