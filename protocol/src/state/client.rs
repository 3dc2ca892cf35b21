//! The client side of snapshots: [`ClientState`] keeps the baseline and applies each
//! snapshot message to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::world::{MAX_SNAPSHOT_ENTITIES, SNAPSHOT_TAG, View, included, split_snapshot};
use super::{Codec, PlayerRef, Row, RowCodec, RowReader, Value, WireError, mask_of};
use crate::bits::{BitReader, EndOfStream};
use crate::schema::{Fields, Messages};

/// Why a snapshot could not be applied. The state is unchanged when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateDecodeError {
    /// Not a snapshot message (another tag, or no bytes). A snapshot whose head does not
    /// split (a varint too long or above its type, an own part past the end) is
    /// `Wire(Truncated)`.
    #[error("not a snapshot message")]
    NotASnapshot,
    /// A value did not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A delta against a tick this client does not hold.
    #[error("a delta against tick {baseline}, but the client holds {held:?}")]
    BaselineMismatch {
        /// The delta's baseline.
        baseline: u32,
        /// The tick the client holds, if any.
        held: Option<u32>,
    },
    /// An entity kind the schema does not have.
    #[error("unknown entity kind {0}")]
    UnknownKind(u32),
    /// A position outside the baseline's list, or positions not ascending.
    #[error("an entity position outside the baseline's list")]
    BadPosition,
    /// A created entity that is already in the list.
    #[error("entity {0} created twice")]
    DuplicateEntity(u32),
    /// More entities than [`MAX_SNAPSHOT_ENTITIES`].
    #[error("too many entities")]
    TooManyEntities,
    /// Bytes after the end of a part.
    #[error("bytes after the end of the snapshot")]
    TrailingBytes,
}

impl From<EndOfStream> for StateDecodeError {
    fn from(_: EndOfStream) -> Self {
        StateDecodeError::Wire(WireError::Truncated)
    }
}

/// One entity as the client holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEntity {
    /// Its id.
    pub id: u32,
    /// Its kind.
    pub kind: u16,
    /// The player controlling it.
    pub controlled_by: PlayerRef,
    /// Its quantized fields (those this client has seen).
    pub row: Row,
    /// In the shared body's list.
    in_shared: bool,
    /// In this player's own list: `Some(partial)`.
    in_own: Option<bool>,
}

/// What one applied snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied<'a> {
    /// The snapshot's tick.
    pub tick: u32,
    /// A full snapshot (everything was replaced).
    pub full: bool,
    /// The last input of this player the server had applied.
    pub ack_seq: u32,
    /// Entities that appeared, ascending ids.
    pub created: &'a [u32],
    /// Entities that changed.
    pub changed: &'a [u32],
    /// Entities that disappeared.
    pub removed: &'a [u32],
}

#[derive(Debug, Clone, Copy)]
struct Created {
    id: u32,
    kind: u16,
    controlled_by: PlayerRef,
    partial: bool,
    include: u32,
    at: usize,
}

#[derive(Debug, Clone, Copy)]
struct Changed {
    id: u32,
    mask: u32,
    at: usize,
}

/// One section decoded, not yet applied.
#[derive(Debug, Default)]
struct Ops {
    top_mask: u32,
    top: Row,
    removed: Vec<u32>,
    kept: Vec<u32>,
    changed: Vec<Changed>,
    created: Vec<Created>,
    words: Vec<u32>,
    text: String,
}

/// A client's copy of the game state: the lobby state, its private state and every
/// entity it may see. [`ClientState::apply`] takes each snapshot message in order.
#[derive(Debug)]
pub struct ClientState {
    codec: Arc<Codec>,
    me: PlayerRef,
    tick: Option<u32>,
    ack_seq: u32,
    lobby: Row,
    private: Row,
    entities: BTreeMap<u32, ClientEntity>,
    /// Ids in the shared body's list, ascending (its positions are indices into it).
    shared: Vec<u32>,
    /// Ids in this player's own list.
    own: Vec<u32>,
    ops: [Ops; 2],
    touched: Vec<(u32, u32, bool)>,
    created: Vec<u32>,
    changed: Vec<u32>,
    removed: Vec<u32>,
}

impl ClientState {
    /// An empty state for the player in seat `me`; the first snapshot must be full.
    pub fn new(codec: Arc<Codec>, me: PlayerRef) -> Self {
        Self {
            lobby: Row::zero(&codec.lobby),
            private: Row::zero(&codec.private),
            codec,
            me,
            tick: None,
            ack_seq: 0,
            entities: BTreeMap::new(),
            shared: Vec::new(),
            own: Vec::new(),
            ops: Default::default(),
            touched: Vec::new(),
            created: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// The seat this state is for.
    pub fn me(&self) -> PlayerRef {
        self.me
    }

    /// The codec.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The tick of the last applied snapshot.
    pub fn tick(&self) -> Option<u32> {
        self.tick
    }

    /// The `ack_seq` of the last applied snapshot.
    pub fn ack_seq(&self) -> u32 {
        self.ack_seq
    }

    /// The lobby state as `T`.
    pub fn lobby<T: Fields>(&self) -> T {
        self.lobby.get(&self.codec.lobby)
    }

    /// The lobby state, dynamically.
    pub fn lobby_values(&self) -> Vec<Value> {
        self.lobby.values(&self.codec.lobby)
    }

    /// This player's private state as `T`.
    pub fn private<T: Fields>(&self) -> T {
        self.private.get(&self.codec.private)
    }

    /// This player's private state, dynamically.
    pub fn private_values(&self) -> Vec<Value> {
        self.private.values(&self.codec.private)
    }

    /// An entity.
    pub fn entity(&self, id: u32) -> Option<&ClientEntity> {
        self.entities.get(&id)
    }

    /// Every entity, ascending ids.
    pub fn entities(&self) -> impl Iterator<Item = &ClientEntity> {
        self.entities.values()
    }

    /// An entity as `T` (None if absent or of another kind).
    pub fn entity_as<T: Fields>(&self, id: u32) -> Option<T> {
        let e = self.entities.get(&id)?;
        let row = self.codec.kinds.get(usize::from(e.kind))?;
        (row.name == T::NAME).then(|| e.row.get(row))
    }

    /// An entity as the game's entity enum `M` (one variant per kind, `#[derive(Messages)]`;
    /// None if absent). The kind index is the variant index.
    pub fn entity_of<M: Messages>(&self, id: u32) -> Option<M> {
        let e = self.entities.get(&id)?;
        let row = self.codec.kinds.get(usize::from(e.kind))?;
        M::read_fields(
            usize::from(e.kind),
            &mut RowReader::new(row, &e.row.words, &e.row.text),
        )
    }

    /// An entity's fields, dynamically: (name, value) in field order.
    pub fn entity_values(&self, id: u32) -> Option<Vec<(String, Value)>> {
        let e = self.entities.get(&id)?;
        let row = self.codec.kinds.get(usize::from(e.kind))?;
        let mut r = RowReader::new(row, &e.row.words, &e.row.text);
        Some(
            row.declared
                .iter()
                .map(|f| (f.name.clone(), r.value()))
                .collect(),
        )
    }

    /// Applies one snapshot message (tag, ack, own part, shared body). A delta must be
    /// against the tick this state holds; on any error nothing changes.
    pub fn apply(&mut self, message: &[u8]) -> Result<Applied<'_>, StateDecodeError> {
        let Some(parts) = split_snapshot(message) else {
            return Err(if message.first() == Some(&SNAPSHOT_TAG) {
                StateDecodeError::Wire(WireError::Truncated)
            } else {
                StateDecodeError::NotASnapshot
            });
        };
        let (ack_seq, own_bytes, body) = (parts.ack_seq, parts.own, parts.shared);
        let mut shared_r = BitReader::new(body);
        let tick = shared_r.read(32)?;
        let diff = shared_r.var()?;
        let full = diff == 0;
        if !full {
            let baseline = tick.checked_sub(diff);
            if baseline.is_none() || baseline != self.tick {
                return Err(StateDecodeError::BaselineMismatch {
                    baseline: baseline.unwrap_or(0),
                    held: self.tick,
                });
            }
        }

        let mut ops = std::mem::take(&mut self.ops);
        let result = (|| {
            let mut own_r = BitReader::with_zero_tail(own_bytes);
            let own_list: &[u32] = if full { &[] } else { &self.own };
            self.decode_section(
                View::Player(self.me),
                full,
                own_list,
                &mut own_r,
                &mut ops[0],
            )?;
            if own_r.remaining() >= 8 {
                return Err(StateDecodeError::TrailingBytes);
            }
            let shared_list: &[u32] = if full { &[] } else { &self.shared };
            self.decode_section(View::Shared, full, shared_list, &mut shared_r, &mut ops[1])?;
            if !shared_r.at_padded_end() {
                return Err(StateDecodeError::TrailingBytes);
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.ops = ops;
            return Err(e);
        }

        // Everything decoded: apply.
        self.touched.clear();
        self.created.clear();
        self.changed.clear();
        self.removed.clear();
        let mut seq = 0u32;
        if full {
            for e in self.entities.values_mut() {
                self.touched.push((e.id, seq, true));
                seq += 1;
                e.in_shared = false;
                e.in_own = None;
            }
            self.shared.clear();
            self.own.clear();
        }
        self.apply_top(true, &ops[0]);
        self.apply_top(false, &ops[1]);
        // Removals of both lists first, so that a creation knows whether the other list
        // still holds the entity after this snapshot.
        for phase in [Phase::Remove, Phase::Change, Phase::Create] {
            self.apply_entities(View::Player(self.me), &ops[0], &mut seq, phase);
            self.apply_entities(View::Shared, &ops[1], &mut seq, phase);
        }
        self.ops = ops;

        // Classify what happened to every touched entity. `seq` grows with every push,
        // so a stable sort by id is the order by (id, seq): each id's first touch first.
        // The list is a few ascending runs, which a stable sort merges in one pass.
        self.touched.sort_by_key(|t| t.0);
        let mut k = 0;
        while k < self.touched.len() {
            let (id, _, existed) = self.touched[k];
            let mut n = k;
            while n < self.touched.len() && self.touched[n].0 == id {
                n += 1;
            }
            let exists = self
                .entities
                .get(&id)
                .is_some_and(|e| e.in_shared || e.in_own.is_some());
            match (existed, exists) {
                (false, true) => self.created.push(id),
                (true, true) => self.changed.push(id),
                (true, false) => {
                    self.entities.remove(&id);
                    self.removed.push(id);
                }
                (false, false) => {
                    self.entities.remove(&id);
                }
            }
            k = n;
        }
        self.tick = Some(tick);
        self.ack_seq = ack_seq;
        Ok(Applied {
            tick,
            full,
            ack_seq,
            created: &self.created,
            changed: &self.changed,
            removed: &self.removed,
        })
    }

    fn top_row(&self, own: bool) -> &RowCodec {
        if own {
            &self.codec.private
        } else {
            &self.codec.lobby
        }
    }

    fn decode_section(
        &self,
        view: View,
        full: bool,
        list: &[u32],
        r: &mut BitReader<'_>,
        ops: &mut Ops,
    ) -> Result<(), StateDecodeError> {
        let codec = &*self.codec;
        let top = self.top_row(matches!(view, View::Player(_)));
        ops.top_mask = if full {
            top.all_mask()
        } else {
            r.read(top.fields.len() as u32)?
        };
        ops.top.words.clear();
        ops.top.words.resize(top.words, 0);
        ops.top.text.clear();
        top.read_wire(ops.top_mask, r, &mut ops.top.words, &mut ops.top.text)?;

        ops.words.clear();
        ops.text.clear();
        // Removed.
        ops.removed.clear();
        let count = r.var()? as usize;
        if count > list.len() {
            return Err(StateDecodeError::BadPosition);
        }
        let mut next = 0usize;
        for _ in 0..count {
            let at = next
                .checked_add(r.var()? as usize)
                .filter(|&p| p < list.len())
                .ok_or(StateDecodeError::BadPosition)?;
            ops.removed.push(at as u32);
            next = at + 1;
        }
        ops.kept.clear();
        let mut gone = ops.removed.iter().peekable();
        for (i, &id) in list.iter().enumerate() {
            if gone.next_if(|&&g| g as usize == i).is_none() {
                ops.kept.push(id);
            }
        }

        // Changed.
        ops.changed.clear();
        let list_mode = r.bit()?;
        let mut positions = std::mem::take(&mut ops.removed);
        let removed_len = positions.len();
        if list_mode {
            let count = r.var()? as usize;
            if count > ops.kept.len() {
                return Err(StateDecodeError::BadPosition);
            }
            let mut next = 0usize;
            for _ in 0..count {
                let at = next
                    .checked_add(r.var()? as usize)
                    .filter(|&p| p < ops.kept.len())
                    .ok_or(StateDecodeError::BadPosition)?;
                positions.push(at as u32);
                next = at + 1;
            }
        } else {
            for i in 0..ops.kept.len() {
                if r.bit()? {
                    positions.push(i as u32);
                }
            }
        }
        for &at in &positions[removed_len..] {
            let id = ops.kept[at as usize];
            let e = self
                .entities
                .get(&id)
                .ok_or(StateDecodeError::BadPosition)?;
            let row = codec
                .kinds
                .get(usize::from(e.kind))
                .ok_or(StateDecodeError::UnknownKind(u32::from(e.kind)))?;
            let partial = match view {
                View::Shared => false,
                View::Player(_) => e.in_own.unwrap_or(false),
            };
            let include = included(row, view, e.controlled_by, partial);
            let mask = read_mask(r, include, row.fields.len())?;
            let at = ops.words.len();
            ops.words.resize(at + row.words, 0);
            row.read_wire(mask, r, &mut ops.words[at..], &mut ops.text)?;
            ops.changed.push(Changed { id, mask, at });
        }
        positions.truncate(removed_len);
        ops.removed = positions;

        // Created.
        ops.created.clear();
        let count = r.var()? as usize;
        if count > MAX_SNAPSHOT_ENTITIES || ops.kept.len() + count > MAX_SNAPSHOT_ENTITIES {
            return Err(StateDecodeError::TooManyEntities);
        }
        let mut next = 0u32;
        let mut kept = ops.kept.iter().peekable();
        for _ in 0..count {
            let id = next
                .checked_add(r.var()?)
                .ok_or(StateDecodeError::BadPosition)?;
            next = id.wrapping_add(1);
            while kept.next_if(|&&k| k < id).is_some() {}
            if kept.peek() == Some(&&id) {
                return Err(StateDecodeError::DuplicateEntity(id));
            }
            let kind = r.read(codec.kind_bits)?;
            let row = codec
                .kinds
                .get(kind as usize)
                .ok_or(StateDecodeError::UnknownKind(kind))?;
            let ctrl = r.read(codec.player_bits)?;
            let controlled_by = PlayerRef(if ctrl <= u32::from(codec.max_players) {
                ctrl as u16
            } else {
                0
            });
            let partial = matches!(view, View::Player(_)) && r.bit()?;
            let include = included(row, view, controlled_by, partial);
            let at = ops.words.len();
            ops.words.resize(at + row.words, 0);
            row.read_wire(include, r, &mut ops.words[at..], &mut ops.text)?;
            ops.created.push(Created {
                id,
                kind: kind as u16,
                controlled_by,
                partial,
                include,
                at,
            });
            if id == u32::MAX && ops.created.len() < count {
                return Err(StateDecodeError::BadPosition);
            }
        }
        Ok(())
    }

    fn apply_top(&mut self, own: bool, ops: &Ops) {
        let codec = Arc::clone(&self.codec);
        let (row, target) = if own {
            (&codec.private, &mut self.private)
        } else {
            (&codec.lobby, &mut self.lobby)
        };
        if ops.top_mask != 0 {
            target.copy_fields(row, ops.top_mask, &ops.top.words, &ops.top.text);
        }
    }

    fn apply_entities(&mut self, view: View, ops: &Ops, seq: &mut u32, phase: Phase) {
        let codec = Arc::clone(&self.codec);
        let own = matches!(view, View::Player(_));
        let list = if own { &mut self.own } else { &mut self.shared };
        let mut touch = |touched: &mut Vec<(u32, u32, bool)>, id: u32, existed: bool| {
            touched.push((id, *seq, existed));
            *seq += 1;
        };
        if phase == Phase::Remove {
            for &at in &ops.removed {
                let id = list[at as usize];
                if let Some(e) = self.entities.get_mut(&id) {
                    touch(&mut self.touched, id, e.in_shared || e.in_own.is_some());
                    if own {
                        e.in_own = None;
                    } else {
                        e.in_shared = false;
                    }
                }
            }
            return;
        }
        if phase == Phase::Change {
            for c in &ops.changed {
                if let Some(e) = self.entities.get_mut(&c.id) {
                    touch(&mut self.touched, c.id, true);
                    if let Some(row) = codec.kinds.get(usize::from(e.kind)) {
                        e.row.copy_fields(
                            row,
                            c.mask,
                            &ops.words[c.at..c.at + row.words],
                            &ops.text,
                        );
                    }
                }
            }
            return;
        }
        for c in &ops.created {
            let Some(row) = codec.kinds.get(usize::from(c.kind)) else {
                continue;
            };
            let e = self.entities.entry(c.id).or_insert_with(|| ClientEntity {
                id: c.id,
                kind: c.kind,
                controlled_by: c.controlled_by,
                row: Row::zero(row),
                in_shared: false,
                in_own: None,
            });
            touch(&mut self.touched, c.id, e.in_shared || e.in_own.is_some());
            // A new entity for this client, unless the other list holds it (then its
            // fields there stay): start from zero, so no field of an earlier life of
            // the id survives.
            let in_other = if own { e.in_shared } else { e.in_own.is_some() };
            if !in_other || e.kind != c.kind {
                e.kind = c.kind;
                e.row = Row::zero(row);
            }
            e.controlled_by = c.controlled_by;
            if own {
                e.in_own = Some(c.partial);
            } else {
                e.in_shared = true;
            }
            e.row.copy_fields(
                row,
                c.include,
                &ops.words[c.at..c.at + row.words],
                &ops.text,
            );
        }
        // The new list: the kept ids and the created ones, merged.
        list.clear();
        let mut created = ops.created.iter().map(|c| c.id).peekable();
        for &k in &ops.kept {
            while let Some(c) = created.next_if(|&c| c < k) {
                list.push(c);
            }
            list.push(k);
        }
        list.extend(created);
    }
}

/// The order of applying a snapshot's two sections: all removals, then all changes,
/// then all creations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Remove,
    Change,
    Create,
}

fn read_mask(r: &mut BitReader<'_>, include: u32, fields: usize) -> Result<u32, EndOfStream> {
    if include == mask_of(fields) {
        return r.read(fields as u32);
    }
    let mut mask = 0;
    for i in 0..fields {
        if include & (1 << i) != 0 && r.bit()? {
            mask |= 1 << i;
        }
    }
    Ok(mask)
}
