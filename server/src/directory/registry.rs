//! The directory of open lobbies: lookup by id and by private code, listing, quick-join
//! choice. Lobbies own themselves (each is a task); the registry only holds their handles.
//! Guards are never held across an `.await`: every method copies out what it needs.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use ticksync_protocol::LobbyInfo;
use ticksync_protocol::join_code::{ALPHABET, SYMBOLS, normalize};
use ticksync_protocol::limits::MAX_LISTED_LOBBIES;

use tokio::time::Instant;

use ticksync_cluster::{MAX_LOCAL_LOBBY_ID, PENDING_LOBBY_BASE};

use crate::lobby::{Claim, LobbyHandle};

/// How old a listing may be before it is built again (player counts change every tick).
const LISTING_TTL: Duration = Duration::from_millis(500);
/// Picks a quick-join makes before it gives up on existing lobbies.
const QUICK_PICK_TRIES: usize = 3;

/// The listing and when it was built.
type Listing = Option<(Instant, Arc<[LobbyInfo]>)>;

/// All open lobbies.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    lobbies: DashMap<u32, Arc<LobbyHandle>>,
    codes: DashMap<String, u32>,
    next_id: AtomicU32,
    /// Cluster mode: this node's slot in the high bits (`slot << 22`), so that lobby ids
    /// are unique across the cluster and a lobby id names its node. 0: a single node.
    cluster_base: AtomicU32,
    listing: Mutex<Listing>,
    /// A lobby opened or closed since the listing was built.
    listing_stale: AtomicBool,
}

impl Registry {
    /// A fresh lobby id (never 0). In cluster mode: the node's slot in the high bits and
    /// a local part from 1 to below [`PENDING_LOBBY_BASE`] (the ids above are the
    /// directory's, for the pending lobbies of quick-join), skipping one still in use
    /// after a wrap.
    pub(crate) fn next_id(&self) -> u32 {
        loop {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            let base = self.cluster_base.load(Ordering::Acquire);
            if base == 0 {
                return n.wrapping_add(1);
            }
            let local = n % (PENDING_LOBBY_BASE - 1) + 1;
            if self.get_local(local).is_none() {
                return base | local;
            }
        }
    }

    /// Cluster mode: lobbies created from now on carry `slot` in their ids' high bits.
    pub(crate) fn set_slot(&self, slot: u32) {
        self.cluster_base
            .store(ticksync_cluster::cluster_id(slot, 0), Ordering::Release);
    }

    /// Cluster mode: the slot new lobby ids carry (0: a single node).
    pub(crate) fn slot(&self) -> u32 {
        ticksync_cluster::split_cluster_id(self.cluster_base.load(Ordering::Acquire)).0
    }

    /// Cluster mode: the lobby whose id has this local part (what the directory and
    /// reservations name). Ids made under an earlier slot (the node lost its slot while
    /// Redis was away) are found too.
    pub(crate) fn get_local(&self, local: u32) -> Option<Arc<LobbyHandle>> {
        let base = self.cluster_base.load(Ordering::Acquire);
        if let Some(handle) = self.get(base | local) {
            return Some(handle);
        }
        self.lobbies
            .iter()
            .find(|r| r.id() & MAX_LOCAL_LOBBY_ID == local)
            .map(|r| Arc::clone(r.value()))
    }

    /// Number of open lobbies.
    pub(crate) fn len(&self) -> usize {
        self.lobbies.len()
    }

    /// Adds a lobby unless one with its id is open; answers that one then.
    pub(crate) fn insert_new(&self, handle: Arc<LobbyHandle>) -> Result<(), Arc<LobbyHandle>> {
        match self.lobbies.entry(handle.id()) {
            dashmap::mapref::entry::Entry::Occupied(e) => return Err(Arc::clone(e.get())),
            dashmap::mapref::entry::Entry::Vacant(e) => {
                e.insert(Arc::clone(&handle));
            }
        }
        if let Some(code) = handle.code() {
            self.codes.insert(code.to_owned(), handle.id());
        }
        self.listing_stale.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes a lobby (its tick task does, when it closes).
    pub(crate) fn remove(&self, handle: &LobbyHandle) {
        if let Some(code) = handle.code() {
            self.codes.remove(code);
        }
        self.lobbies.remove(&handle.id());
        self.listing_stale.store(true, Ordering::Release);
    }

    /// A lobby by id.
    pub(crate) fn get(&self, id: u32) -> Option<Arc<LobbyHandle>> {
        self.lobbies.get(&id).map(|r| Arc::clone(r.value()))
    }

    /// A lobby by join code, forgiving case, spaces and the dash.
    pub(crate) fn by_code(&self, code: &str) -> Option<Arc<LobbyHandle>> {
        let id = *self.codes.get(&normalize(code)?)?.value();
        self.get(id)
    }

    /// Every lobby, in no particular order (metrics and operators).
    pub(crate) fn handles(&self) -> Vec<Arc<LobbyHandle>> {
        self.lobbies.iter().map(|r| Arc::clone(r.value())).collect()
    }

    /// Public lobbies, fullest first, then oldest first (lowest id); at most the
    /// protocol's limit. Built at most every [`LISTING_TTL`] (and again whenever a lobby
    /// opens or closes), so a storm of listings costs one sort, not one each.
    pub(crate) fn list_public(&self) -> Arc<[LobbyInfo]> {
        let mut cache = self.listing.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < LISTING_TTL);
        if !fresh || self.listing_stale.swap(false, Ordering::AcqRel) {
            let mut list: Vec<LobbyInfo> = self
                .lobbies
                .iter()
                .filter(|r| !r.is_private() && !r.is_closed())
                .map(|r| r.info())
                .collect();
            list.sort_by(|a, b| b.players.cmp(&a.players).then(a.id.cmp(&b.id)));
            list.truncate(MAX_LISTED_LOBBIES);
            *cache = Some((Instant::now(), list.into()));
        }
        cache
            .as_ref()
            .map_or_else(|| Arc::from([]), |(_, list)| Arc::clone(list))
    }

    /// A seat in the public lobby a quick-join should take: the fullest with room
    /// (counting seats promised to joins on their way), oldest first. The seat is claimed
    /// at once, so a crowd of quick-joins fills lobbies one after another.
    pub(crate) fn quick_claim(&self) -> Option<Claim> {
        // A lobby that fills between the pick and the claim: pick again.
        for _ in 0..QUICK_PICK_TRIES {
            let pick = self
                .lobbies
                .iter()
                .filter(|r| !r.is_private() && r.has_room())
                .max_by(|a, b| a.claimed().cmp(&b.claimed()).then(b.id().cmp(&a.id())))
                .map(|r| Arc::clone(r.value()))?;
            if let Some(claim) = pick.claim() {
                return Some(claim);
            }
        }
        None
    }
}

/// A new private code, "ABCDE-FGHJK": 50 bits from the OS's random source.
pub(crate) fn new_code() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; SYMBOLS];
    getrandom::fill(&mut bytes)?;
    let mut code = String::with_capacity(SYMBOLS + 1);
    for (i, b) in bytes.iter().enumerate() {
        if i == SYMBOLS / 2 {
            code.push('-');
        }
        // 256 is a multiple of 32: taking the low five bits is unbiased.
        code.push(char::from(ALPHABET.as_bytes()[usize::from(b & 31)]));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_carry_the_slot_and_stay_in_range() {
        let registry = Registry::default();
        assert_eq!(registry.next_id(), 1, "single node: as before");
        registry.set_slot(5);
        let id = registry.next_id();
        assert_eq!(ticksync_cluster::split_cluster_id(id), (5, 2));
        registry
            .next_id
            .store(PENDING_LOBBY_BASE - 2, Ordering::Relaxed);
        assert_eq!(
            registry.next_id() & MAX_LOCAL_LOBBY_ID,
            PENDING_LOBBY_BASE - 1,
            "the directory's ids (pending lobbies) are never taken"
        );
        assert_eq!(
            registry.next_id() & MAX_LOCAL_LOBBY_ID,
            1,
            "wraps to 1, never 0"
        );
    }

    #[test]
    fn codes_are_random_and_forgiving() {
        let a = new_code().expect("random");
        let b = new_code().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 11);
        assert_eq!(normalize(&a), Some(a.clone()));
        let sloppy = a.to_lowercase().replace('-', " ");
        assert_eq!(normalize(&sloppy), Some(a));
        assert_eq!(normalize("short"), None);
        assert_eq!(normalize("OOOOO-OOOOO"), None);
    }
}
