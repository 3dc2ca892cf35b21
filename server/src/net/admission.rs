//! Connection admission: the caps on connections, in all and from one address. Every
//! accepted connection holds a [`ConnSlot`] for its whole life; the slot says whether it
//! is within the caps and uncounts itself when dropped.
//!
//! - An address is its /32 (IPv4) or its /64 (IPv6: one subscriber's whole prefix), see
//!   [`ip_key`]. A connection from a trusted proxy (`--trusted-proxies`) is counted
//!   against the address the proxy names once its request is read
//!   ([`ConnSlot::forwarded`]), not against the proxy's.
//! - A player that dropped and may still resume keeps its address's place
//!   ([`ConnSlot::hold`]) until its resume grace ends: an address cannot hold more seats
//!   than it may hold connections.
//! - The caps in force ([`Limits`]) are the configured ones, lowered to what the process's
//!   file descriptor limit can hold, with a reserve left for the health checks and for
//!   the other addresses when one address is at its cap.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;

use crate::config::Config;

/// Connections beyond a cap that are still accepted (to be told they are refused, or, for
/// the total cap, to answer `/healthz` and `/readyz`).
pub(crate) const OVER_CAP_MARGIN: usize = 64;

/// Descriptors kept for everything but connections: the listener, the runtime, logs.
pub(crate) const FD_RESERVE: u64 = 64;

/// The caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Most connections in all.
    pub(crate) max_connections: usize,
    /// Most connections (and resumable players) from one address.
    pub(crate) max_per_ip: usize,
}

impl Limits {
    /// The configured caps, lowered to fit `fd_limit` descriptors (None: no limit):
    /// every connection (plus the over-cap margin) fits beside [`FD_RESERVE`], and one
    /// address may use at most half of what connections can have, so that others still
    /// get in when it holds its cap.
    pub(crate) fn new(config: &Config, fd_limit: Option<u64>) -> Self {
        let mut limits = Limits {
            max_connections: config.max_connections.max(1),
            max_per_ip: config.max_connections_per_ip.max(1),
        };
        if let Some(fds) = fd_limit {
            let budget = usize::try_from(fds.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            limits.max_connections = limits
                .max_connections
                .min(budget.saturating_sub(OVER_CAP_MARGIN))
                .max(1);
            limits.max_per_ip = limits.max_per_ip.min(budget / 2).max(1);
        }
        limits
    }
}

/// Whether a connection is within the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within every cap.
    Ok,
    /// The server is at its connection cap.
    ServerFull,
    /// Its address is at its cap.
    AddressFull,
    /// Its address is at its cap only because of players that may still resume: only a
    /// resume of one of them may go on (it takes that player's place).
    AddressHeld,
}

#[derive(Debug, Default, Clone, Copy)]
struct PerIp {
    live: usize,
    held: usize,
}

/// Connection counts.
#[derive(Debug)]
pub(crate) struct ConnCounts {
    limits: Limits,
    trusted_proxies: Vec<IpAddr>,
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, PerIp>,
}

impl ConnCounts {
    /// Counts under `config`'s caps, sized for `fd_limit` descriptors.
    pub(crate) fn new(config: &Config, fd_limit: Option<u64>) -> Self {
        ConnCounts {
            limits: Limits::new(config, fd_limit),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .copied()
                .map(canonical)
                .collect(),
            total: AtomicUsize::new(0),
            per_ip: DashMap::new(),
        }
    }

    /// Connections open now.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The caps in force.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether `ip` is a trusted proxy.
    pub(crate) fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_proxies.contains(&ip)
    }

    fn change(&self, key: IpAddr, f: impl FnOnce(&mut PerIp)) {
        if let dashmap::Entry::Occupied(mut entry) = self.per_ip.entry(key) {
            f(entry.get_mut());
            if entry.get().live == 0 && entry.get().held == 0 {
                entry.remove();
            }
        }
    }

    /// Counts one more live connection from `ip`'s address.
    fn count_ip(self: &Arc<Self>, ip: IpAddr) -> IpSlot {
        let key = ip_key(ip);
        let now = {
            let mut entry = self.per_ip.entry(key).or_default();
            entry.live += 1;
            *entry
        };
        let cap = self.limits.max_per_ip;
        let admission = if now.live > cap {
            Admission::AddressFull
        } else if now.live + now.held > cap {
            Admission::AddressHeld
        } else {
            Admission::Ok
        };
        IpSlot {
            counts: Arc::clone(self),
            key,
            live: now.live,
            admission,
        }
    }
}

/// `ip` with an IPv4-mapped IPv6 address turned back into IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address a connection is counted under: an IPv4 address itself, an IPv6 address's
/// /64 (a home or a host gets a whole /64; counting single addresses would let one
/// subscriber open unlimited connections).
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// One live connection counted against its address; uncounts itself when dropped.
#[derive(Debug)]
struct IpSlot {
    counts: Arc<ConnCounts>,
    key: IpAddr,
    /// Live connections from the address when this one was counted.
    live: usize,
    admission: Admission,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.counts.change(self.key, |n| n.live -= 1);
    }
}

/// A dropped player's place under its address's cap, held until its resume grace ends
/// (or it resumes): dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct HeldSlot {
    counts: Arc<ConnCounts>,
    key: IpAddr,
}

impl HeldSlot {
    /// The address it is held under.
    pub(crate) fn key(&self) -> IpAddr {
        self.key
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.counts.change(self.key, |n| n.held -= 1);
    }
}

/// One counted connection; uncounts itself when dropped.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    counts: Arc<ConnCounts>,
    over_total: bool,
    /// Its count under its address: None for a trusted proxy's connection until the
    /// proxy names the client, and once the slot is [held](ConnSlot::hold).
    ip: Mutex<Option<IpSlot>>,
    /// Whether a count under an address was ever made (a held slot is not counted again).
    named: std::sync::atomic::AtomicBool,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.counts.total.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnSlot {
    fn ip(&self) -> std::sync::MutexGuard<'_, Option<IpSlot>> {
        self.ip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the connection is within the caps.
    pub(crate) fn admission(&self) -> Admission {
        if self.over_total {
            return Admission::ServerFull;
        }
        self.ip().as_ref().map_or(Admission::Ok, |s| s.admission)
    }

    /// A trusted proxy's connection is a client's, at `client`: count it there. Does
    /// nothing if the connection is already counted under an address.
    pub(crate) fn forwarded(&self, client: IpAddr) {
        if self.named.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.ip() = Some(self.counts.count_ip(client));
    }

    /// The connection ends but its player may resume: keep its place under its address
    /// until the returned slot is dropped. None if it had no place.
    pub(crate) fn hold(&self) -> Option<HeldSlot> {
        let slot = self.ip().take()?;
        let key = slot.key;
        // Count the held place before the live one goes, so the address never looks
        // emptier than it is.
        self.counts.change(key, |n| n.held += 1);
        drop(slot);
        Some(HeldSlot {
            counts: Arc::clone(&self.counts),
            key,
        })
    }

    /// The address this connection is counted under, if any.
    pub(crate) fn key(&self) -> Option<IpAddr> {
        self.ip().as_ref().map(|s| s.key)
    }
}

/// Counts a new connection from `peer` against the caps; None if it is past a hard
/// margin (then it should be dropped at once). A trusted proxy's connection is counted
/// in the total only, until [`ConnSlot::forwarded`].
pub(crate) fn admit(counts: &Arc<ConnCounts>, peer: IpAddr) -> Option<ConnSlot> {
    let limits = counts.limits;
    let total = counts.total.fetch_add(1, Ordering::Relaxed) + 1;
    let proxied = counts.is_trusted_proxy(peer);
    let ip = (!proxied).then(|| counts.count_ip(peer));
    let live = ip.as_ref().map_or(0, |s| s.live);
    let slot = ConnSlot {
        counts: Arc::clone(counts),
        over_total: total > limits.max_connections,
        ip: Mutex::new(ip),
        named: std::sync::atomic::AtomicBool::new(!proxied),
    };
    let hard = limits.max_connections.saturating_add(OVER_CAP_MARGIN);
    let hard_ip = limits.max_per_ip.saturating_add(OVER_CAP_MARGIN);
    (total <= hard && live <= hard_ip).then_some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(per_ip: usize, proxies: &[&str]) -> Arc<ConnCounts> {
        let config = Config {
            max_connections_per_ip: per_ip,
            trusted_proxies: proxies.iter().map(|p| p.parse().expect("ip")).collect(),
            ..Config::default()
        };
        Arc::new(ConnCounts::new(&config, None))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_ipv6_prefix_is_one_address() {
        let counts = counts(1, &[]);
        let a = admit(&counts, ip("2001:db8:1:2::1")).expect("admitted");
        assert_eq!(a.admission(), Admission::Ok);
        let b = admit(&counts, ip("2001:db8:1:2:ffff::9")).expect("within the margin");
        assert_eq!(b.admission(), Admission::AddressFull, "same /64");
        let c = admit(&counts, ip("2001:db8:1:3::1")).expect("admitted");
        assert_eq!(c.admission(), Admission::Ok, "another /64");
        assert_eq!(ip_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        drop((a, b, c));
        assert!(counts.per_ip.is_empty());
    }

    #[test]
    fn a_proxied_connection_counts_under_the_client() {
        let counts = counts(1, &["10.0.0.1"]);
        let a = admit(&counts, ip("10.0.0.1")).expect("admitted");
        let b = admit(&counts, ip("10.0.0.1")).expect("admitted");
        assert_eq!(
            b.admission(),
            Admission::Ok,
            "the proxy itself is not capped"
        );
        a.forwarded(ip("192.0.2.7"));
        b.forwarded(ip("192.0.2.7"));
        assert_eq!(a.admission(), Admission::Ok);
        assert_eq!(b.admission(), Admission::AddressFull);
        b.forwarded(ip("192.0.2.8"));
        assert_eq!(b.admission(), Admission::AddressFull, "named once only");
    }

    #[test]
    fn a_resumable_player_keeps_its_place() {
        let counts = counts(1, &[]);
        let a = admit(&counts, ip("192.0.2.1")).expect("admitted");
        let held = a.hold().expect("held");
        drop(a);
        let b = admit(&counts, ip("192.0.2.1")).expect("admitted");
        assert_eq!(b.admission(), Admission::AddressHeld);
        drop(held);
        drop(b);
        let c = admit(&counts, ip("192.0.2.1")).expect("admitted");
        assert_eq!(c.admission(), Admission::Ok);
    }

    #[test]
    fn caps_fit_the_descriptor_limit() {
        let config = Config::default();
        let roomy = Limits::new(&config, Some(1 << 20));
        assert_eq!(roomy.max_connections, config.max_connections);
        assert_eq!(roomy.max_per_ip, config.max_connections_per_ip);
        let tight = Limits::new(&config, Some(1024));
        assert!(tight.max_connections + OVER_CAP_MARGIN + FD_RESERVE as usize <= 1024);
        assert!(
            tight.max_per_ip + OVER_CAP_MARGIN < tight.max_connections,
            "others still get in when one address holds its cap: {tight:?}"
        );
    }
}
