//! Connection admission: the caps on connections, in all and from one address. Every
//! accepted connection holds a [`ConnSlot`] for its whole life; the slot says whether it
//! is within the caps and uncounts itself when dropped.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::config::Config;

/// Connections beyond the cap that are still accepted (to be told they are refused).
const OVER_CAP_MARGIN: usize = 64;

/// Whether a connection is within the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within every cap.
    Ok,
    /// The server is at `--max-connections`.
    ServerFull,
    /// Its address is at `--max-connections-per-ip`.
    AddressFull,
}

/// Connection counts.
#[derive(Debug, Default)]
pub(crate) struct ConnCounts {
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
}

impl ConnCounts {
    /// Connections open now.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// One counted connection; uncounts itself when dropped.
pub(crate) struct ConnSlot {
    counts: Arc<ConnCounts>,
    ip: IpAddr,
    /// Whether the connection is within the caps.
    pub(crate) admission: Admission,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let counts = &self.counts;
        counts.total.fetch_sub(1, Ordering::Relaxed);
        if let dashmap::Entry::Occupied(mut entry) = counts.per_ip.entry(self.ip) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// Counts a new connection from `ip`; None if it is past the hard margin.
pub(crate) fn admit(config: &Config, counts: &Arc<ConnCounts>, ip: IpAddr) -> Option<ConnSlot> {
    let total = counts.total.fetch_add(1, Ordering::Relaxed) + 1;
    let from_ip = {
        let mut entry = counts.per_ip.entry(ip).or_insert(0);
        *entry += 1;
        *entry
    };
    let slot = ConnSlot {
        counts: Arc::clone(counts),
        ip,
        admission: if total > config.max_connections {
            Admission::ServerFull
        } else if from_ip > config.max_connections_per_ip {
            Admission::AddressFull
        } else {
            Admission::Ok
        },
    };
    let hard = config.max_connections.saturating_add(OVER_CAP_MARGIN);
    let hard_ip = config
        .max_connections_per_ip
        .saturating_add(OVER_CAP_MARGIN);
    (total <= hard && from_ip <= hard_ip).then_some(slot)
}
