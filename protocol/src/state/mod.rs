//! Game state driven by a [`Schema`] (protocol 2): quantized rows, snapshots, deltas,
//! inputs, messages and events.
//!
//! - [`Codec`]: a validated schema compiled for one lobby (its player cap decides the
//!   width of player references). Every encoder and decoder takes one.
//! - Rows: every value of an entity, of the lobby, of a player's private state or of an
//!   input is quantized into a row of `u32` words (one per field; two for a `Vec2` or a
//!   string, whose bytes sit beside the row), so equality and deltas are word compares.
//!   [`RowWriter`] / [`RowReader`] move typed values in and out; [`Value`] is the
//!   dynamic form for clients without generated code.
//! - [`State`]: a world at one tick, built every tick into reused buffers;
//!   [`Encoder`] writes snapshots as changes from any earlier `State` (or in full), for
//!   what everyone sees and for each player's own part; [`ClientState`] applies them.
//! - [`io`]: inputs, messages and events.
//!
//! `PROTOCOL.md` ("Game state (protocol 2)") documents every bit.

mod client;
pub mod io;
mod world;

use std::marker::PhantomData;

use serde::Serialize;

pub use client::{Applied, ClientEntity, ClientState, StateDecodeError};
pub use world::{
    Encoder, EntityRecord, MAX_SNAPSHOT_ENTITIES, SNAPSHOT_TAG, SnapshotParts, State, StateError,
    View, Visibility, snapshot_ack, snapshot_head_len, split_snapshot, write_snapshot,
};

use crate::bits::{BitReader, BitWriter, EndOfStream, Gather, VAR_GROUP_BITS, bits_for, var_bits};
use crate::schema::{
    AxisQuant, BUTTON_COUNTER_BITS, Field, FieldAttrs, FieldType, FieldValue, Fields, Schema,
    SchemaError,
};

/// A lobby seat: 1 up to the lobby's player cap, or 0 for nobody. Player references in
/// state take `bits_for(cap)` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct PlayerRef(pub u16);

impl PlayerRef {
    /// Nobody.
    pub const NONE: PlayerRef = PlayerRef(0);

    /// True for a seat (not [`PlayerRef::NONE`]).
    pub fn is_some(self) -> bool {
        self.0 != 0
    }
}

/// A button of an input: whether it is held, and a wrapping counter of presses (4 bits).
/// A client increments `presses` on every press, so a press and release between two
/// inputs is not lost, and the server counts presses since the input it applied last
/// with [`Button::presses_since`], however many inputs it skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Button {
    /// Held down now.
    pub held: bool,
    /// Presses so far, modulo 16.
    pub presses: u8,
}

impl Button {
    /// Presses the button (held, and one more press).
    pub fn press(&mut self) {
        self.held = true;
        self.presses = (self.presses + 1) & 15;
    }

    /// Releases it.
    pub fn release(&mut self) {
        self.held = false;
    }

    /// Presses between `earlier` and this state (at most 15 tell apart).
    pub fn presses_since(self, earlier: Button) -> u8 {
        self.presses.wrapping_sub(earlier.presses) & 15
    }

    fn word(self) -> u32 {
        u32::from(self.held) | (u32::from(self.presses & 15) << 1)
    }

    fn from_word(w: u32) -> Self {
        Self {
            held: w & 1 == 1,
            presses: ((w >> 1) & 15) as u8,
        }
    }
}

/// One decoded value, for clients without generated code.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value")]
pub enum Value {
    /// A `Bool` field.
    Bool(bool),
    /// An `Int` or `VarUint` field.
    Int(i64),
    /// An `F32` field.
    F32(f32),
    /// A `Vec2` field, `[x, y]`.
    Vec2([f32; 2]),
    /// An `Angle` field, in radians, `0..2π`.
    Angle(f32),
    /// An `Enum` field: the variant index.
    Enum(u32),
    /// A `Str` field.
    Str(String),
    /// A `Player` field.
    Player(u16),
    /// A `Button` field.
    Button(Button),
}

/// How one field is quantized, compiled from its [`FieldType`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Quant {
    Bool,
    Int { min: i64, span: u32 },
    F32(AxisQuant),
    Vec2(AxisQuant, AxisQuant),
    Angle { bits: u32 },
    Enum { last: u32 },
    Str { max_len: u32, len_bits: u32 },
    Player { cap: u32 },
    Button,
    VarUint { max: u32 },
}

/// One field of a compiled row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FieldCodec {
    quant: Quant,
    /// Its first word in the row.
    word: usize,
    /// Bits on the wire of its first and second word (0 when it has one word).
    bits: [u32; 2],
    /// Largest valid word values (a decoded larger one is clamped).
    max: [u32; 2],
    /// Sent only to the controlling player.
    owner_only: bool,
}

impl FieldCodec {
    fn words(&self) -> usize {
        match self.quant {
            Quant::Vec2(..) | Quant::Str { .. } => 2,
            _ => 1,
        }
    }
}

/// How one word of a row goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    /// Its low `bits` bits.
    Fixed,
    /// var4, clamped to `max`.
    Var { max: u32 },
    /// A string: its length in `len_bits` bits, then its bytes (two words).
    Str { len_bits: u32 },
}

/// One step of writing a row, compiled from its fields so that the encoder's inner
/// loop touches a few bytes per word instead of a whole [`FieldCodec`] (a `Vec2` is two
/// steps; both carry its field's bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WireOp {
    /// The field's bit in a field mask.
    field: u32,
    /// The word written (a string's first word).
    word: u32,
    /// Bits of a fixed-width word.
    bits: u32,
    /// A fixed-width word's largest valid value, and what a decoded larger one becomes:
    /// `max`, or 0 for a player reference (above the cap means nobody).
    max: u32,
    over: u32,
    kind: OpKind,
}

/// How one field of a row without strings goes on the wire, in one step: what a mask of
/// changed fields writes field by field, instead of word by word over the whole row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldStep {
    /// Its first word in the row.
    word: u32,
    kind: StepKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    /// The low `bits` bits of its word (0: nothing).
    Fixed { bits: u32 },
    /// A `Vec2`: `x` bits of its first word, then `y` bits of its second, as one value.
    Pair { x: u32, y: u32 },
    /// var4, clamped to `max`.
    Var { max: u32 },
}

/// Most words in one [`Chunk`]: its packer is unrolled for each length up to this.
const CHUNK_WORDS: usize = 8;

/// A run of a created entity's consecutive fixed-width words packed into one 64-bit
/// chunk at precomputed shifts (independent of each other, so the CPU does them side by
/// side), appended at once, then at most one var4 word: how a full snapshot's entities
/// are written, compiled per kind, instead of one dependent append per word. A kind's
/// first chunk starts with the entity's kind and controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    /// Its words are the row's `first..first + len`; a word it does not carry (an
    /// `owner_only` or zero-width field's) has mask 0.
    first: u16,
    len: u16,
    /// Bits of the chunk (its head's included), 0 to 64.
    bits: u32,
    /// Word k goes in at bit `shift[k]`, cut to `mask[k]`.
    shift: [u32; CHUNK_WORDS],
    mask: [u32; CHUNK_WORDS],
    /// The var4 word after it, if any: its word and largest value.
    var: Option<(u32, u32)>,
}

impl Chunk {
    /// An empty chunk starting at word `first`, with `bits` of head.
    fn at(first: u32, bits: u32) -> Self {
        Self {
            first: first as u16,
            len: 0,
            bits,
            shift: [0; CHUNK_WORDS],
            mask: [0; CHUNK_WORDS],
            var: None,
        }
    }

    /// Takes the row's next word (`first + len`): `bits` of it, cut to `mask` (0 for a
    /// word not carried).
    fn push(&mut self, bits: u32, mask: u32) {
        let k = usize::from(self.len);
        self.shift[k] = if mask == 0 { 0 } else { self.bits };
        self.mask[k] = mask;
        self.len += 1;
        self.bits += bits;
    }

    /// Appends the chunk (`packed`: its words, and the head in the first chunk), then its
    /// var4 word of `row`.
    #[inline(always)]
    fn put(&self, mut g: Gather, packed: u64, row: &[u32], w: &mut BitWriter<'_>) -> Gather {
        g.put_long(w, packed, self.bits);
        if let Some((word, max)) = self.var {
            let v = row.get(word as usize).copied().unwrap_or(0);
            g.var(w, v.min(max));
        }
        g
    }

    /// Its words of `row`, packed.
    #[inline(always)]
    fn pack(&self, row: &[u32]) -> u64 {
        match self.len {
            1 => self.pack_n::<1>(row),
            2 => self.pack_n::<2>(row),
            3 => self.pack_n::<3>(row),
            4 => self.pack_n::<4>(row),
            5 => self.pack_n::<5>(row),
            6 => self.pack_n::<6>(row),
            7 => self.pack_n::<7>(row),
            8 => self.pack_n::<8>(row),
            _ => 0,
        }
    }

    #[inline(always)]
    fn pack_n<const N: usize>(&self, row: &[u32]) -> u64 {
        let first = usize::from(self.first);
        let Some(words) = row.get(first..first + N) else {
            return 0;
        };
        let mut acc = 0;
        for ((&v, &mask), &shift) in words.iter().zip(&self.mask).zip(&self.shift) {
            acc |= u64::from(v & mask) << shift;
        }
        acc
    }
}

/// A row's layout: its fields' quantization and word offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct RowCodec {
    /// The row's name (kind, message or event type), empty for the others.
    name: String,
    /// The schema's fields.
    declared: Vec<Field>,
    /// Their compiled form.
    fields: Vec<FieldCodec>,
    /// Words per row.
    words: usize,
    /// Whether any field is a string.
    has_text: bool,
    /// Bit i set: field i is `owner_only`.
    owner_mask: u32,
    /// The fields everyone sees (all but the `owner_only` ones).
    shared_mask: u32,
    /// The fields as wire steps, in field order.
    wire: Vec<WireOp>,
    /// One step per field, for rows without strings (empty for the others).
    steps: Vec<FieldStep>,
    /// The fewest bits the shared fields take on the wire (var4 values of one group,
    /// empty strings).
    min_shared_bits: u32,
    /// An entity kind's head (kind, controller) and shared fields as packed chunks
    /// ([`RowCodec::write_created_shared`]); empty for rows with strings and the rows
    /// that are not entity kinds.
    chunks: Vec<Chunk>,
}

impl RowCodec {
    fn new(name: &str, declared: &[Field], max_players: u16) -> Self {
        let mut word = 0;
        let mut fields = Vec::with_capacity(declared.len());
        let mut owner_mask = 0;
        for (i, f) in declared.iter().enumerate() {
            let (quant, bits, max) = compile(&f.ty, max_players);
            let fc = FieldCodec {
                quant,
                word,
                bits,
                max,
                owner_only: f.owner_only,
            };
            word += fc.words();
            if f.owner_only {
                owner_mask |= 1 << i;
            }
            fields.push(fc);
        }
        let mut wire = Vec::with_capacity(word);
        for (i, f) in fields.iter().enumerate() {
            let op = |k: usize, kind: OpKind| WireOp {
                field: 1 << i,
                word: (f.word + k) as u32,
                bits: f.bits[k],
                max: f.max[k],
                over: if matches!(f.quant, Quant::Player { .. }) {
                    0
                } else {
                    f.max[k]
                },
                kind,
            };
            match f.quant {
                Quant::VarUint { max } => wire.push(op(0, OpKind::Var { max })),
                Quant::Str { len_bits, .. } => wire.push(op(0, OpKind::Str { len_bits })),
                Quant::Vec2(..) => {
                    wire.push(op(0, OpKind::Fixed));
                    wire.push(op(1, OpKind::Fixed));
                }
                _ => wire.push(op(0, OpKind::Fixed)),
            }
        }
        let has_text = fields.iter().any(|f| matches!(f.quant, Quant::Str { .. }));
        let steps = if has_text {
            Vec::new()
        } else {
            fields
                .iter()
                .map(|f| FieldStep {
                    word: f.word as u32,
                    kind: match f.quant {
                        Quant::VarUint { max } => StepKind::Var { max },
                        Quant::Vec2(..) => StepKind::Pair {
                            x: f.bits[0],
                            y: f.bits[1],
                        },
                        _ => StepKind::Fixed { bits: f.bits[0] },
                    },
                })
                .collect()
        };
        // `diff` and `compile_pack` rely on it for rows without strings.
        debug_assert!(has_text || wire.iter().enumerate().all(|(k, op)| op.word as usize == k));
        Self {
            name: name.into(),
            declared: declared.to_vec(),
            has_text,
            fields,
            words: word,
            owner_mask,
            shared_mask: mask_of(declared.len()) & !owner_mask,
            min_shared_bits: wire
                .iter()
                .filter(|op| op.field & !owner_mask != 0)
                .map(|op| match op.kind {
                    OpKind::Fixed => op.bits,
                    OpKind::Var { .. } => VAR_GROUP_BITS,
                    OpKind::Str { len_bits } => len_bits,
                })
                .sum(),
            wire,
            steps,
            chunks: Vec::new(),
        }
    }

    /// Compiles the packed chunks of an entity kind whose head (kind, controller) takes
    /// `head_bits` bits. Rows with strings keep none (they go the general way).
    fn compile_pack(&mut self, head_bits: u32) {
        self.chunks.clear();
        if self.has_text {
            return;
        }
        // Without strings, step k is word k.
        let mut chunk = Chunk::at(0, head_bits);
        for op in &self.wire {
            let carried = op.field & self.shared_mask != 0;
            match op.kind {
                OpKind::Fixed if carried && op.bits > 0 => {
                    if chunk.bits + op.bits > 64 || usize::from(chunk.len) == CHUNK_WORDS {
                        self.chunks.push(chunk);
                        chunk = Chunk::at(op.word, 0);
                    }
                    chunk.push(op.bits, (u64::MAX >> (64 - op.bits)) as u32);
                }
                OpKind::Var { max } if carried => {
                    chunk.var = Some((op.word, max));
                    self.chunks.push(chunk);
                    chunk = Chunk::at(op.word + 1, 0);
                }
                // A word not carried: skipped at the chunk's start, masked out within it.
                _ if chunk.len == 0 => chunk.first += 1,
                _ if usize::from(chunk.len) < CHUNK_WORDS => chunk.push(0, 0),
                _ => {
                    self.chunks.push(chunk);
                    chunk = Chunk::at(op.word + 1, 0);
                }
            }
        }
        if chunk.bits > 0 {
            self.chunks.push(chunk);
        }
    }

    /// Bits the fields in `mask` of a row take on the wire (what
    /// [`RowCodec::gather_wire`] writes), without writing them.
    #[inline]
    fn wire_bits(&self, mask: u32, words: &[u32], text: &str) -> usize {
        let mut bits = 0;
        for op in &self.wire {
            if mask & op.field == 0 {
                continue;
            }
            let v = words.get(op.word as usize).copied().unwrap_or(0);
            bits += match op.kind {
                OpKind::Fixed => op.bits,
                OpKind::Var { max } => var_bits(v.min(max)),
                OpKind::Str { len_bits } => {
                    len_bits + 8 * str_at(words, text, op.word as usize).len() as u32
                }
            } as usize;
        }
        bits
    }

    /// Writes a created entity's kind and controller (`head`, `head_bits` bits) and its
    /// shared fields through `g`: the bytes of a `kind`, `controller` and
    /// [`RowCodec::gather_wire`] of `shared_mask`, by the packing steps when the kind has
    /// them.
    #[inline(always)]
    fn write_created_shared(
        &self,
        mut g: Gather,
        head: u64,
        head_bits: u32,
        words: &[u32],
        text: &str,
        w: &mut BitWriter<'_>,
    ) -> Gather {
        if self.chunks.is_empty() {
            if head_bits > 0 {
                g.put_long(w, head, head_bits);
            }
            return self.gather_wire(g, self.shared_mask, words, text, w);
        }
        let mut acc = head;
        for c in &self.chunks {
            g = c.put(g, acc | c.pack(words), words, w);
            acc = 0;
        }
        g
    }

    /// The kind's only packing chunk, if it has exactly one (of 1 to 8 words).
    #[inline]
    fn single_chunk(&self) -> Option<&Chunk> {
        match self.chunks.as_slice() {
            [c] if c.len > 0 => Some(c),
            _ => None,
        }
    }

    /// The row's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared fields.
    pub fn fields(&self) -> &[Field] {
        &self.declared
    }

    /// Words in one row.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Mask of every field.
    fn all_mask(&self) -> u32 {
        mask_of(self.fields.len())
    }

    /// Mask of the fields in `include` that differ (words, and string contents).
    #[inline(always)]
    fn diff(&self, include: u32, a: &[u32], at: &str, b: &[u32], bt: &str) -> u32 {
        if !self.has_text {
            // Without strings, step k writes word k: word by word, no indexing (a few
            // words: cheaper than a `memcmp` call first); a `Vec2`'s two words set the
            // same bit.
            let mut mask = 0;
            for ((x, y), op) in a.iter().zip(b).zip(&self.wire) {
                mask |= op.field & u32::from(x != y).wrapping_neg();
            }
            return mask & include;
        }
        let mut mask = 0;
        for op in &self.wire {
            let w = op.word as usize;
            let differs = match op.kind {
                OpKind::Str { .. } => str_at(a, at, w) != str_at(b, bt, w),
                _ => a[w] != b[w],
            };
            if differs {
                mask |= op.field;
            }
        }
        mask & include
    }

    /// Writes the fields in `mask` of a row to the wire.
    #[inline]
    fn write_wire(&self, mask: u32, words: &[u32], text: &str, w: &mut BitWriter<'_>) {
        let g = w.gather();
        self.gather_wire(g, mask, words, text, w).flush(w);
    }

    /// Writes the fields in `mask` of a row through `g`: fixed-width words and short
    /// var4 values stay in its register word, the rest goes to the writer after it.
    /// Takes and returns `g` by value, so that it stays in registers in the loop; always
    /// inlined into the encoder's entity loops (a call cost as much as a short row).
    #[inline(always)]
    fn gather_wire(
        &self,
        mut g: Gather,
        mask: u32,
        words: &[u32],
        text: &str,
        w: &mut BitWriter<'_>,
    ) -> Gather {
        if self.has_text {
            return self.gather_by_op(g, mask, words, text, w);
        }
        // Field by field over the mask's bits: a delta's few changed fields cost what
        // they write, not a pass over the row.
        let mut m = mask & self.all_mask();
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let Some(step) = self.steps.get(i) else {
                break;
            };
            let word = step.word as usize;
            let v = words.get(word).copied().unwrap_or(0);
            match step.kind {
                StepKind::Fixed { bits } => g.put(w, v, bits),
                StepKind::Pair { x, y } => {
                    let v1 = words.get(word + 1).copied().unwrap_or(0);
                    let low = u64::from(v) & ((1u64 << x) - 1);
                    let high = u64::from(v1) & ((1u64 << y) - 1);
                    g.put_long(w, low | (high << x), x + y);
                }
                StepKind::Var { max } => g.var(w, v.min(max)),
            }
        }
        g
    }

    /// [`RowCodec::gather_wire`] step by step over the whole row: the way of rows with
    /// strings, and the reference the field steps are tested against.
    fn gather_by_op(
        &self,
        mut g: Gather,
        mask: u32,
        words: &[u32],
        text: &str,
        w: &mut BitWriter<'_>,
    ) -> Gather {
        for op in &self.wire {
            if mask & op.field == 0 {
                continue;
            }
            let v = words[op.word as usize];
            match op.kind {
                OpKind::Fixed => g.put(w, v, op.bits),
                OpKind::Var { max } => g.var(w, v.min(max)),
                OpKind::Str { len_bits } => {
                    let s = str_at(words, text, op.word as usize).as_bytes();
                    g.put(w, s.len() as u32, len_bits);
                    for &b in s {
                        g.put(w, u32::from(b), 8);
                    }
                }
            }
        }
        g
    }

    /// Reads the fields in `mask` into `words` (a row of this layout; string words point
    /// into `text`, appended to). Out-of-range words are clamped (a player reference
    /// above the cap becomes 0); returns how many were.
    fn read_wire(
        &self,
        mask: u32,
        r: &mut BitReader<'_>,
        words: &mut [u32],
        text: &mut String,
    ) -> Result<u32, WireError> {
        let mut clamped = 0;
        if !self.has_text {
            // Without strings, step k is word k: the compiled steps, as the writer.
            for (op, word) in self.wire.iter().zip(words.iter_mut()) {
                if mask & op.field == 0 {
                    continue;
                }
                let (v, max, over) = match op.kind {
                    OpKind::Var { max } => (r.var()?, max, max),
                    _ => (r.read(op.bits)?, op.max, op.over),
                };
                *word = if v <= max {
                    v
                } else {
                    clamped += 1;
                    over
                };
            }
            return Ok(clamped);
        }
        self.read_by_field(mask, r, words, text)
    }

    /// [`RowCodec::read_wire`] field by field: rows with strings (and the reference the
    /// compiled steps are tested against).
    fn read_by_field(
        &self,
        mask: u32,
        r: &mut BitReader<'_>,
        words: &mut [u32],
        text: &mut String,
    ) -> Result<u32, WireError> {
        let mut clamped = 0;
        for (i, f) in self.fields.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            match f.quant {
                Quant::Str { max_len, len_bits } => {
                    let len = r.read(len_bits)?;
                    if len > max_len {
                        return Err(WireError::StringTooLong);
                    }
                    let start = text.len();
                    let mut buf = [0u8; 255];
                    for b in buf.iter_mut().take(len as usize) {
                        *b = r.read(8)? as u8;
                    }
                    let s = std::str::from_utf8(&buf[..len as usize])
                        .map_err(|_| WireError::InvalidUtf8)?;
                    text.push_str(s);
                    words[f.word] = start as u32;
                    words[f.word + 1] = len;
                }
                Quant::VarUint { max } => {
                    // More than 11 groups, or above u32::MAX, is not a stream: Truncated.
                    let v = r.var()?;
                    words[f.word] = if v <= max {
                        v
                    } else {
                        clamped += 1;
                        max
                    };
                }
                _ => {
                    let n = if matches!(f.quant, Quant::Vec2(..)) {
                        2
                    } else {
                        1
                    };
                    for k in 0..n {
                        let v = r.read(f.bits[k])?;
                        words[f.word + k] = if v <= f.max[k] {
                            v
                        } else {
                            clamped += 1;
                            if matches!(f.quant, Quant::Player { .. }) {
                                0
                            } else {
                                f.max[k]
                            }
                        };
                    }
                }
            }
        }
        Ok(clamped)
    }

    /// The row's values, dynamically.
    pub fn values(&self, words: &[u32], text: &str) -> Vec<Value> {
        let mut r = RowReader::new(self, words, text);
        self.fields.iter().map(|_| r.value()).collect()
    }
}

fn mask_of(n: usize) -> u32 {
    if n >= 32 { u32::MAX } else { (1u32 << n) - 1 }
}

fn str_at<'t>(words: &[u32], text: &'t str, word: usize) -> &'t str {
    let start = words[word] as usize;
    let end = start + words[word + 1] as usize;
    text.get(start..end).unwrap_or("")
}

/// Compiles a (validated) field type: quantization, bits and largest value per word.
fn compile(ty: &FieldType, max_players: u16) -> (Quant, [u32; 2], [u32; 2]) {
    // Validated before compiling; the fallbacks only keep this total.
    let axis = |min, max, precision| {
        AxisQuant::new(min, max, precision).unwrap_or(AxisQuant {
            min: 0.0,
            max: 1.0,
            steps: 1,
            bits: 1,
        })
    };
    match ty {
        FieldType::Bool => (Quant::Bool, [1, 0], [1, 0]),
        FieldType::Int { min, max } => {
            let span = (i128::from(*max) - i128::from(*min)).clamp(0, i128::from(u32::MAX)) as u32;
            (
                Quant::Int { min: *min, span },
                [bits_for(u64::from(span)), 0],
                [span, 0],
            )
        }
        FieldType::F32 {
            min,
            max,
            precision,
        } => {
            let a = axis(*min, *max, *precision);
            (Quant::F32(a), [a.bits, 0], [a.steps, 0])
        }
        FieldType::Vec2 {
            min_x,
            max_x,
            min_y,
            max_y,
            precision,
        } => {
            let x = axis(*min_x, *max_x, *precision);
            let y = axis(*min_y, *max_y, *precision);
            (Quant::Vec2(x, y), [x.bits, y.bits], [x.steps, y.steps])
        }
        FieldType::Angle { bits } => {
            let bits = u32::from(*bits).clamp(1, 32);
            (
                Quant::Angle { bits },
                [bits, 0],
                [(u64::from(u32::MAX) >> (32 - bits)) as u32, 0],
            )
        }
        FieldType::Enum { variants } => {
            let last = variants.len().saturating_sub(1) as u32;
            (
                Quant::Enum { last },
                [bits_for(u64::from(last)), 0],
                [last, 0],
            )
        }
        FieldType::Str { max_len } => {
            let max_len = u32::from(*max_len);
            let len_bits = bits_for(u64::from(max_len));
            (Quant::Str { max_len, len_bits }, [0, 0], [0, 0])
        }
        FieldType::Player => {
            let cap = u32::from(max_players);
            (
                Quant::Player { cap },
                [bits_for(u64::from(cap)), 0],
                [cap, 0],
            )
        }
        FieldType::Button => (
            Quant::Button,
            [1 + BUTTON_COUNTER_BITS, 0],
            [(1 << (1 + BUTTON_COUNTER_BITS)) - 1, 0],
        ),
        // The bits vary with the value (var4); `bits` is the longest.
        FieldType::VarUint { max } => {
            (Quant::VarUint { max: *max }, [var_bits(*max), 0], [*max, 0])
        }
    }
}

/// A wire value could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes ended early.
    #[error("the bytes ended early")]
    Truncated,
    /// A string longer than its declared maximum.
    #[error("a string is longer than its declared maximum")]
    StringTooLong,
    /// A string that is not UTF-8.
    #[error("a string is not valid UTF-8")]
    InvalidUtf8,
}

impl From<EndOfStream> for WireError {
    fn from(_: EndOfStream) -> Self {
        WireError::Truncated
    }
}

/// A typed handle on an entity kind of a [`Codec`], checked against `T`'s declaration.
#[derive(Debug)]
pub struct Kind<T> {
    index: u16,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Kind<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Kind<T> {}

impl<T> Kind<T> {
    /// The kind's index in the schema (its wire number).
    pub fn index(self) -> u16 {
        self.index
    }
}

/// A validated schema compiled for one lobby. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Codec {
    schema: Schema,
    hash: u64,
    max_players: u16,
    player_bits: u32,
    kind_bits: u32,
    kinds: Vec<RowCodec>,
    lobby: RowCodec,
    private: RowCodec,
    input: RowCodec,
    messages: Vec<RowCodec>,
    events: Vec<RowCodec>,
}

impl Codec {
    /// Validates `schema` and compiles it for lobbies of at most `max_players` players
    /// (1 or more: the width of player references).
    pub fn new(schema: Schema, max_players: u16) -> Result<Self, SchemaError> {
        schema.validate()?;
        if max_players == 0 {
            return Err(SchemaError::new("lobby", "a player cap of 0"));
        }
        let row = |name: &str, fields: &[Field]| RowCodec::new(name, fields, max_players);
        let player_bits = bits_for(u64::from(max_players));
        let kind_bits = bits_for(schema.entities.len().saturating_sub(1) as u64);
        Ok(Self {
            hash: schema.hash(),
            max_players,
            player_bits,
            kind_bits,
            kinds: schema
                .entities
                .iter()
                .map(|t| {
                    let mut r = row(&t.name, &t.fields);
                    r.compile_pack(kind_bits + player_bits);
                    r
                })
                .collect(),
            lobby: row("", &schema.lobby),
            private: row("", &schema.private),
            input: row("", &schema.input),
            messages: schema
                .messages
                .iter()
                .map(|t| row(&t.name, &t.fields))
                .collect(),
            events: schema
                .events
                .iter()
                .map(|t| row(&t.name, &t.fields))
                .collect(),
            schema,
        })
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema's hash ([`Schema::hash`]).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The lobby's player cap.
    pub fn max_players(&self) -> u16 {
        self.max_players
    }

    /// The entity kind `T`, checked: the schema has a kind named `T::NAME` with exactly
    /// `T`'s fields.
    pub fn kind<T: Fields>(&self) -> Result<Kind<T>, SchemaError> {
        let fields = T::fields()?;
        let index = self
            .kinds
            .iter()
            .position(|k| k.name == T::NAME)
            .ok_or_else(|| SchemaError::new(T::NAME, "no entity kind of this name"))?;
        if self.kinds[index].declared != fields {
            return Err(SchemaError::new(
                T::NAME,
                "the type's fields differ from the schema's",
            ));
        }
        Ok(Kind {
            index: index as u16,
            _type: PhantomData,
        })
    }

    /// The layout of entity kind `index`.
    pub fn kind_row(&self, index: u16) -> Option<&RowCodec> {
        self.kinds.get(usize::from(index))
    }

    /// The lobby row's layout.
    pub fn lobby_row(&self) -> &RowCodec {
        &self.lobby
    }

    /// The private row's layout.
    pub fn private_row(&self) -> &RowCodec {
        &self.private
    }

    /// The input row's layout.
    pub fn input_row(&self) -> &RowCodec {
        &self.input
    }

    /// The layout of message type `index`.
    pub fn message_row(&self, index: usize) -> Option<&RowCodec> {
        self.messages.get(index)
    }

    /// The layout of event type `index`.
    pub fn event_row(&self, index: usize) -> Option<&RowCodec> {
        self.events.get(index)
    }
}

/// Writes typed values into a row, quantizing each as its field declares. Values go in
/// field order; a value of the wrong type for its field writes zero words (a derive
/// always matches its own declaration; [`Codec::kind`] checks that).
#[derive(Debug)]
pub struct RowWriter<'a> {
    row: &'a RowCodec,
    next: usize,
    words: &'a mut [u32],
    text: &'a mut String,
}

impl<'a> RowWriter<'a> {
    /// A writer of `row`'s fields into `words` (exactly `row.words()` long), appending
    /// string bytes to `text`.
    pub fn new(row: &'a RowCodec, words: &'a mut [u32], text: &'a mut String) -> Self {
        debug_assert_eq!(words.len(), row.words);
        Self {
            row,
            next: 0,
            words,
            text,
        }
    }

    /// The next field (borrowed from the row: a copy of its codec costs more than the
    /// field's whole quantization).
    #[inline(always)]
    fn field(&mut self) -> Option<&'a FieldCodec> {
        let row: &'a RowCodec = self.row;
        let f = row.fields.get(self.next);
        self.next += 1;
        f
    }

    #[inline(always)]
    fn put(&mut self, f: &FieldCodec, k: usize, v: u32) {
        if let Some(w) = self.words.get_mut(f.word + k) {
            *w = v;
        }
    }

    /// A `Bool` field.
    #[inline(always)]
    pub fn bool(&mut self, v: bool) {
        if let Some(f) = self.field() {
            self.put(f, 0, u32::from(v && f.quant == Quant::Bool));
        }
    }

    /// An `Int` or `VarUint` field (clamped to its range).
    #[inline(always)]
    pub fn int(&mut self, v: i64) {
        if let Some(f) = self.field() {
            let word = match f.quant {
                Quant::Int { min, span } => {
                    (i128::from(v) - i128::from(min)).clamp(0, i128::from(span)) as u32
                }
                Quant::VarUint { max } => v.clamp(0, i64::from(max)) as u32,
                _ => 0,
            };
            self.put(f, 0, word);
        }
    }

    /// An `F32` or `Angle` field.
    #[inline(always)]
    pub fn f32(&mut self, v: f32) {
        if let Some(f) = self.field() {
            let word = match f.quant {
                Quant::F32(a) => a.quantize(v),
                Quant::Angle { bits } => quantize_angle(v, bits),
                _ => 0,
            };
            self.put(f, 0, word);
        }
    }

    /// A `Vec2` field.
    #[inline(always)]
    pub fn vec2(&mut self, v: [f32; 2]) {
        if let Some(f) = self.field() {
            if let Quant::Vec2(x, y) = f.quant {
                self.put(f, 0, x.quantize(v[0]));
                self.put(f, 1, y.quantize(v[1]));
            }
        }
    }

    /// An `Enum` field, by variant index (clamped to the last variant).
    #[inline(always)]
    pub fn enum_index(&mut self, v: u32) {
        if let Some(f) = self.field() {
            let word = match f.quant {
                Quant::Enum { last } => v.min(last),
                _ => 0,
            };
            self.put(f, 0, word);
        }
    }

    /// A `Str` field (cut to its longest length at a character boundary).
    pub fn str(&mut self, v: &str) {
        if let Some(f) = self.field() {
            if let Quant::Str { max_len, .. } = f.quant {
                let mut end = v.len().min(max_len as usize);
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                let start = self.text.len();
                self.text.push_str(&v[..end]);
                self.put(f, 0, start as u32);
                self.put(f, 1, end as u32);
            }
        }
    }

    /// A `Player` field (a seat above the cap is written as none).
    #[inline]
    pub fn player(&mut self, v: PlayerRef) {
        if let Some(f) = self.field() {
            let word = match f.quant {
                Quant::Player { cap } if u32::from(v.0) <= cap => u32::from(v.0),
                _ => 0,
            };
            self.put(f, 0, word);
        }
    }

    /// A `Button` field.
    #[inline]
    pub fn button(&mut self, v: Button) {
        if let Some(f) = self.field() {
            let word = if f.quant == Quant::Button {
                v.word()
            } else {
                0
            };
            self.put(f, 0, word);
        }
    }

    /// Any field, from its dynamic value.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::F32(x) | Value::Angle(x) => self.f32(*x),
            Value::Vec2(xy) => self.vec2(*xy),
            Value::Enum(i) => self.enum_index(*i),
            Value::Str(s) => self.str(s),
            Value::Player(p) => self.player(PlayerRef(*p)),
            Value::Button(b) => self.button(*b),
        }
    }
}

/// Reads typed values out of a row, in field order (dequantized: always in range and
/// finite).
#[derive(Debug, Clone)]
pub struct RowReader<'a> {
    row: &'a RowCodec,
    next: usize,
    words: &'a [u32],
    text: &'a str,
}

impl<'a> RowReader<'a> {
    /// A reader of a row of layout `row`.
    pub fn new(row: &'a RowCodec, words: &'a [u32], text: &'a str) -> Self {
        Self {
            row,
            next: 0,
            words,
            text,
        }
    }

    fn field(&mut self) -> Option<FieldCodec> {
        let f = self.row.fields.get(self.next).copied();
        self.next += 1;
        f
    }

    fn word(&self, f: &FieldCodec, k: usize) -> u32 {
        self.words.get(f.word + k).copied().unwrap_or(0)
    }

    /// A `Bool` field.
    pub fn bool(&mut self) -> bool {
        self.field().is_some_and(|f| self.word(&f, 0) != 0)
    }

    /// An `Int` or `VarUint` field.
    pub fn int(&mut self) -> i64 {
        match self.field() {
            Some(f) => match f.quant {
                Quant::Int { min, .. } => min + i64::from(self.word(&f, 0)),
                Quant::VarUint { max } => i64::from(self.word(&f, 0).min(max)),
                _ => 0,
            },
            None => 0,
        }
    }

    /// An `F32` or `Angle` field.
    pub fn f32(&mut self) -> f32 {
        match self.field() {
            Some(f) => match f.quant {
                Quant::F32(a) => a.value(self.word(&f, 0)),
                Quant::Angle { bits } => angle_value(self.word(&f, 0), bits),
                _ => 0.0,
            },
            None => 0.0,
        }
    }

    /// A `Vec2` field.
    pub fn vec2(&mut self) -> [f32; 2] {
        match self.field() {
            Some(f) => match f.quant {
                Quant::Vec2(x, y) => [x.value(self.word(&f, 0)), y.value(self.word(&f, 1))],
                _ => [0.0; 2],
            },
            None => [0.0; 2],
        }
    }

    /// An `Enum` field's variant index.
    pub fn enum_index(&mut self) -> u32 {
        self.field().map_or(0, |f| self.word(&f, 0))
    }

    /// A `Str` field.
    pub fn str(&mut self) -> &'a str {
        match self.field() {
            Some(f) if matches!(f.quant, Quant::Str { .. }) && f.word + 1 < self.words.len() => {
                str_at(self.words, self.text, f.word)
            }
            _ => "",
        }
    }

    /// A `Player` field.
    pub fn player(&mut self) -> PlayerRef {
        PlayerRef(self.field().map_or(0, |f| self.word(&f, 0)) as u16)
    }

    /// A `Button` field.
    pub fn button(&mut self) -> Button {
        Button::from_word(self.field().map_or(0, |f| self.word(&f, 0)))
    }

    /// The next field, dynamically.
    pub fn value(&mut self) -> Value {
        let Some(f) = self.row.fields.get(self.next).copied() else {
            self.next += 1;
            return Value::Bool(false);
        };
        match f.quant {
            Quant::Bool => Value::Bool(self.bool()),
            Quant::Int { .. } | Quant::VarUint { .. } => Value::Int(self.int()),
            Quant::F32(_) => Value::F32(self.f32()),
            Quant::Angle { .. } => Value::Angle(self.f32()),
            Quant::Vec2(..) => Value::Vec2(self.vec2()),
            Quant::Enum { .. } => Value::Enum(self.enum_index()),
            Quant::Str { .. } => Value::Str(self.str().to_owned()),
            Quant::Player { .. } => Value::Player(self.player().0),
            Quant::Button => Value::Button(self.button()),
        }
    }
}

/// An angle quantized to `bits` bits of a turn: `round(frac(v / 2π) × 2^bits) mod
/// 2^bits`, in f64; a non-finite angle is 0.
pub fn quantize_angle(v: f32, bits: u32) -> u32 {
    if !v.is_finite() {
        return 0;
    }
    let turns = f64::from(v) / std::f64::consts::TAU;
    // `turns - turns.floor()` without libm's floor: from 2^52 up every f64 is whole.
    let frac = if turns.abs() < 4_503_599_627_370_496.0 {
        let t = turns as i64 as f64;
        turns - if t > turns { t - 1.0 } else { t }
    } else {
        0.0
    };
    let scale = (1u64 << bits) as f64;
    (crate::schema::round_non_negative(frac * scale) % (1u64 << bits)) as u32
}

/// The angle a quantized `q` stands for: `f32(q × 2π / 2^bits)`, in f64.
pub fn angle_value(q: u32, bits: u32) -> f32 {
    (f64::from(q) * std::f64::consts::TAU / (1u64 << bits) as f64) as f32
}

fn range(attrs: &FieldAttrs) -> Option<(f64, f64)> {
    attrs.range
}

fn int_type(attrs: &FieldAttrs, lo: i64, hi: i64) -> Result<FieldType, String> {
    if attrs.precision.is_some() || attrs.angle_bits.is_some() || attrs.max_len.is_some() {
        return Err("an integer takes only `range`, or `varint` and `max`".into());
    }
    if attrs.varint {
        if lo != 0 {
            return Err("`varint` applies to unsigned integers (u8, u16, u32)".into());
        }
        if attrs.range.is_some() {
            return Err("a `varint` takes `max = N`, not `range` (it starts at 0)".into());
        }
        let max = attrs.max.map_or(hi, i64::from);
        if max > hi {
            return Err(format!("max {max} is above the type's {hi}"));
        }
        return Ok(FieldType::VarUint {
            // At most u32::MAX: `hi` is a u32's at most.
            max: u32::try_from(max).unwrap_or(u32::MAX),
        });
    }
    if attrs.max.is_some() {
        return Err("`max = N` goes with `varint` (a fixed-width integer takes `range`)".into());
    }
    match range(attrs) {
        None => Ok(FieldType::Int { min: lo, max: hi }),
        Some((min, max)) => {
            if min.fract() != 0.0 || max.fract() != 0.0 {
                return Err(format!("integer range {min}..={max} must be whole numbers"));
            }
            if min < lo as f64 || max > hi as f64 {
                return Err(format!(
                    "range {min}..={max} is outside the type's {lo}..={hi}"
                ));
            }
            Ok(FieldType::Int {
                min: min as i64,
                max: max as i64,
            })
        }
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
                int_type(attrs, i64::from(<$t>::MIN), i64::from(<$t>::MAX))
            }
            #[inline]
            fn write(&self, w: &mut RowWriter<'_>) {
                w.int(i64::from(*self));
            }
            #[inline]
            fn read(r: &mut RowReader<'_>) -> Self {
                let v = r.int();
                <$t>::try_from(v).unwrap_or(if v < 0 { <$t>::MIN } else { <$t>::MAX })
            }
        }
    )*};
}

int_field!(u8, u16, u32, i8, i16, i32);

impl FieldValue for bool {
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
        if *attrs != FieldAttrs::default() {
            return Err("a bool takes no range, precision or length".into());
        }
        Ok(FieldType::Bool)
    }
    #[inline]
    fn write(&self, w: &mut RowWriter<'_>) {
        w.bool(*self);
    }
    #[inline]
    fn read(r: &mut RowReader<'_>) -> Self {
        r.bool()
    }
}

/// `varint` and `max` belong to unsigned integers only.
fn no_varint(attrs: &FieldAttrs, what: &str) -> Result<(), String> {
    if attrs.varint || attrs.max.is_some() {
        return Err(format!(
            "{what} cannot be a `varint` (u8, u16 or u32 can), nor take `max`"
        ));
    }
    Ok(())
}

impl FieldValue for f32 {
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
        no_varint(attrs, "an f32")?;
        if let Some(bits) = attrs.angle_bits {
            if attrs.range.is_some() || attrs.precision.is_some() {
                return Err("an angle takes `angle_bits` only".into());
            }
            return Ok(FieldType::Angle { bits });
        }
        match (attrs.range, attrs.precision) {
            (Some((min, max)), Some(precision)) => Ok(FieldType::F32 {
                min: min as f32,
                max: max as f32,
                precision: precision as f32,
            }),
            _ => Err(
                "an f32 needs `range = MIN..=MAX` and `precision = STEP`, or `angle_bits = N`"
                    .into(),
            ),
        }
    }
    #[inline]
    fn write(&self, w: &mut RowWriter<'_>) {
        w.f32(*self);
    }
    #[inline]
    fn read(r: &mut RowReader<'_>) -> Self {
        r.f32()
    }
}

impl FieldValue for glam::Vec2 {
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
        no_varint(attrs, "a Vec2")?;
        let x = attrs.x.or(attrs.range);
        let y = attrs.y.or(attrs.range);
        match (x, y, attrs.precision) {
            (Some((min_x, max_x)), Some((min_y, max_y)), Some(precision)) => Ok(FieldType::Vec2 {
                min_x: min_x as f32,
                max_x: max_x as f32,
                min_y: min_y as f32,
                max_y: max_y as f32,
                precision: precision as f32,
            }),
            _ => Err("a Vec2 needs `range = MIN..=MAX` (or `x = ..` and `y = ..`) and `precision = STEP`".into()),
        }
    }
    #[inline]
    fn write(&self, w: &mut RowWriter<'_>) {
        w.vec2([self.x, self.y]);
    }
    #[inline]
    fn read(r: &mut RowReader<'_>) -> Self {
        let [x, y] = r.vec2();
        glam::Vec2::new(x, y)
    }
}

impl FieldValue for String {
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
        no_varint(attrs, "a String")?;
        match attrs.max_len {
            Some(max_len) => Ok(FieldType::Str { max_len }),
            None => Err("a String needs `max_len = N` (bytes)".into()),
        }
    }
    #[inline]
    fn write(&self, w: &mut RowWriter<'_>) {
        w.str(self);
    }
    #[inline]
    fn read(r: &mut RowReader<'_>) -> Self {
        r.str().to_owned()
    }
}

impl FieldValue for PlayerRef {
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
        if *attrs != FieldAttrs::default() {
            return Err("a PlayerRef takes no range, precision or length".into());
        }
        Ok(FieldType::Player)
    }
    #[inline]
    fn write(&self, w: &mut RowWriter<'_>) {
        w.player(*self);
    }
    #[inline]
    fn read(r: &mut RowReader<'_>) -> Self {
        r.player()
    }
}

impl FieldValue for Button {
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String> {
        if *attrs != FieldAttrs::default() {
            return Err("a Button takes no range, precision or length".into());
        }
        Ok(FieldType::Button)
    }
    #[inline]
    fn write(&self, w: &mut RowWriter<'_>) {
        w.button(*self);
    }
    #[inline]
    fn read(r: &mut RowReader<'_>) -> Self {
        r.button()
    }
}

/// Words a [`Row`] holds without a heap allocation: every input, message and event
/// row of the built-in games, and most entities.
pub const ROW_INLINE_WORDS: usize = 8;

/// A row of words with its string bytes, owned (inputs, messages, events, and each
/// entity of a [`ClientState`]). Up to [`ROW_INLINE_WORDS`] words and no string live
/// inline: decoding an input allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// The words.
    pub words: smallvec::SmallVec<[u32; ROW_INLINE_WORDS]>,
    /// String bytes the words point into.
    pub text: String,
}

impl Row {
    /// A zero row of `row`'s layout (every field at its minimum, strings empty).
    pub fn zero(row: &RowCodec) -> Self {
        // A short row from a zeroed inline buffer: `smallvec![0; n]` fills it in a loop
        // of pushes, a cost every decoded input paid.
        let words = if row.words <= ROW_INLINE_WORDS {
            smallvec::SmallVec::from_buf_and_len([0; ROW_INLINE_WORDS], row.words)
        } else {
            smallvec::smallvec![0; row.words]
        };
        Self {
            words,
            text: String::new(),
        }
    }

    /// The row as `T` (typed decode).
    pub fn get<T: Fields>(&self, row: &RowCodec) -> T {
        T::read_fields(&mut RowReader::new(row, &self.words, &self.text))
    }

    /// Sets the row from `value`.
    pub fn set<T: Fields>(&mut self, row: &RowCodec, value: &T) {
        self.words.clear();
        self.words.resize(row.words, 0);
        self.text.clear();
        value.write_fields(&mut RowWriter::new(row, &mut self.words, &mut self.text));
    }

    /// Sets the row from dynamic values (in field order).
    pub fn set_values(&mut self, row: &RowCodec, values: &[Value]) {
        self.words.clear();
        self.words.resize(row.words, 0);
        self.text.clear();
        let mut w = RowWriter::new(row, &mut self.words, &mut self.text);
        for v in values {
            w.value(v);
        }
    }

    /// Copies the fields in `mask` from another row of the same layout.
    fn copy_fields(&mut self, row: &RowCodec, mask: u32, from: &[u32], from_text: &str) {
        if !row.has_text {
            for (i, f) in row.fields.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    let n = f.words();
                    self.words[f.word..f.word + n].copy_from_slice(&from[f.word..f.word + n]);
                }
            }
            return;
        }
        // Rebuild the text: every string field from wherever it comes now.
        let mut text = String::new();
        for (i, f) in row.fields.iter().enumerate() {
            let take = mask & (1 << i) != 0;
            match f.quant {
                Quant::Str { .. } => {
                    let s = if take {
                        str_at(from, from_text, f.word)
                    } else {
                        str_at(&self.words, &self.text, f.word)
                    };
                    let start = text.len();
                    text.push_str(s);
                    self.words[f.word] = start as u32;
                    self.words[f.word + 1] = s.len() as u32;
                }
                _ if take => {
                    let n = f.words();
                    self.words[f.word..f.word + n].copy_from_slice(&from[f.word..f.word + n]);
                }
                _ => {}
            }
        }
        self.text = text;
    }

    /// The row's values, dynamically.
    pub fn values(&self, row: &RowCodec) -> Vec<Value> {
        row.values(&self.words, &self.text)
    }
}
