//! The player directory: every player with a session token, connected or within their
//! resume grace. A session token resumes its player (same id, same seat, same lobby);
//! operators reach a player's live connection through it (kick, notice).
//!
//! Each record has a small lock of its own, held only to read or swap a few fields,
//! never across an `.await`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use ticksync_protocol::SessionToken;
use tokio::time::Instant;

use crate::lobby::LobbyHandle;
use crate::net::admission::HeldSlot;
use crate::wire::outbox::{Control, Outbox};

/// One player, connected or not.
#[derive(Debug)]
pub(crate) struct PlayerRecord {
    /// Server-wide id, kept across resumes.
    pub(crate) player_id: u32,
    /// Display name.
    pub(crate) name: String,
    /// Round-trip time of the last ping, in microseconds (0: none yet).
    pub(crate) rtt_us: AtomicU32,
    /// Payload bytes received from and sent to the player.
    pub(crate) bytes_in: AtomicU64,
    /// See `bytes_in`; shared with the connection's outbox, where the lobby counts.
    pub(crate) bytes_out: Arc<AtomicU64>,
    /// When the player first connected.
    pub(crate) since: Instant,
    /// Delta snapshots (the default) or full ones (`Options`); kept across resumes.
    delta_snapshots: AtomicBool,
    state: Mutex<RecordState>,
}

#[derive(Debug, Default)]
struct RecordState {
    /// The live connection: its id and outbox (where its controls wait).
    live: Option<(u64, Arc<Outbox>)>,
    /// The player's lobby and seat.
    lobby: Option<(Arc<LobbyHandle>, u16)>,
    /// When the last connection dropped without a goodbye.
    detached_at: Option<Instant>,
    /// Its place under its address's connection cap while it may resume.
    held: Option<HeldSlot>,
}

impl PlayerRecord {
    fn state(&self) -> MutexGuard<'_, RecordState> {
        // A panic while holding this lock cannot leave the few plain fields inconsistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the player over for connection `conn`, returning the previous live
    /// connection's outbox (to tell it it was replaced).
    pub(crate) fn attach(&self, conn: u64, out: Arc<Outbox>) -> Option<Arc<Outbox>> {
        let mut state = self.state();
        state.detached_at = None;
        // The new connection holds its own place.
        state.held = None;
        state.live.replace((conn, out)).map(|(_, out)| out)
    }

    /// Connection `conn` dropped without a goodbye: the player may resume until the grace
    /// runs out, and keeps `held`, its address's place, until then. Does nothing if
    /// another connection has taken over.
    pub(crate) fn detach(&self, conn: u64, held: Option<HeldSlot>) {
        let mut state = self.state();
        if state.live.as_ref().is_some_and(|(c, _)| *c == conn) {
            state.live = None;
            state.detached_at = Some(Instant::now());
            state.held = held;
        }
    }

    /// The address whose place the player holds while it may resume.
    pub(crate) fn held_under(&self) -> Option<IpAddr> {
        self.state().held.as_ref().map(HeldSlot::key)
    }

    /// Whether `conn` is still the player's live connection.
    pub(crate) fn is_live(&self, conn: u64) -> bool {
        self.state().live.as_ref().is_some_and(|(c, _)| *c == conn)
    }

    /// Records the player's lobby (None when it left).
    pub(crate) fn set_lobby(&self, lobby: Option<(Arc<LobbyHandle>, u16)>) {
        self.state().lobby = lobby;
    }

    /// The player's lobby and seat.
    pub(crate) fn lobby(&self) -> Option<(Arc<LobbyHandle>, u16)> {
        self.state().lobby.clone()
    }

    /// Sends `control` to the live connection, if any. False if there is none or its
    /// queue is full.
    pub(crate) fn control(&self, control: Control) -> bool {
        let state = self.state();
        state
            .live
            .as_ref()
            .is_some_and(|(_, out)| out.control(control))
    }

    /// Whether the client asked for delta snapshots.
    pub(crate) fn delta_snapshots(&self) -> bool {
        self.delta_snapshots.load(Ordering::Relaxed)
    }

    /// Records the client's snapshot option (it outlives the connection).
    pub(crate) fn set_delta_snapshots(&self, on: bool) {
        self.delta_snapshots.store(on, Ordering::Relaxed);
    }

    /// Whether the player is connected.
    pub(crate) fn connected(&self) -> bool {
        self.state().live.is_some()
    }

    fn expired(&self, grace: Duration) -> bool {
        let state = self.state();
        state.live.is_none() && state.detached_at.is_none_or(|at| at.elapsed() >= grace)
    }
}

/// Every player by session token and by id.
#[derive(Debug, Default)]
pub(crate) struct Players {
    by_token: DashMap<SessionToken, Arc<PlayerRecord>>,
    by_id: DashMap<u32, SessionToken>,
    next_id: AtomicU32,
    /// Cluster mode: this node's slot, written into the first two bytes of every new
    /// session token (big-endian), so that a node shown a token it does not know can
    /// send the player to the node that holds it. 0: a single node, tokens all random.
    token_slot: AtomicU32,
}

impl Players {
    /// Registers a new player and returns its record and token.
    pub(crate) fn create(
        &self,
        name: String,
    ) -> Result<(Arc<PlayerRecord>, SessionToken), getrandom::Error> {
        let mut token = [0u8; 16];
        getrandom::fill(&mut token)?;
        // 14 random bytes stay: 112 bits, still far beyond guessing.
        if let Ok(slot) = u16::try_from(self.token_slot.load(Ordering::Relaxed)) {
            if slot != 0 {
                token[..2].copy_from_slice(&slot.to_be_bytes());
            }
        }
        let player_id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let record = Arc::new(PlayerRecord {
            player_id,
            name,
            rtt_us: AtomicU32::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: Arc::new(AtomicU64::new(0)),
            since: Instant::now(),
            delta_snapshots: AtomicBool::new(true),
            state: Mutex::new(RecordState::default()),
        });
        self.by_token.insert(token, Arc::clone(&record));
        self.by_id.insert(player_id, token);
        Ok((record, token))
    }

    /// Cluster mode: new tokens name `slot` (see `token_slot`).
    pub(crate) fn set_token_slot(&self, slot: u32) {
        self.token_slot.store(slot, Ordering::Relaxed);
    }

    /// Cluster mode: the slot of the node that made `token`.
    pub(crate) fn token_slot_of(token: &SessionToken) -> u32 {
        u32::from(u16::from_be_bytes([token[0], token[1]]))
    }

    /// The player a token resumes, unless it is unknown or its grace has run out.
    pub(crate) fn resume(
        &self,
        token: &SessionToken,
        grace: Duration,
    ) -> Option<Arc<PlayerRecord>> {
        let record = Arc::clone(self.by_token.get(token)?.value());
        if record.expired(grace) {
            self.forget(token);
            return None;
        }
        Some(record)
    }

    /// A player by id.
    pub(crate) fn by_id(&self, player_id: u32) -> Option<Arc<PlayerRecord>> {
        let token = *self.by_id.get(&player_id)?.value();
        self.by_token.get(&token).map(|r| Arc::clone(r.value()))
    }

    /// Forgets a player: its token no longer resumes anything.
    pub(crate) fn forget(&self, token: &SessionToken) {
        if let Some((_, record)) = self.by_token.remove(token) {
            self.by_id.remove(&record.player_id);
            record.state().held = None;
        }
    }

    /// Forgets every player whose grace has run out; returns how many.
    pub(crate) fn sweep(&self, grace: Duration) -> usize {
        let expired: Vec<SessionToken> = self
            .by_token
            .iter()
            .filter(|r| r.value().expired(grace))
            .map(|r| *r.key())
            .collect();
        for token in &expired {
            self.forget(token);
        }
        expired.len()
    }

    /// Every player record (operators' view).
    pub(crate) fn all(&self) -> Vec<Arc<PlayerRecord>> {
        self.by_token
            .iter()
            .map(|r| Arc::clone(r.value()))
            .collect()
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.by_token.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokens_resume_within_the_grace_only() {
        let players = Players::default();
        let grace = Duration::from_secs(15);
        let (record, token) = players.create("ann".into()).expect("random");
        assert!(record.attach(1, crate::wire::outbox::detached()).is_none());
        assert!(players.resume(&token, grace).is_some(), "live: resumable");
        record.detach(1, None);
        tokio::time::advance(Duration::from_secs(10)).await;
        let again = players.resume(&token, grace).expect("within grace");
        assert_eq!(again.player_id, record.player_id);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(players.resume(&token, grace).is_none(), "expired");
        assert!(players.by_id(record.player_id).is_none());
        assert!(players.resume(&[0; 16], grace).is_none(), "unknown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_connection_cannot_detach_its_successor() {
        let players = Players::default();
        let (record, _) = players.create("bo".into()).expect("random");
        record.attach(1, crate::wire::outbox::detached());
        assert!(
            record.attach(2, crate::wire::outbox::detached()).is_some(),
            "the first connection is handed back"
        );
        record.detach(1, None);
        assert!(record.is_live(2));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(players.sweep(Duration::from_secs(15)), 0);
        record.detach(2, None);
        tokio::time::advance(Duration::from_secs(16)).await;
        assert_eq!(players.sweep(Duration::from_secs(15)), 1);
        assert_eq!(players.len(), 0);
    }
}
