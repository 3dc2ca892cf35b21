//! A world at one tick ([`State`]) and the snapshot encoder ([`Encoder`]).

use super::{Chunk, Codec, Kind, PlayerRef, RowCodec, RowWriter, Value};
use crate::bits::{BitWriter, Gather, VAR_GROUP_BITS};
use crate::schema::{Fields, Messages};

/// The tag byte of a snapshot (server → client), the first game frame tag
/// ([`crate::codec::FIRST_FRAME_TAG`]).
pub const SNAPSHOT_TAG: u8 = 64;

/// Most entities one section of a snapshot may create, change or remove, and the most a
/// client keeps in one of its two lists; a decoder refuses more.
pub const MAX_SNAPSHOT_ENTITIES: usize = 16_384;

/// Who may see an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Every player: the entity goes in the shared body, encoded once per tick.
    #[default]
    Everyone,
    /// One player only.
    Only(PlayerRef),
    /// The seats whose bit is set (bit `s - 1` for seat `s`, seats 1 to 64).
    Seats(u64),
    /// Nobody (the game keeps it to itself this tick).
    Nobody,
}

impl Visibility {
    /// Whether `seat` sees the entity.
    pub fn sees(self, seat: PlayerRef) -> bool {
        match self {
            Visibility::Everyone => true,
            Visibility::Only(p) => p == seat && seat.is_some(),
            Visibility::Seats(mask) => {
                (1..=64).contains(&seat.0) && mask & (1u64 << (seat.0 - 1)) != 0
            }
            Visibility::Nobody => false,
        }
    }
}

/// Which part of a snapshot an encoding is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What everyone sees: the lobby state, and the fields (but `owner_only`) of the
    /// entities visible to [`Visibility::Everyone`]. Encoded once per tick.
    Shared,
    /// One player's own part: its private state, the entities visible to it but not to
    /// everyone (all their fields it may see), and the `owner_only` fields of the
    /// entities it controls.
    Player(PlayerRef),
}

/// One entity of a [`State`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityRecord {
    /// Its id: allocated by the server, never reused within a lobby.
    pub id: u32,
    /// Its kind (index into the schema's entity kinds).
    pub kind: u16,
    /// The player who controls (and predicts) it, or none.
    pub controlled_by: PlayerRef,
    /// Who sees it.
    pub visibility: Visibility,
    /// Its row's first word in `State::words`.
    start: u32,
}

/// Why a [`State`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Two entities with one id.
    #[error("two entities have the id {0}")]
    DuplicateId(u32),
    /// No entity kind of that index.
    #[error("no entity kind {0}")]
    UnknownKind(u16),
    /// A private row for a seat outside 1..=cap.
    #[error("no seat {0} in this lobby")]
    NoSuchSeat(u16),
}

/// The world at one tick, quantized: the lobby row, the entities (in ascending id
/// order, each with its kind, controller, visibility and row) and every seat's private
/// row. Built every tick into the same buffers: [`State::begin`], then the `set_*` and
/// `push_*` calls, then [`State::finish`]. Keep earlier ticks with `clone_from` into
/// states of a history ring (which reuses their buffers).
#[derive(Debug, Default)]
pub struct State {
    tick: u32,
    /// The lobby row.
    lobby: Vec<u32>,
    /// Every seat's private row, seat 1 first.
    private: Vec<u32>,
    private_words: usize,
    /// The lobby's player cap (seats with a private row).
    max_players: u16,
    /// Sorted by id after `finish`.
    entities: Vec<EntityRecord>,
    /// Indices (into `entities`) of those some player's own part may carry: not visible
    /// to everyone, or controlled with `owner_only` fields.
    personal: Vec<u32>,
    /// How many entities everyone sees (the shared body's), counted by `finish`.
    shared: u32,
    /// The fewest bits those entities take in a full snapshot, summed by `finish`.
    shared_min_bits: usize,
    /// Entity rows, back to back.
    words: Vec<u32>,
    /// String bytes of every row.
    text: String,
}

impl Clone for State {
    fn clone(&self) -> Self {
        let mut s = State::default();
        s.clone_from(self);
        s
    }

    fn clone_from(&mut self, o: &Self) {
        self.tick = o.tick;
        self.lobby.clone_from(&o.lobby);
        self.private.clone_from(&o.private);
        self.private_words = o.private_words;
        self.max_players = o.max_players;
        self.entities.clone_from(&o.entities);
        self.personal.clone_from(&o.personal);
        self.shared = o.shared;
        self.shared_min_bits = o.shared_min_bits;
        self.words.clone_from(&o.words);
        self.text.clone_from(&o.text);
    }
}

impl State {
    /// An empty state (tick 0, no entities, zero rows) for `codec`'s lobby.
    pub fn new(codec: &Codec) -> Self {
        let mut s = State::default();
        s.begin(codec, 0);
        s
    }

    /// Starts building the state of `tick`: no entities, every row zero.
    pub fn begin(&mut self, codec: &Codec, tick: u32) {
        self.tick = tick;
        self.lobby.clear();
        self.lobby.resize(codec.lobby.words, 0);
        self.private_words = codec.private.words;
        self.max_players = codec.max_players;
        self.private.clear();
        self.private
            .resize(usize::from(codec.max_players) * self.private_words, 0);
        self.entities.clear();
        self.personal.clear();
        self.shared = 0;
        self.shared_min_bits = 0;
        self.words.clear();
        self.text.clear();
    }

    /// Sets the lobby state.
    pub fn set_lobby<T: Fields>(&mut self, codec: &Codec, value: &T) {
        value.write_fields(&mut RowWriter::new(
            &codec.lobby,
            &mut self.lobby,
            &mut self.text,
        ));
    }

    /// Sets the lobby state from dynamic values.
    pub fn set_lobby_values(&mut self, codec: &Codec, values: &[Value]) {
        let mut w = RowWriter::new(&codec.lobby, &mut self.lobby, &mut self.text);
        values.iter().for_each(|v| w.value(v));
    }

    fn private_range(&self, seat: PlayerRef) -> Result<std::ops::Range<usize>, StateError> {
        if seat.0 == 0 || seat.0 > self.max_players {
            return Err(StateError::NoSuchSeat(seat.0));
        }
        let start = (usize::from(seat.0) - 1) * self.private_words;
        Ok(start..start + self.private_words)
    }

    /// Sets `seat`'s private state.
    pub fn set_private<T: Fields>(
        &mut self,
        codec: &Codec,
        seat: PlayerRef,
        value: &T,
    ) -> Result<(), StateError> {
        let range = self.private_range(seat)?;
        value.write_fields(&mut RowWriter::new(
            &codec.private,
            &mut self.private[range],
            &mut self.text,
        ));
        Ok(())
    }

    /// Sets `seat`'s private state from dynamic values.
    pub fn set_private_values(
        &mut self,
        codec: &Codec,
        seat: PlayerRef,
        values: &[Value],
    ) -> Result<(), StateError> {
        let range = self.private_range(seat)?;
        let mut w = RowWriter::new(&codec.private, &mut self.private[range], &mut self.text);
        values.iter().for_each(|v| w.value(v));
        Ok(())
    }

    #[inline]
    fn push_row(
        &mut self,
        row: &RowCodec,
        kind: u16,
        id: u32,
        controlled_by: PlayerRef,
        visibility: Visibility,
    ) -> std::ops::Range<usize> {
        let start = self.words.len();
        // A short row by a fixed-size append cut back to its length: `resize` by a
        // length known only at run time is a `memset` call per entity.
        const SHORT: usize = 8;
        if row.words <= SHORT {
            self.words.extend_from_slice(&[0; SHORT]);
            self.words.truncate(start + row.words);
        } else {
            self.words.resize(start + row.words, 0);
        }
        self.entities.push(EntityRecord {
            id,
            kind,
            controlled_by,
            visibility,
            start: start as u32,
        });
        start..start + row.words
    }

    /// Adds an entity of kind `kind`. Any order; [`State::finish`] sorts.
    pub fn push_entity<T: Fields>(
        &mut self,
        codec: &Codec,
        kind: Kind<T>,
        id: u32,
        controlled_by: PlayerRef,
        visibility: Visibility,
        value: &T,
    ) {
        let Some(row) = codec.kinds.get(usize::from(kind.index)) else {
            return;
        };
        let range = self.push_row(row, kind.index, id, controlled_by, visibility);
        value.write_fields(&mut RowWriter::new(
            row,
            &mut self.words[range],
            &mut self.text,
        ));
    }

    /// Adds an entity of the game's entity enum `M` (one variant per kind,
    /// `#[derive(Messages)]`): the variant index is the kind index. Any order.
    pub fn push_entity_of<M: Messages>(
        &mut self,
        codec: &Codec,
        id: u32,
        controlled_by: PlayerRef,
        visibility: Visibility,
        value: &M,
    ) -> Result<(), StateError> {
        let index = value.type_index();
        let kind = u16::try_from(index).map_err(|_| StateError::UnknownKind(u16::MAX))?;
        let row = codec
            .kinds
            .get(index)
            .ok_or(StateError::UnknownKind(kind))?;
        let range = self.push_row(row, kind, id, controlled_by, visibility);
        value.write_fields(&mut RowWriter::new(
            row,
            &mut self.words[range],
            &mut self.text,
        ));
        Ok(())
    }

    /// Adds an entity from dynamic values (in field order).
    pub fn push_entity_values(
        &mut self,
        codec: &Codec,
        kind: u16,
        id: u32,
        controlled_by: PlayerRef,
        visibility: Visibility,
        values: &[Value],
    ) -> Result<(), StateError> {
        let row = codec
            .kinds
            .get(usize::from(kind))
            .ok_or(StateError::UnknownKind(kind))?;
        let range = self.push_row(row, kind, id, controlled_by, visibility);
        let mut w = RowWriter::new(row, &mut self.words[range], &mut self.text);
        values.iter().for_each(|v| w.value(v));
        Ok(())
    }

    /// Ends building: sorts the entities by id (cheap when they came in order) and
    /// indexes the ones players' own parts may carry.
    pub fn finish(&mut self, codec: &Codec) -> Result<(), StateError> {
        if !self.entities.is_sorted_by_key(|e| e.id) {
            self.entities.sort_unstable_by_key(|e| e.id);
        }
        if let Some(w) = self.entities.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(StateError::DuplicateId(w[0].id));
        }
        self.personal.clear();
        self.shared = 0;
        self.shared_min_bits = 0;
        // An id gap of one var4 group, the kind and controller, the shared fields.
        let head_bits = (VAR_GROUP_BITS + codec.kind_bits + codec.player_bits) as usize;
        for (i, e) in self.entities.iter().enumerate() {
            let Some(kind) = codec.kinds.get(usize::from(e.kind)) else {
                continue;
            };
            let everyone = e.visibility == Visibility::Everyone;
            self.shared += u32::from(everyone);
            if everyone {
                self.shared_min_bits += head_bits + kind.min_shared_bits as usize;
            }
            if !everyone || (e.controlled_by.is_some() && kind.owner_mask != 0) {
                self.personal.push(i as u32);
            }
        }
        Ok(())
    }

    /// A lower bound of [`Encoder::full_shared_len`] (its entities at their shortest),
    /// known without a walk over the entities: a delta shorter than this is shorter than
    /// the full part, and the exact count can be skipped.
    pub fn full_shared_len_at_least(&self) -> usize {
        self.shared_min_bits / 8
    }

    /// The tick.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// The entities, in ascending id order.
    pub fn entities(&self) -> &[EntityRecord] {
        &self.entities
    }

    /// An entity's row as `T` (typed decode of the quantized values).
    pub fn entity<T: Fields>(&self, codec: &Codec, id: u32) -> Option<T> {
        let i = self.entities.binary_search_by_key(&id, |e| e.id).ok()?;
        let e = &self.entities[i];
        let row = codec.kinds.get(usize::from(e.kind))?;
        let words = &self.words[e.start as usize..e.start as usize + row.words];
        Some(T::read_fields(&mut super::RowReader::new(
            row, words, &self.text,
        )))
    }

    /// An entity's fields, dynamically, in field order.
    pub fn entity_values(&self, codec: &Codec, id: u32) -> Option<Vec<Value>> {
        let i = self.entities.binary_search_by_key(&id, |e| e.id).ok()?;
        let e = &self.entities[i];
        let row = codec.kinds.get(usize::from(e.kind))?;
        Some(row.values(self.entity_words(codec, e), &self.text))
    }

    fn entity_words(&self, codec: &Codec, e: &EntityRecord) -> &[u32] {
        let n = codec.kinds.get(usize::from(e.kind)).map_or(0, |k| k.words);
        &self.words[e.start as usize..e.start as usize + n]
    }

    fn private_words(&self, seat: PlayerRef) -> &[u32] {
        match self.private_range(seat) {
            Ok(r) => &self.private[r],
            Err(_) => &[],
        }
    }
}

/// How an entity is carried in one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    /// Its row's first word in the state's words.
    start: u32,
    id: u32,
    kind: u16,
    controlled_by: PlayerRef,
    /// Only the `owner_only` fields (the rest is in the shared body).
    partial: bool,
    /// Mask of the fields carried.
    include: u32,
}

impl Member {
    /// How `e`, of kind `krow`, is carried in the shared body: its shared fields.
    fn shared(e: &EntityRecord, krow: &RowCodec) -> Self {
        Self {
            start: e.start,
            id: e.id,
            kind: e.kind,
            controlled_by: e.controlled_by,
            partial: false,
            include: krow.shared_mask,
        }
    }
}

/// The layout of `e`'s kind if `e` goes in the shared body (everyone sees it and its kind
/// is known), else None: the one rule the full writer, its length counter and the delta
/// merges share.
#[inline]
fn shared_kind<'c>(codec: &'c Codec, e: &EntityRecord) -> Option<&'c RowCodec> {
    if e.visibility != Visibility::Everyone {
        return None;
    }
    codec.kinds.get(usize::from(e.kind))
}

/// The fields an entity carries in a view (see `PROTOCOL.md`): the decoder computes
/// the same from the kind, the controller, the partial bit and its own seat.
pub(crate) fn included(row: &RowCodec, view: View, controlled_by: PlayerRef, partial: bool) -> u32 {
    let all = row.all_mask();
    match view {
        View::Shared => row.shared_mask,
        View::Player(_) if partial => row.owner_mask,
        View::Player(p) if controlled_by == p => all,
        View::Player(_) => all & !row.owner_mask,
    }
}

fn membership(codec: &Codec, e: &EntityRecord, view: View) -> Option<(bool, u32)> {
    let row = codec.kinds.get(usize::from(e.kind))?;
    match view {
        View::Shared if e.visibility == Visibility::Everyone => {
            Some((false, included(row, view, e.controlled_by, false)))
        }
        View::Shared => None,
        View::Player(p) if e.visibility != Visibility::Everyone && e.visibility.sees(p) => {
            Some((false, included(row, view, e.controlled_by, false)))
        }
        View::Player(p)
            if e.visibility == Visibility::Everyone
                && e.controlled_by == p
                && p.is_some()
                && row.owner_mask != 0 =>
        {
            Some((true, row.owner_mask))
        }
        View::Player(_) => None,
    }
}

/// A changed entity: its position in the kept list and what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    kept: u32,
    /// Its row's first word in the new state's words.
    start: u32,
    kind: u16,
    mask: u32,
    include: u32,
}

/// Writes snapshots. Holds scratch buffers only, so one encoder serves a whole lobby;
/// every call is a pure function of its arguments.
#[derive(Debug, Default)]
pub struct Encoder {
    from: Vec<Member>,
    to: Vec<Member>,
    removed: Vec<u32>,
    changed: Vec<Change>,
    created: Vec<u32>,
}

/// The baseline a snapshot from `from` to `to` really uses: none (a full snapshot) if
/// `from` is not an earlier tick.
fn baseline<'s>(from: Option<&'s State>, to: &State) -> Option<&'s State> {
    from.filter(|f| f.tick < to.tick)
}

impl Encoder {
    /// An encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the shared body of the snapshot of `to`: as changes from `from` (a state
    /// the recipients have), or in full if `from` is None or not an earlier tick.
    /// Returns its length in bytes.
    pub fn encode_shared(
        &mut self,
        codec: &Codec,
        from: Option<&State>,
        to: &State,
        out: &mut Vec<u8>,
    ) -> usize {
        let from = baseline(from, to);
        let mut w = BitWriter::new(out);
        w.write(to.tick, 32);
        w.var(from.map_or(0, |f| to.tick - f.tick));
        match from {
            Some(_) => self.section(codec, from, to, View::Shared, &mut w),
            None => full_shared(codec, to, &mut w),
        }
        w.finish()
    }

    /// The length in bytes of the shared body of a full snapshot of `to` (what
    /// `encode_shared(codec, None, to, ..)` appends), counted without writing it: a
    /// lobby that needs no full snapshot this tick still compares its delta with it.
    pub fn full_shared_len(&self, codec: &Codec, to: &State) -> usize {
        use crate::bits::var_bits;
        let row = &codec.lobby;
        let mut bits = 32 + var_bits(0) as usize;
        bits += if to.lobby.len() == row.words {
            row.wire_bits(row.all_mask(), &to.lobby, &to.text)
        } else {
            row.wire_bits(row.all_mask(), &vec![0; row.words], "")
        };
        // Nothing removed, the empty changed bitmap's flag, the created count.
        bits += var_bits(0) as usize + 1 + var_bits(to.shared) as usize;
        let head_bits = (codec.kind_bits + codec.player_bits) as usize;
        let mut next = 0u32;
        for (e, krow, words) in shared_entities(codec, to) {
            bits += var_bits(e.id - next) as usize + head_bits;
            next = e.id.wrapping_add(1);
            bits += krow.wire_bits(krow.shared_mask, words, &to.text);
        }
        bits.div_ceil(8)
    }

    /// Appends `seat`'s own part of the snapshot of `to`, against the same baseline as
    /// the shared body it goes with, trailing zero bytes trimmed (often nothing at all).
    /// Returns its length in bytes.
    pub fn encode_player(
        &mut self,
        codec: &Codec,
        from: Option<&State>,
        to: &State,
        seat: PlayerRef,
        out: &mut Vec<u8>,
    ) -> usize {
        let from = baseline(from, to);
        // No private row and no entity any player's own part carries (arena, hill): the
        // section is all zero bits, cut to nothing. Skip building it for every player.
        if codec.private.fields.is_empty()
            && to.personal.is_empty()
            && from.is_none_or(|f| f.personal.is_empty())
        {
            return 0;
        }
        let start = out.len();
        let mut w = BitWriter::new(out);
        self.section(codec, from, to, View::Player(seat), &mut w);
        w.finish();
        while out.len() > start && out.last() == Some(&0) {
            out.pop();
        }
        out.len() - start
    }

    /// Appends a whole snapshot message for `seat` (tag, `ack_seq`, its own part, the
    /// shared body): what a lobby with one player, a test or a per-player encoder sends.
    pub fn encode_snapshot(
        &mut self,
        codec: &Codec,
        from: Option<&State>,
        to: &State,
        seat: PlayerRef,
        ack_seq: u32,
        out: &mut Vec<u8>,
    ) {
        let mut personal = Vec::new();
        self.encode_player(codec, from, to, seat, &mut personal);
        let mut body = Vec::new();
        self.encode_shared(codec, from, to, &mut body);
        write_snapshot(ack_seq, &personal, &body, out);
    }

    fn members(codec: &Codec, state: &State, view: View, out: &mut Vec<Member>) {
        out.clear();
        match view {
            View::Shared => {
                // Every entity visible to everyone, its shared fields: no per-entity
                // view logic.
                out.extend(
                    state
                        .entities
                        .iter()
                        .filter_map(|e| Some(Member::shared(e, shared_kind(codec, e)?))),
                );
            }
            View::Player(_) => {
                for &i in &state.personal {
                    let e = &state.entities[i as usize];
                    if let Some((partial, include)) = membership(codec, e, view) {
                        out.push(Member {
                            start: e.start,
                            id: e.id,
                            kind: e.kind,
                            controlled_by: e.controlled_by,
                            partial,
                            include,
                        });
                    }
                }
            }
        }
    }

    /// Merges the baseline's members of `view` with the new state's by id into the
    /// removed, changed and created lists; returns how many entities were kept.
    fn merge(&mut self, codec: &Codec, from: Option<&State>, to: &State, view: View) -> u32 {
        self.clear_lists();
        Self::members(codec, to, view, &mut self.to);
        self.from.clear();
        if let Some(f) = from {
            Self::members(codec, f, view, &mut self.from);
        }
        let (mut i, mut j, mut kept) = (0usize, 0usize, 0u32);
        if self.from.is_empty() {
            // A full snapshot (or an empty baseline): everything is created.
            self.created.extend(0..self.to.len() as u32);
            j = self.to.len();
        }
        while i < self.from.len() || j < self.to.len() {
            let a = self.from.get(i);
            let b = self.to.get(j);
            match (a, b) {
                (Some(a), Some(b)) if a.id == b.id => {
                    if a.kind == b.kind
                        && a.controlled_by == b.controlled_by
                        && a.partial == b.partial
                    {
                        if let (Some(f), Some(krow)) = (from, codec.kinds.get(usize::from(b.kind)))
                        {
                            self.diff_kept(
                                krow,
                                (f, a.start),
                                (to, b.start, b.kind),
                                b.include,
                                kept,
                            );
                        }
                        kept += 1;
                    } else {
                        // A new controller or carriage: removed and created again.
                        self.removed.push(i as u32);
                        self.created.push(j as u32);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(a), b) if b.is_none_or(|b| a.id < b.id) => {
                    self.removed.push(i as u32);
                    i += 1;
                }
                _ => {
                    self.created.push(j as u32);
                    j += 1;
                }
            }
        }
        kept
    }

    /// [`Encoder::merge`] of the shared view against a baseline, walking the two
    /// states' entity lists in place (no member lists built): what every tick of steady
    /// play runs. Leaves the created entities' members alone in `self.to`.
    fn merge_shared(&mut self, codec: &Codec, from: &State, to: &State) -> u32 {
        self.clear_lists();
        let carried = |e: &&EntityRecord| shared_kind(codec, e).is_some();
        let mut olds = from.entities.iter().filter(carried);
        let mut news = to.entities.iter().filter(carried);
        let (mut a, mut b) = (olds.next(), news.next());
        let (mut i, mut kept) = (0u32, 0u32);
        loop {
            match (a, b) {
                (Some(x), Some(y)) if x.id == y.id => {
                    if x.kind == y.kind && x.controlled_by == y.controlled_by {
                        let krow = &codec.kinds[usize::from(y.kind)];
                        self.diff_kept(
                            krow,
                            (from, x.start),
                            (to, y.start, y.kind),
                            krow.shared_mask,
                            kept,
                        );
                        kept += 1;
                    } else {
                        self.removed.push(i);
                        self.create_shared(codec, y);
                    }
                    i += 1;
                    (a, b) = (olds.next(), news.next());
                }
                (Some(x), y) if y.is_none_or(|y| x.id < y.id) => {
                    self.removed.push(i);
                    i += 1;
                    a = olds.next();
                }
                (_, Some(y)) => {
                    self.create_shared(codec, y);
                    b = news.next();
                }
                _ => return kept,
            }
        }
    }

    /// Compares a kept entity's row in the baseline (`a`: the state and the row's first
    /// word) and the new state (`b`: the same and the entity's kind) over the fields in
    /// `include`; a change goes in the changed list at position `kept`.
    #[inline(always)]
    fn diff_kept(
        &mut self,
        krow: &RowCodec,
        (from, a): (&State, u32),
        (to, b, kind): (&State, u32, u16),
        include: u32,
        kept: u32,
    ) {
        let mask = krow.diff(
            include,
            row_words(&from.words, a, krow),
            &from.text,
            row_words(&to.words, b, krow),
            &to.text,
        );
        if mask != 0 {
            self.changed.push(Change {
                kept,
                start: b,
                kind,
                mask,
                include,
            });
        }
    }

    fn clear_lists(&mut self) {
        self.from.clear();
        self.to.clear();
        self.removed.clear();
        self.changed.clear();
        self.created.clear();
    }

    fn create_shared(&mut self, codec: &Codec, e: &EntityRecord) {
        if let Some(krow) = shared_kind(codec, e) {
            self.created.push(self.to.len() as u32);
            self.to.push(Member::shared(e, krow));
        }
    }

    fn section(
        &mut self,
        codec: &Codec,
        from: Option<&State>,
        to: &State,
        view: View,
        w: &mut BitWriter<'_>,
    ) {
        // The lobby row (shared) or the player's private row.
        let (row, from_top, to_top) = match view {
            View::Shared => (&codec.lobby, from.map(|f| &f.lobby[..]), &to.lobby[..]),
            View::Player(p) => (
                &codec.private,
                from.map(|f| f.private_words(p)),
                to.private_words(p),
            ),
        };
        let all = row.all_mask();
        match (from, from_top) {
            (Some(f), Some(ft)) if ft.len() == to_top.len() && to_top.len() == row.words => {
                let mask = row.diff(all, ft, &f.text, to_top, &to.text);
                w.write(mask, row.fields.len() as u32);
                row.write_wire(mask, to_top, &to.text, w);
            }
            _ if to_top.len() == row.words => row.write_wire(all, to_top, &to.text, w),
            // A seat without a row (0, or above the cap): zeros.
            _ => {
                let zero = vec![0; row.words];
                row.write_wire(all, &zero, "", w);
            }
        }

        // The entities: merge the baseline's list and the new one by id.
        let kept = match (view, from) {
            (View::Shared, Some(f)) => self.merge_shared(codec, f, to),
            _ => self.merge(codec, from, to, view),
        };

        // Removed: positions in the baseline's list, as gaps.
        w.var(self.removed.len() as u32);
        let mut next = 0;
        for &r in &self.removed {
            w.var(r - next);
            next = r + 1;
        }

        // Changed: a bitmap over the kept list, or positions as gaps, whichever is
        // smaller (the bitmap on a tie).
        let bitmap_bits = kept as usize;
        let mut list_bits = crate::bits::var_bits(self.changed.len() as u32) as usize;
        let mut next = 0;
        for c in &self.changed {
            list_bits += crate::bits::var_bits(c.kept - next) as usize;
            next = c.kept + 1;
        }
        if list_bits < bitmap_bits {
            w.bit(true);
            w.var(self.changed.len() as u32);
            let mut next = 0;
            for c in &self.changed {
                w.var(c.kept - next);
                next = c.kept + 1;
            }
        } else {
            w.bit(false);
            let mut next = 0u32;
            for c in &self.changed {
                let mut gap = c.kept - next;
                while gap >= 32 {
                    w.write(0, 32);
                    gap -= 32;
                }
                w.write(0, gap);
                w.bit(true);
                next = c.kept + 1;
            }
            let mut rest = kept - next;
            while rest >= 32 {
                w.write(0, 32);
                rest -= 32;
            }
            w.write(0, rest);
        }
        let mut g = w.gather();
        for c in &self.changed {
            let Some(krow) = codec.kinds.get(usize::from(c.kind)) else {
                continue;
            };
            write_mask(&mut g, w, c.mask, c.include, krow.fields.len());
            let words = row_words(&to.words, c.start, krow);
            g = krow.gather_wire(g, c.mask, words, &to.text, w);
        }

        // Created: ids as gaps, kind, controller, (own part: the partial bit), fields.
        g.var(w, self.created.len() as u32);
        let mut next = 0u32;
        for &c in &self.created {
            let m = self.to[c as usize];
            g.var(w, m.id - next);
            next = m.id.wrapping_add(1);
            let Some(krow) = codec.kinds.get(usize::from(m.kind)) else {
                continue;
            };
            let words = row_words(&to.words, m.start, krow);
            if view == View::Shared {
                g = krow.write_created_shared(
                    g,
                    head(codec, m.kind, m.controlled_by),
                    codec.kind_bits + codec.player_bits,
                    words,
                    &to.text,
                    w,
                );
                continue;
            }
            g.put(w, u32::from(m.kind), codec.kind_bits);
            g.put(w, u32::from(m.controlled_by.0), codec.player_bits);
            g.put(w, u32::from(m.partial), 1);
            g = krow.gather_wire(g, m.include, words, &to.text, w);
        }
        g.flush(w);
    }
}

/// The entities of a full snapshot's shared body, in id order: those everyone sees, with
/// their kind's layout and row (what `State::finish` counts as `shared`).
fn shared_entities<'s>(
    codec: &'s Codec,
    to: &'s State,
) -> impl Iterator<Item = (&'s EntityRecord, &'s RowCodec, &'s [u32])> {
    to.entities.iter().filter_map(move |e| {
        let krow = shared_kind(codec, e)?;
        Some((e, krow, row_words(&to.words, e.start, krow)))
    })
}

/// A created entity's kind and controller, as the low bits of a packing chunk.
#[inline(always)]
fn head(codec: &Codec, kind: u16, controlled_by: PlayerRef) -> u64 {
    // Each cut to its width, as `Gather::put` does.
    let low = |v: u16, bits: u32| u64::from(v) & ((1u64 << bits) - 1);
    low(kind, codec.kind_bits) | (low(controlled_by.0, codec.player_bits) << codec.kind_bits)
}

/// The shared section of a full snapshot: what [`Encoder::section`] writes for
/// [`View::Shared`] without a baseline (the lobby row; nothing removed; an empty
/// changed bitmap; every entity everyone sees, created), straight from the state's
/// entity list, without the merge's lists. The lobby sends one every tick someone joins
/// or skips, and the unit test below holds it to the general path's bytes.
fn full_shared(codec: &Codec, to: &State, w: &mut BitWriter<'_>) {
    let row = &codec.lobby;
    if to.lobby.len() == row.words {
        row.write_wire(row.all_mask(), &to.lobby, &to.text, w);
    } else {
        row.write_wire(row.all_mask(), &vec![0; row.words], "", w);
    }
    let mut g = w.gather();
    // Removed: a count of 0; changed: the bitmap form (flag 0) over no kept entities.
    g.var(w, 0);
    g.put(w, 0, 1);
    g.var(w, to.shared);
    let head_bits = codec.kind_bits + codec.player_bits;
    let mut next = 0u32;
    let mut rest = to.entities.as_slice();
    while let Some((e, tail)) = rest.split_first() {
        let Some(krow) = shared_kind(codec, e) else {
            rest = tail;
            continue;
        };
        // A run of entities of one kind of a single chunk, in a loop of its own.
        if let Some(c) = krow.single_chunk() {
            let taken;
            (g, taken) = match c.len {
                1 => pack_run::<1>(codec, to, rest, krow, c, g, &mut next, w),
                2 => pack_run::<2>(codec, to, rest, krow, c, g, &mut next, w),
                3 => pack_run::<3>(codec, to, rest, krow, c, g, &mut next, w),
                4 => pack_run::<4>(codec, to, rest, krow, c, g, &mut next, w),
                5 => pack_run::<5>(codec, to, rest, krow, c, g, &mut next, w),
                6 => pack_run::<6>(codec, to, rest, krow, c, g, &mut next, w),
                7 => pack_run::<7>(codec, to, rest, krow, c, g, &mut next, w),
                8 => pack_run::<8>(codec, to, rest, krow, c, g, &mut next, w),
                _ => (g, 0),
            };
            if taken > 0 {
                rest = &rest[taken..];
                continue;
            }
        }
        g.var(w, e.id - next);
        next = e.id.wrapping_add(1);
        g = krow.write_created_shared(
            g,
            head(codec, e.kind, e.controlled_by),
            head_bits,
            row_words(&to.words, e.start, krow),
            &to.text,
            w,
        );
        rest = tail;
    }
    g.flush(w);
}

/// [`full_shared`]'s entities from the first of `run` on, while they are of its kind
/// (`krow`, packed by its only chunk `c` of `N` words) and seen by everyone: the
/// kind's layout looked up once for all of them. Returns how many it wrote.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pack_run<const N: usize>(
    codec: &Codec,
    to: &State,
    run: &[EntityRecord],
    krow: &RowCodec,
    c: &Chunk,
    mut g: Gather,
    next: &mut u32,
    w: &mut BitWriter<'_>,
) -> (Gather, usize) {
    let Some(kind) = run.first().map(|e| e.kind) else {
        return (g, 0);
    };
    let words = krow.words();
    let mut taken = 0;
    for e in run {
        if e.kind != kind || e.visibility != Visibility::Everyone {
            break;
        }
        let start = e.start as usize;
        let Some(row) = to.words.get(start..start + words) else {
            break;
        };
        g.var(w, e.id - *next);
        *next = e.id.wrapping_add(1);
        let packed = head(codec, kind, e.controlled_by) | c.pack_n::<N>(row);
        g = c.put(g, packed, row, w);
        taken += 1;
    }
    (g, taken)
}

/// The row of kind `row` starting at word `start`.
#[inline]
fn row_words<'w>(words: &'w [u32], start: u32, row: &RowCodec) -> &'w [u32] {
    &words[start as usize..start as usize + row.words]
}

/// Writes a changed-field mask: one bit per carried field, in field order.
#[inline]
fn write_mask(g: &mut Gather, w: &mut BitWriter<'_>, mask: u32, include: u32, fields: usize) {
    if include == super::mask_of(fields) {
        // At most 32 fields (`schema::MAX_FIELDS`).
        g.put(w, mask, fields as u32);
        return;
    }
    for i in 0..fields {
        if include & (1 << i) != 0 {
            g.put(w, u32::from(mask & (1 << i) != 0), 1);
        }
    }
}

/// Appends a snapshot message: the tag, `ack_seq` and the length of the player's own
/// part (both LEB128 varints: 7 bits per byte, low first, high bit = more), that part,
/// and the shared body.
pub fn write_snapshot(ack_seq: u32, personal: &[u8], body: &[u8], out: &mut Vec<u8>) {
    out.reserve(snapshot_head_len(ack_seq, personal.len()) + personal.len() + body.len());
    out.push(SNAPSHOT_TAG);
    push_leb128(u64::from(ack_seq), out);
    push_leb128(personal.len() as u64, out);
    out.extend_from_slice(personal);
    out.extend_from_slice(body);
}

/// The bytes of a snapshot message before its own part: the tag and the two varints.
pub fn snapshot_head_len(ack_seq: u32, own_len: usize) -> usize {
    let leb = |v: u64| ((64 - v.leading_zeros()).max(1)).div_ceil(7) as usize;
    1 + leb(u64::from(ack_seq)) + leb(own_len as u64)
}

fn push_leb128(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Longest LEB128 `ack_seq` (a `u32`) and own part length (below 2^21 bytes).
const ACK_LEB128_BYTES: usize = 5;
const OWN_LEN_LEB128_BYTES: usize = 3;

/// A LEB128 varint of at most `max` bytes at the start of `bytes`, and what follows it.
fn read_leb128(bytes: &[u8], max: usize) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(max) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// A snapshot message's parts, split without decoding them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotParts<'m> {
    /// The newest input sequence the server had applied for this player.
    pub ack_seq: u32,
    /// The player's own part (trailing zero bytes cut).
    pub own: &'m [u8],
    /// The shared part: the same bytes for every player of the lobby.
    pub shared: &'m [u8],
}

impl SnapshotParts<'_> {
    /// The shared part's tick and whether the snapshot is a delta, from its first 5
    /// bytes (32 bits of tick at a byte boundary, then the first var4 group of the
    /// baseline distance, 0 for a full snapshot), without decoding it; None if the part
    /// is shorter.
    pub fn tick_and_delta(&self) -> Option<(u32, bool)> {
        let [t0, t1, t2, t3, first, ..] = self.shared else {
            return None;
        };
        Some((u32::from_le_bytes([*t0, *t1, *t2, *t3]), first & 0x0f != 0))
    }
}

/// Splits a snapshot message into its parts; None if it is not one (another tag, a
/// varint too long or above its type, an own part running past the end).
pub fn split_snapshot(message: &[u8]) -> Option<SnapshotParts<'_>> {
    let [SNAPSHOT_TAG, rest @ ..] = message else {
        return None;
    };
    let (ack, rest) = read_leb128(rest, ACK_LEB128_BYTES)?;
    let ack_seq = u32::try_from(ack).ok()?;
    let (own_len, rest) = read_leb128(rest, OWN_LEN_LEB128_BYTES)?;
    let own_len = usize::try_from(own_len).ok()?;
    if own_len > rest.len() {
        return None;
    }
    let (own, shared) = rest.split_at(own_len);
    Some(SnapshotParts {
        ack_seq,
        own,
        shared,
    })
}

/// The `ack_seq` of a snapshot message, read without decoding the rest.
pub fn snapshot_ack(message: &[u8]) -> Option<u32> {
    split_snapshot(message).map(|p| p.ack_seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, FieldType, Schema};

    fn codec() -> Codec {
        let f = Field::new;
        let owner = |name: &str, ty| Field {
            owner_only: true,
            ..Field::new(name, ty)
        };
        let vec2 = FieldType::Vec2 {
            min_x: 0.0,
            max_x: 2000.0,
            min_y: -10.0,
            max_y: 10.0,
            precision: 0.05,
        };
        let schema = Schema::builder("pack")
            .entity_fields(
                "wide",
                vec![
                    f("pos", vec2.clone()),
                    f("vel", vec2),
                    f("score", FieldType::VarUint { max: 100_000 }),
                    f(
                        "big",
                        FieldType::Int {
                            min: 0,
                            max: i64::from(u32::MAX),
                        },
                    ),
                    owner("ammo", FieldType::Int { min: 0, max: 50 }),
                    f("a", FieldType::Angle { bits: 32 }),
                    f(
                        "one",
                        FieldType::Enum {
                            variants: vec!["only".into()],
                        },
                    ),
                    f("kills", FieldType::VarUint { max: 9 }),
                ],
            )
            .entity_fields(
                "var_first",
                vec![
                    f("n", FieldType::VarUint { max: 1000 }),
                    f("b", FieldType::Bool),
                ],
            )
            .entity_fields("empty", vec![])
            .entity_fields(
                "named",
                vec![
                    f("name", FieldType::Str { max_len: 12 }),
                    f("p", FieldType::Player),
                ],
            )
            // One chunk (a hidden word within it) and a var4 word: the run loop's kind.
            .entity_fields(
                "single",
                vec![
                    f(
                        "p",
                        FieldType::Vec2 {
                            min_x: 0.0,
                            max_x: 100.0,
                            min_y: 0.0,
                            max_y: 100.0,
                            precision: 0.5,
                        },
                    ),
                    owner("hp", FieldType::Int { min: 0, max: 9 }),
                    f("on", FieldType::Bool),
                    f("n", FieldType::VarUint { max: 5000 }),
                ],
            )
            // More fixed words than one chunk takes, one of them not shared.
            .entity_fields(
                "many",
                (0..11)
                    .map(|i| match i {
                        4 => owner("secret", FieldType::Bool),
                        _ => Field::new(format!("b{i}"), FieldType::Bool),
                    })
                    .collect(),
            )
            .lobby_fields(vec![f("round", FieldType::VarUint { max: 500 })])
            .input_fields(vec![
                f("who", FieldType::Player),
                f("aim", FieldType::Angle { bits: 10 }),
                f("n", FieldType::VarUint { max: 9 }),
                f(
                    "move",
                    FieldType::Vec2 {
                        min_x: -1.0,
                        max_x: 1.0,
                        min_y: -1.0,
                        max_y: 1.0,
                        precision: 0.3,
                    },
                ),
                f("level", FieldType::Int { min: -3, max: 9 }),
            ])
            .build()
            .expect("valid");
        Codec::new(schema, 5).expect("codec")
    }

    /// A xorshift generator: the tests' worlds are random but the same every run.
    fn rng(mut seed: u32) -> impl FnMut() -> u32 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        }
    }

    /// A random world of every kind of `codec()` at tick `100 + round`: dense ids on even
    /// rounds, sparse on odd ones; hidden entities and seats above the cap.
    fn random_state(codec: &Codec, round: u32, next: &mut impl FnMut() -> u32) -> State {
        let mut s = State::new(codec);
        s.begin(codec, 100 + round);
        s.set_lobby_values(codec, &[Value::Int(i64::from(next() % 600))]);
        let mut id = next() % 20;
        for _ in 0..(next() % 40) {
            id += 1 + next() % if round % 2 == 0 { 2 } else { 300 };
            let visibility = match next() % 6 {
                0 => Visibility::Only(PlayerRef((next() % 7) as u16)),
                1 => Visibility::Nobody,
                _ => Visibility::Everyone,
            };
            // Seats above the cap of 5 too: cut to the width on the wire.
            let by = PlayerRef((next() % 40) as u16);
            let x = (next() % 3000) as f32 - 500.0;
            let (kind, values) = match next() % 6 {
                0 => (
                    0,
                    vec![
                        Value::Vec2([x, (next() % 30) as f32 - 15.0]),
                        Value::Vec2([x * 0.5, 1.0]),
                        Value::Int(i64::from(next() % 200_000)),
                        Value::Int(i64::from(next())),
                        Value::Int(i64::from(next() % 60)),
                        Value::Angle(x),
                        Value::Enum(0),
                        Value::Int(i64::from(next() % 12)),
                    ],
                ),
                1 => (
                    1,
                    vec![
                        Value::Int(i64::from(next() % 2000)),
                        Value::Bool(next() % 2 == 0),
                    ],
                ),
                2 => (2, vec![]),
                3 => (
                    3,
                    vec![
                        Value::Str("ab\u{e9}cdefghijklmn".into()),
                        Value::Player((next() % 9) as u16),
                    ],
                ),
                4 => (
                    4,
                    vec![
                        Value::Vec2([(next() % 120) as f32, (next() % 100) as f32]),
                        Value::Int(i64::from(next() % 10)),
                        Value::Bool(next() % 2 == 0),
                        Value::Int(i64::from(next() % 6000)),
                    ],
                ),
                _ => (5, (0..11).map(|_| Value::Bool(next() % 2 == 0)).collect()),
            };
            s.push_entity_values(codec, kind, id, by, visibility, &values)
                .expect("kind");
        }
        s.finish(codec).expect("finish");
        s
    }

    /// `a` a tick or two later: some entities removed, some given a new controller, some
    /// with a field changed, some new.
    fn changed_state(codec: &Codec, a: &State, next: &mut impl FnMut() -> u32) -> State {
        let mut b = State::new(codec);
        b.begin(codec, a.tick() + 1 + next() % 2);
        let mut last = 0;
        for e in a.entities() {
            last = e.id;
            let mut values = a.entity_values(codec, e.id).expect("its row");
            let mut by = e.controlled_by;
            match next() % 8 {
                0 => continue,
                1 => by = PlayerRef(by.0 % 5 + 1),
                2..=4 => match values.first_mut() {
                    Some(Value::Vec2([x, _])) => *x = (*x + 40.0) % 2000.0,
                    Some(Value::Int(n)) => *n = (*n + 1) % 1000,
                    Some(Value::Str(t)) => t.push('x'),
                    _ => {}
                },
                _ => {}
            }
            b.push_entity_values(codec, e.kind, e.id, by, e.visibility, &values)
                .expect("kind");
        }
        for k in 0..next() % 4 {
            b.push_entity_values(
                codec,
                1,
                last + 1 + k,
                PlayerRef(1),
                Visibility::Everyone,
                &[Value::Int(3), Value::Bool(true)],
            )
            .expect("kind");
        }
        b.finish(codec).expect("finish");
        b
    }

    #[test]
    fn compiled_reads_are_field_by_field_reads() {
        use crate::bits::BitReader;
        let codec = codec();
        let mut next = rng(5);
        let rows = codec.kinds.iter().chain([&codec.lobby, &codec.input]);
        let rows: Vec<&RowCodec> = rows.filter(|r| !r.has_text).collect();
        assert!(rows.len() >= 4);
        for round in 0..3000u32 {
            let row = rows[round as usize % rows.len()];
            // Random bits: words above their range (clamped, a seat above the cap to 0),
            // var4 values past their largest, streams that end early.
            let len = (next() % 24) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mask = next() | if round % 3 == 0 { u32::MAX } else { 0 };
            let (mut a, mut b) = (vec![7; row.words], vec![7; row.words]);
            let (mut ta, mut tb) = (String::new(), String::new());
            let mut ra = BitReader::new(&bytes);
            let mut rb = BitReader::new(&bytes);
            let fast = row.read_wire(mask, &mut ra, &mut a, &mut ta);
            let slow = row.read_by_field(mask, &mut rb, &mut b, &mut tb);
            assert_eq!(fast, slow, "round {round}");
            if fast.is_ok() {
                assert_eq!(a, b, "round {round}");
                assert_eq!(ra.at_padded_end(), rb.at_padded_end(), "round {round}");
            }
        }
    }

    #[test]
    fn the_shared_delta_merge_is_the_general_merge() {
        let codec = codec();
        let mut enc = Encoder::new();
        let mut next = rng(11);
        let mut seen = [0usize; 3];
        for round in 0..400u32 {
            let a = random_state(&codec, round, &mut next);
            let b = changed_state(&codec, &a, &mut next);
            let general = enc.merge(&codec, Some(&a), &b, View::Shared);
            let expect = (
                enc.removed.clone(),
                enc.changed.clone(),
                enc.created
                    .iter()
                    .map(|&c| enc.to[c as usize])
                    .collect::<Vec<_>>(),
            );
            let kept = enc.merge_shared(&codec, &a, &b);
            let got = (
                enc.removed.clone(),
                enc.changed.clone(),
                enc.created
                    .iter()
                    .map(|&c| enc.to[c as usize])
                    .collect::<Vec<_>>(),
            );
            assert_eq!(kept, general, "round {round}");
            assert_eq!(got, expect, "round {round}");
            seen[0] += got.0.len();
            seen[1] += got.1.len();
            seen[2] += got.2.len();
        }
        // Entities were removed, changed and created (again, with a new kind or
        // controller) in many rounds.
        assert!(seen.iter().all(|&n| n > 400), "{seen:?}");
    }

    #[test]
    fn field_steps_write_what_the_wire_steps_write() {
        let codec = codec();
        let mut next = rng(11);
        for round in 0..200u32 {
            let s = random_state(&codec, round, &mut next);
            for e in s.entities() {
                let krow = &codec.kinds[usize::from(e.kind)];
                if krow.has_text {
                    continue;
                }
                let words = row_words(&s.words, e.start, krow);
                for _ in 0..8 {
                    // Any subset of the fields, after an odd number of bits already gathered.
                    let mask = next() & krow.all_mask();
                    let (mut steps, mut ops) = (Vec::new(), Vec::new());
                    for (out, by_op) in [(&mut steps, false), (&mut ops, true)] {
                        let mut w = BitWriter::new(out);
                        let mut g = w.gather();
                        g.put(&mut w, 0b101, 3);
                        g = if by_op {
                            krow.gather_by_op(g, mask, words, &s.text, &mut w)
                        } else {
                            krow.gather_wire(g, mask, words, &s.text, &mut w)
                        };
                        g.flush(&mut w);
                        w.finish();
                    }
                    assert_eq!(steps, ops, "round {round}, {e:?}, mask {mask:#x}");
                }
            }
        }
    }

    #[test]
    fn the_full_path_writes_the_general_paths_bytes() {
        let codec = codec();
        // Both ways through the full writer: runs of a one-chunk kind, and the rest.
        assert!(codec.kinds[4].single_chunk().is_some());
        assert!(
            codec
                .kinds
                .iter()
                .filter(|k| k.single_chunk().is_none())
                .count()
                > 3
        );
        let mut enc = Encoder::new();
        let mut next = rng(7);
        for round in 0..300u32 {
            let s = random_state(&codec, round, &mut next);
            let mut fast = Vec::new();
            enc.encode_shared(&codec, None, &s, &mut fast);
            let mut general = Vec::new();
            let mut w = BitWriter::new(&mut general);
            w.write(s.tick(), 32);
            w.var(0);
            enc.section(&codec, None, &s, View::Shared, &mut w);
            w.finish();
            assert_eq!(fast, general, "round {round}");
            assert_eq!(enc.full_shared_len(&codec, &s), fast.len(), "round {round}");
            assert!(s.full_shared_len_at_least() <= fast.len(), "round {round}");
            // The packing steps against field-by-field appends, entity by entity.
            for e in s.entities() {
                let krow = &codec.kinds[usize::from(e.kind)];
                let words = row_words(&s.words, e.start, krow);
                let (mut packed, mut plain) = (Vec::new(), Vec::new());
                let mut w = BitWriter::new(&mut packed);
                let head_bits = codec.kind_bits + codec.player_bits;
                let by = e.controlled_by;
                let g = krow.write_created_shared(
                    w.gather(),
                    head(&codec, e.kind, by),
                    head_bits,
                    words,
                    &s.text,
                    &mut w,
                );
                g.flush(&mut w);
                let bits = w.bits_written();
                w.finish();
                let mut w = BitWriter::new(&mut plain);
                w.write(u32::from(e.kind), codec.kind_bits);
                w.write(u32::from(by.0), codec.player_bits);
                krow.write_wire(krow.shared_mask, words, &s.text, &mut w);
                assert_eq!(bits, w.bits_written(), "round {round}, {e:?}");
                w.finish();
                assert_eq!(packed, plain, "round {round}, {e:?}");
            }
        }
    }
}
