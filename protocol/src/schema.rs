//! The game schema (protocol 2): what a game replicates, described as plain data.
//!
//! A [`Schema`] lists the game's entity kinds, its lobby-wide and per-player private
//! state, its input, its client-to-game messages and its game-to-client events, each as
//! named [`Field`]s of a [`FieldType`]. The type decides the wire encoding (see
//! `state`). The schema travels to every client once, encoded with the codec's bincode
//! settings ([`Schema::encode`]); [`Schema::hash`] (64-bit FNV-1a of those bytes) lets a
//! client cache it. A game declares it with `#[derive(State)]` / `#[derive(Messages)]`
//! (the `ticksync-derive` crate) and [`Schema::builder`]; [`Schema::validate`] turns
//! every declaration mistake into a start-up error.

use bincode::{Decode, Encode};
use serde::Serialize;

use crate::bits::{bits_for, var_bits};
use crate::limits::{MAX_CLIENT_MESSAGE_BYTES, MAX_LOBBY_PLAYERS};

/// Most fields of one row (an entity kind, the lobby, the private state, the input, one
/// message or event type): a changed-field mask fits in a `u32`.
pub const MAX_FIELDS: usize = 32;
/// Most entity kinds, message types or event types.
pub const MAX_TYPES: usize = 256;
/// Most variants of a small enum.
pub const MAX_VARIANTS: usize = 256;
/// Longest name of anything in a schema, in bytes (ASCII letters, digits, `_`).
pub const MAX_NAME_BYTES: usize = 32;
/// Longest declarable short string, in bytes of UTF-8.
pub const MAX_STRING_BYTES: u16 = 255;
/// Bits of a button's wrapping press counter.
pub const BUTTON_COUNTER_BITS: u32 = 4;

/// The type of one field: it decides the Rust type, the quantization and the bits.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
#[serde(tag = "type")]
pub enum FieldType {
    /// Tag 0. One bit.
    Bool,
    /// Tag 1. An integer in `min..=max` (`min < max`, `max - min < 2^32`), sent as
    /// `value - min` in `bits_for(max - min)` bits. `u8` declares `0..=255`, `i16`
    /// `-32768..=32767` and so on, unless a narrower range is declared.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// Tag 2. An `f32` in `min..=max`, quantized so that a step is at most `precision`.
    F32 {
        /// Smallest value.
        min: f32,
        /// Largest value.
        max: f32,
        /// Largest acceptable step.
        precision: f32,
    },
    /// Tag 3. A 2D vector, each axis quantized like `F32` over its own range with the
    /// same precision.
    Vec2 {
        /// Smallest x.
        min_x: f32,
        /// Largest x.
        max_x: f32,
        /// Smallest y.
        min_y: f32,
        /// Largest y.
        max_y: f32,
        /// Largest acceptable step, on both axes.
        precision: f32,
    },
    /// Tag 4. An angle in radians, any value, quantized to `bits` bits of a turn;
    /// decodes in `0..2π`.
    Angle {
        /// Bits per angle, 1 to 32.
        bits: u8,
    },
    /// Tag 5. One of a few named variants, sent as its index.
    Enum {
        /// Variant names, in index order.
        variants: Vec<String>,
    },
    /// Tag 6. A UTF-8 string of at most `max_len` bytes.
    Str {
        /// Longest value in bytes, 1 to [`MAX_STRING_BYTES`].
        max_len: u16,
    },
    /// Tag 7. A lobby seat (1 up to the lobby's player cap), or 0 for none.
    Player,
    /// Tag 8. Input only: a held bit and a wrapping press counter.
    Button,
    /// Tag 9. An unsigned integer in `0..=max` (`max` at least 1) sent as var4 groups
    /// (3 value bits and a continuation bit each, as counts are): 0..=7 take 4 bits,
    /// 8..=63 take 8. For values that are small most of the time (scores, kills);
    /// changed-field masks and deltas treat it as any other field.
    VarUint {
        /// Largest value: a larger one is written as `max`, and read as `max`.
        max: u32,
    },
}

/// One named, typed field.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
pub struct Field {
    /// The field's name (ASCII letters, digits, `_`; unique in its row).
    pub name: String,
    /// Its type.
    pub ty: FieldType,
    /// Entity kinds only: sent only to the entity's controlling player.
    pub owner_only: bool,
}

impl Field {
    /// A field visible to everyone who sees its row.
    pub fn new(name: impl Into<String>, ty: FieldType) -> Self {
        Self {
            name: name.into(),
            ty,
            owner_only: false,
        }
    }
}

/// A named list of fields: an entity kind, a message type or an event type.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
pub struct TypeDef {
    /// The type's name (unique among its siblings).
    pub name: String,
    /// Its fields, in wire order.
    pub fields: Vec<Field>,
}

/// Everything a game replicates. Field order is wire order; the index of a kind, message
/// or event type is its wire number.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
pub struct Schema {
    /// The game's name.
    pub game: String,
    /// Entity kinds.
    pub entities: Vec<TypeDef>,
    /// Lobby-wide state, seen by everyone.
    pub lobby: Vec<Field>,
    /// Per-player private state, seen only by that player.
    pub private: Vec<Field>,
    /// A player's input.
    pub input: Vec<Field>,
    /// Client-to-game message types.
    pub messages: Vec<TypeDef>,
    /// Game-to-client event types.
    pub events: Vec<TypeDef>,
}

/// A declaration mistake, found by [`Schema::validate`] (at start-up).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("schema: {path}: {problem}")]
pub struct SchemaError {
    /// Where: e.g. `entity player, field pos`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl SchemaError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// Decoding a schema failed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaDecodeError {
    /// Not a bincode-encoded schema.
    #[error("undecodable schema: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// Bytes after the schema.
    #[error("{0} trailing bytes after the schema")]
    TrailingBytes(usize),
    /// A schema that does not validate.
    #[error(transparent)]
    Invalid(#[from] SchemaError),
}

/// Largest encoded schema a client accepts, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 16 * 1024;

const BINCODE: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_SCHEMA_BYTES>,
> = bincode::config::standard().with_limit::<MAX_SCHEMA_BYTES>();

/// 64-bit FNV-1a of `bytes` (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Quantization of one `f32` axis: `steps + 1` values over `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisQuant {
    /// Smallest value (quantized 0).
    pub min: f32,
    /// Largest value (quantized `steps`).
    pub max: f32,
    /// Number of steps; even when `min == -max`, so that 0 is exact.
    pub steps: u32,
    /// Bits on the wire.
    pub bits: u32,
}

impl AxisQuant {
    /// The quantization of `min..=max` with steps at most `precision`: the fewest bits
    /// `b` whose step count (`2^b - 1`, or `2^b - 2` for a range symmetric around 0)
    /// reaches `ceil((max - min) / precision)`.
    pub fn new(min: f32, max: f32, precision: f32) -> Result<Self, String> {
        if !(min.is_finite() && max.is_finite() && precision.is_finite()) {
            return Err("range and precision must be finite".into());
        }
        if min >= max {
            return Err(format!("range {min}..={max}: min must be below max"));
        }
        if precision <= 0.0 {
            return Err(format!("precision {precision} must be above 0"));
        }
        let symmetric = min == -max;
        let needed = ((f64::from(max) - f64::from(min)) / f64::from(precision)).ceil();
        for bits in 1..=32u32 {
            let cap = ((1u64 << bits) - 1).saturating_sub(u64::from(symmetric));
            if cap >= 1 && cap as f64 >= needed {
                return Ok(Self {
                    min,
                    max,
                    steps: cap as u32,
                    bits,
                });
            }
        }
        Err(format!(
            "range {min}..={max} at precision {precision} needs more than 32 bits"
        ))
    }

    /// `value` quantized: clamped to the range (NaN counts as 0), then
    /// `round((v - min) / (max - min) × steps)`, in f64.
    #[inline(always)]
    pub fn quantize(&self, value: f32) -> u32 {
        let v = if value.is_nan() { 0.0 } else { value };
        let v = f64::from(v.clamp(self.min, self.max));
        let (min, max) = (f64::from(self.min), f64::from(self.max));
        let q = round_non_negative((v - min) / (max - min) * f64::from(self.steps));
        // In 0..=steps by the clamp; `as` saturates anyway.
        (q as u32).min(self.steps)
    }

    /// The value a quantized `q` stands for (clamped to `steps`):
    /// `f32(min + q × (max - min) / steps)`, in f64.
    #[inline]
    pub fn value(&self, q: u32) -> f32 {
        let q = f64::from(q.min(self.steps));
        let (min, max) = (f64::from(self.min), f64::from(self.max));
        (min + q * (max - min) / f64::from(self.steps)) as f32
    }
}

/// `x.round()` (half away from zero) for a finite `x` in `0..2^63`, without the libm
/// call `f64::round` compiles to on baseline x86-64 (no SSE4.1): the integer part by a
/// truncating conversion, then one more if the fraction (exact: `x - trunc(x)` has no
/// more bits than `x`) is at least a half. Quantizing every entity every tick made those
/// calls a fifth of a lobby's tick.
#[inline(always)]
pub(crate) fn round_non_negative(x: f64) -> u64 {
    // Signed conversions are one instruction each way; unsigned ones are not.
    let t = x as i64;
    (t + i64::from(x - t as f64 >= 0.5)) as u64
}

impl FieldType {
    /// Bits this type takes on the wire, for a lobby of at most `max_players` players
    /// (strings: the longest).
    pub fn max_bits(&self, max_players: u16) -> Result<u32, String> {
        Ok(match self {
            FieldType::Bool => 1,
            FieldType::Int { min, max } => {
                if min >= max {
                    return Err(format!("range {min}..={max}: min must be below max"));
                }
                let span = i128::from(*max) - i128::from(*min);
                if span > i128::from(u32::MAX) {
                    return Err(format!("range {min}..={max} needs more than 32 bits"));
                }
                bits_for(span as u64)
            }
            FieldType::F32 {
                min,
                max,
                precision,
            } => AxisQuant::new(*min, *max, *precision)?.bits,
            FieldType::Vec2 {
                min_x,
                max_x,
                min_y,
                max_y,
                precision,
            } => {
                AxisQuant::new(*min_x, *max_x, *precision)?.bits
                    + AxisQuant::new(*min_y, *max_y, *precision)?.bits
            }
            FieldType::Angle { bits } => {
                if !(1..=32).contains(bits) {
                    return Err(format!("angle of {bits} bits: must be 1 to 32"));
                }
                u32::from(*bits)
            }
            FieldType::Enum { variants } => {
                if variants.is_empty() || variants.len() > MAX_VARIANTS {
                    return Err(format!(
                        "enum of {} variants: must be 1 to {MAX_VARIANTS}",
                        variants.len()
                    ));
                }
                check_unique(variants.iter().map(String::as_str), "variant")?;
                bits_for(variants.len() as u64 - 1)
            }
            FieldType::Str { max_len } => {
                if *max_len == 0 || *max_len > MAX_STRING_BYTES {
                    return Err(format!(
                        "string of at most {max_len} bytes: must be 1 to {MAX_STRING_BYTES}"
                    ));
                }
                bits_for(u64::from(*max_len)) + 8 * u32::from(*max_len)
            }
            FieldType::Player => bits_for(u64::from(max_players)),
            FieldType::Button => 1 + BUTTON_COUNTER_BITS,
            FieldType::VarUint { max } => {
                if *max == 0 {
                    return Err("a variable-length integer of max 0: max must be at least 1".into());
                }
                var_bits(*max)
            }
        })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!("name {name:?} must be 1 to {MAX_NAME_BYTES} bytes"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "name {name:?} may hold only ASCII letters, digits and '_'"
        ));
    }
    Ok(())
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        check_name(name)?;
        if seen.contains(&name) {
            return Err(format!("duplicate {what} name {name:?}"));
        }
        seen.push(name);
    }
    Ok(())
}

/// Where a row of fields sits in the schema (what it may hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowRole {
    Entity,
    Lobby,
    Private,
    Input,
    Message,
    Event,
}

/// Checks one row; returns its largest size in bits.
fn check_row(path: &str, fields: &[Field], role: RowRole) -> Result<u32, SchemaError> {
    if fields.len() > MAX_FIELDS {
        return Err(SchemaError::new(
            path,
            format!("{} fields: at most {MAX_FIELDS}", fields.len()),
        ));
    }
    check_unique(fields.iter().map(|f| f.name.as_str()), "field")
        .map_err(|e| SchemaError::new(path, e))?;
    let mut bits = 0;
    for f in fields {
        let at = format!("{path}, field {}", f.name);
        bits +=
            f.ty.max_bits(MAX_LOBBY_PLAYERS)
                .map_err(|e| SchemaError::new(&at, e))?;
        if f.ty == FieldType::Button && role != RowRole::Input {
            return Err(SchemaError::new(at, "a button belongs in the input only"));
        }
        if f.owner_only && role != RowRole::Entity {
            return Err(SchemaError::new(
                at,
                "owner_only applies to entity fields only (private state is already private)",
            ));
        }
    }
    Ok(bits)
}

/// Largest input or message payload after its header, in bytes: the client message
/// limit less the tag and the header (see `state::io`).
pub const MAX_INPUT_PAYLOAD_BYTES: usize = MAX_CLIENT_MESSAGE_BYTES - 16;

impl Schema {
    /// An empty schema for the game `game`, to fill with the builder methods.
    pub fn builder(game: impl Into<String>) -> SchemaBuilder {
        SchemaBuilder {
            schema: Schema {
                game: game.into(),
                entities: Vec::new(),
                lobby: Vec::new(),
                private: Vec::new(),
                input: Vec::new(),
                messages: Vec::new(),
                events: Vec::new(),
            },
            error: None,
        }
    }

    /// Checks every declaration: names (non-empty, at most 32 bytes of ASCII letters,
    /// digits and `_`, unique among siblings), counts (at most 32 fields per row, 256
    /// kinds, message and event types, 256 enum variants), ranges (finite, min below
    /// max, precision above 0, at most 32 bits), string lengths (1 to 255), buttons in
    /// the input only, `owner_only` on entity fields only, and inputs and messages that
    /// fit in a client message.
    pub fn validate(&self) -> Result<(), SchemaError> {
        check_name(&self.game).map_err(|e| SchemaError::new("game", e))?;
        for (what, list) in [
            ("entity", &self.entities),
            ("message", &self.messages),
            ("event", &self.events),
        ] {
            if list.len() > MAX_TYPES {
                return Err(SchemaError::new(
                    format!("{what} types"),
                    format!("{}: at most {MAX_TYPES}", list.len()),
                ));
            }
            check_unique(list.iter().map(|t| t.name.as_str()), what)
                .map_err(|e| SchemaError::new(format!("{what} types"), e))?;
        }
        for t in &self.entities {
            check_row(&format!("entity {}", t.name), &t.fields, RowRole::Entity)?;
        }
        check_row("lobby", &self.lobby, RowRole::Lobby)?;
        check_row("private", &self.private, RowRole::Private)?;
        let input = check_row("input", &self.input, RowRole::Input)?;
        if input.div_ceil(8) as usize > MAX_INPUT_PAYLOAD_BYTES {
            return Err(SchemaError::new(
                "input",
                format!(
                    "up to {} bytes: an input must fit in {MAX_INPUT_PAYLOAD_BYTES}",
                    input.div_ceil(8)
                ),
            ));
        }
        for t in &self.messages {
            let path = format!("message {}", t.name);
            let bits = check_row(&path, &t.fields, RowRole::Message)?;
            if bits.div_ceil(8) as usize > MAX_INPUT_PAYLOAD_BYTES {
                return Err(SchemaError::new(
                    path,
                    format!(
                        "up to {} bytes: a message must fit in {MAX_INPUT_PAYLOAD_BYTES}",
                        bits.div_ceil(8)
                    ),
                ));
            }
        }
        for t in &self.events {
            check_row(&format!("event {}", t.name), &t.fields, RowRole::Event)?;
        }
        Ok(())
    }

    /// The schema's bytes: bincode with the codec's settings (`PROTOCOL.md`, "Game
    /// state").
    pub fn encode(&self) -> Vec<u8> {
        // Writing to a Vec cannot fail.
        bincode::encode_to_vec(self, BINCODE).unwrap_or_default()
    }

    /// A schema from its bytes, validated.
    pub fn decode(bytes: &[u8]) -> Result<Self, SchemaDecodeError> {
        let (schema, read): (Schema, usize) = bincode::decode_from_slice(bytes, BINCODE)?;
        if read != bytes.len() {
            return Err(SchemaDecodeError::TrailingBytes(bytes.len() - read));
        }
        schema.validate()?;
        Ok(schema)
    }

    /// 64-bit FNV-1a of [`Schema::encode`].
    pub fn hash(&self) -> u64 {
        fnv1a64(&self.encode())
    }
}

/// Builds a [`Schema`] from derived types (`#[derive(State)]`, `#[derive(Messages)]`)
/// or plain [`Field`] lists; [`SchemaBuilder::build`] validates.
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    /// What is built so far.
    schema: Schema,
    /// The first declaration error met (reported by `build`).
    error: Option<SchemaError>,
}

impl SchemaBuilder {
    fn fields_of<T: Fields>(&mut self, path: &str) -> Vec<Field> {
        match T::fields() {
            Ok(fields) => fields,
            Err(e) => {
                self.error.get_or_insert(SchemaError::new(
                    format!("{path} {}", T::NAME),
                    format!("{}: {}", e.path, e.problem),
                ));
                Vec::new()
            }
        }
    }

    /// Adds the entity kind `T` (named `T::NAME`).
    pub fn entity<T: Fields>(mut self) -> Self {
        let fields = self.fields_of::<T>("entity");
        self.schema.entities.push(TypeDef {
            name: T::NAME.into(),
            fields,
        });
        self
    }

    /// Adds an entity kind from plain fields.
    pub fn entity_fields(mut self, name: impl Into<String>, fields: Vec<Field>) -> Self {
        self.schema.entities.push(TypeDef {
            name: name.into(),
            fields,
        });
        self
    }

    /// Sets the lobby-wide state to `T`'s fields.
    pub fn lobby<T: Fields>(mut self) -> Self {
        self.schema.lobby = self.fields_of::<T>("lobby");
        self
    }

    /// Sets the lobby-wide state from plain fields.
    pub fn lobby_fields(mut self, fields: Vec<Field>) -> Self {
        self.schema.lobby = fields;
        self
    }

    /// Sets the per-player private state to `T`'s fields.
    pub fn private<T: Fields>(mut self) -> Self {
        self.schema.private = self.fields_of::<T>("private");
        self
    }

    /// Sets the per-player private state from plain fields.
    pub fn private_fields(mut self, fields: Vec<Field>) -> Self {
        self.schema.private = fields;
        self
    }

    /// Sets the input to `T`'s fields.
    pub fn input<T: Fields>(mut self) -> Self {
        self.schema.input = self.fields_of::<T>("input");
        self
    }

    /// Sets the input from plain fields.
    pub fn input_fields(mut self, fields: Vec<Field>) -> Self {
        self.schema.input = fields;
        self
    }

    /// Sets the client-to-game message types to `T`'s variants.
    pub fn messages<T: Messages>(mut self) -> Self {
        match T::types() {
            Ok(types) => self.schema.messages = types,
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Sets the message types from plain type definitions.
    pub fn message_types(mut self, types: Vec<TypeDef>) -> Self {
        self.schema.messages = types;
        self
    }

    /// Sets the game-to-client event types to `T`'s variants.
    pub fn events<T: Messages>(mut self) -> Self {
        match T::types() {
            Ok(types) => self.schema.events = types,
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Sets the event types from plain type definitions.
    pub fn event_types(mut self, types: Vec<TypeDef>) -> Self {
        self.schema.events = types;
        self
    }

    /// The schema, validated.
    pub fn build(self) -> Result<Schema, SchemaError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.schema.validate()?;
        Ok(self.schema)
    }
}

/// What the attributes of one declared field say (`#[state(...)]`), for
/// [`FieldValue::field_type`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FieldAttrs {
    /// `range = MIN..=MAX` (both axes of a `Vec2`).
    pub range: Option<(f64, f64)>,
    /// `x = MIN..=MAX` (a `Vec2`'s x axis).
    pub x: Option<(f64, f64)>,
    /// `y = MIN..=MAX`.
    pub y: Option<(f64, f64)>,
    /// `precision = STEP`.
    pub precision: Option<f64>,
    /// `angle_bits = N`: an `f32` that is an angle.
    pub angle_bits: Option<u8>,
    /// `max_len = N`: a string's longest value in bytes.
    pub max_len: Option<u16>,
    /// `varint`: an unsigned integer sent as var4 groups ([`FieldType::VarUint`]).
    pub varint: bool,
    /// `max = N` (with `varint`): its largest value; the Rust type's largest by default.
    pub max: Option<u32>,
}

/// A Rust type a declared field may have: how it maps to a [`FieldType`] and to the
/// words of a row. Implemented for `bool`, the integers, `f32`, `glam::Vec2`, `String`,
/// [`crate::state::PlayerRef`], [`crate::state::Button`] and `#[derive(StateEnum)]`
/// enums.
pub trait FieldValue: Sized {
    /// The field type the attributes declare, or what is missing or wrong.
    fn field_type(attrs: &FieldAttrs) -> Result<FieldType, String>;
    /// Writes the value as the next field of the row.
    fn write(&self, w: &mut crate::state::RowWriter<'_>);
    /// Reads the next field of the row.
    fn read(r: &mut crate::state::RowReader<'_>) -> Self;
}

/// A struct of fields (`#[derive(State)]`): an entity kind, the lobby or private state,
/// or an input.
pub trait Fields: Sized {
    /// The row's name (an entity kind's name in the schema).
    const NAME: &'static str;
    /// The declared fields, or the first declaration mistake.
    fn fields() -> Result<Vec<Field>, SchemaError>;
    /// Writes every field, in order.
    fn write_fields(&self, w: &mut crate::state::RowWriter<'_>);
    /// Reads every field, in order.
    fn read_fields(r: &mut crate::state::RowReader<'_>) -> Self;
}

/// An enum whose variants are message or event types (`#[derive(Messages)]`).
pub trait Messages: Sized {
    /// One type per variant, in variant order, or the first declaration mistake.
    fn types() -> Result<Vec<TypeDef>, SchemaError>;
    /// The variant's type index.
    fn type_index(&self) -> usize;
    /// Writes the variant's fields, in order.
    fn write_fields(&self, w: &mut crate::state::RowWriter<'_>);
    /// Reads the fields of type `index`; None for an unknown index.
    fn read_fields(index: usize, r: &mut crate::state::RowReader<'_>) -> Option<Self>;
}

/// No fields: the lobby or private state of a game that has none (`type Private = ();`).
impl Fields for () {
    const NAME: &'static str = "none";
    fn fields() -> Result<Vec<Field>, SchemaError> {
        Ok(Vec::new())
    }
    fn write_fields(&self, _: &mut crate::state::RowWriter<'_>) {}
    fn read_fields(_: &mut crate::state::RowReader<'_>) -> Self {}
}

/// No types: the messages or events of a game that has none (`type Event =
/// NoMessages;`). It has no values, so nothing of it is ever sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMessages {}

impl Messages for NoMessages {
    fn types() -> Result<Vec<TypeDef>, SchemaError> {
        Ok(Vec::new())
    }
    fn type_index(&self) -> usize {
        match *self {}
    }
    fn write_fields(&self, _: &mut crate::state::RowWriter<'_>) {
        match *self {}
    }
    fn read_fields(_: usize, _: &mut crate::state::RowReader<'_>) -> Option<Self> {
        None
    }
}

/// Helper of the derives: the fields of a row, checked for duplicate names.
pub fn collect_fields(
    row: &str,
    fields: impl IntoIterator<Item = Result<Field, SchemaError>>,
) -> Result<Vec<Field>, SchemaError> {
    let fields: Vec<Field> = fields.into_iter().collect::<Result<_, _>>()?;
    check_unique(fields.iter().map(|f| f.name.as_str()), "field")
        .map_err(|e| SchemaError::new(row, e))?;
    Ok(fields)
}

/// Helper of the derives: one declared field of Rust type `T`.
pub fn declare_field<T: FieldValue>(
    row: &str,
    name: &str,
    attrs: &FieldAttrs,
    owner_only: bool,
) -> Result<Field, SchemaError> {
    let ty = T::field_type(attrs).map_err(|e| SchemaError::new(format!("{row}.{name}"), e))?;
    Ok(Field {
        name: name.into(),
        ty,
        owner_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, ty: FieldType) -> Field {
        Field::new(name, ty)
    }

    fn base() -> Schema {
        Schema::builder("test")
            .entity_fields("player", vec![f("alive", FieldType::Bool)])
            .build()
            .expect("valid")
    }

    #[test]
    fn rounding_without_libm_is_f64_round() {
        // Halves, their neighbours, whole numbers, and a spread of magnitudes up to the
        // largest quantizer (2^32 steps) and beyond.
        let mut xs = vec![
            0.0,
            0.5,
            1.5,
            2.5,
            0.499_999_999_999_999_94,
            4_294_967_295.5,
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let scale = f64::from(1u32 << (seed % 31) as u32) * 4.0;
            xs.push((seed >> 11) as f64 / (1u64 << 53) as f64 * scale);
            xs.push(((seed >> 40) as f64 + 0.5).next_down());
            xs.push((seed >> 40) as f64 + 0.5);
            let big = (seed >> 12) as f64 + 0.5; // halves up to 2^52
            xs.extend([big, big.next_down(), big.next_up()]);
        }
        xs.extend([
            0.0,
            0.5,
            0.5f64.next_down(),
            1.5,
            2.5,
            2f64.powi(51),
            2f64.powi(51).next_down(),
        ]);
        xs.extend([2f64.powi(51) - 0.5, 2f64.powi(52), 2f64.powi(62) + 2048.0]);
        for x in xs {
            assert_eq!(round_non_negative(x), x.round() as u64, "{x:e}");
        }
    }

    #[test]
    fn axis_quantization_matches_the_arena() {
        // 0..1000 at 0.0153: 16 bits, 65535 steps, as `quantize::position`.
        let pos = AxisQuant::new(0.0, 1000.0, 0.0153).expect("ok");
        assert_eq!((pos.bits, pos.steps), (16, 65535));
        assert_eq!(pos.quantize(500.0), 32768);
        assert_eq!(pos.quantize(f32::NAN), 0);
        assert_eq!(pos.quantize(1e9), 65535);
        // ±200 at 1.575: 8 bits, 254 steps, 0 exact (as the i8 velocities).
        let vel = AxisQuant::new(-200.0, 200.0, 1.575).expect("ok");
        assert_eq!((vel.bits, vel.steps), (8, 254));
        assert_eq!(vel.quantize(0.0), 127);
        assert_eq!(vel.value(127), 0.0);
        assert_eq!(vel.value(0), -200.0);
        assert_eq!(vel.value(254), 200.0);
        assert_eq!(vel.value(255), 200.0);
        for i in -200..=200 {
            let v = i as f32;
            assert!((vel.value(vel.quantize(v)) - v).abs() <= 1.575 / 2.0 + 1e-3);
        }
    }

    #[test]
    fn declaration_mistakes_are_reported() {
        let bad = |fields: Vec<Field>| {
            let mut s = base();
            s.entities[0].fields = fields;
            s.validate().expect_err("invalid").to_string()
        };
        let e = bad(vec![f(
            "x",
            FieldType::F32 {
                min: 1.0,
                max: 1.0,
                precision: 0.1,
            },
        )]);
        assert!(
            e.contains("entity player, field x") && e.contains("min must be below max"),
            "{e}"
        );
        let e = bad(vec![f(
            "x",
            FieldType::F32 {
                min: 0.0,
                max: 1.0,
                precision: 0.0,
            },
        )]);
        assert!(e.contains("precision 0 must be above 0"), "{e}");
        let e = bad(vec![f(
            "x",
            FieldType::F32 {
                min: 0.0,
                max: 1e9,
                precision: 1e-6,
            },
        )]);
        assert!(e.contains("more than 32 bits"), "{e}");
        let e = bad(vec![f("a", FieldType::Bool), f("a", FieldType::Bool)]);
        assert!(e.contains("duplicate field name \"a\""), "{e}");
        let e = bad((0..33)
            .map(|i| f(&format!("f{i}"), FieldType::Bool))
            .collect());
        assert!(e.contains("33 fields: at most 32"), "{e}");
        let e = bad(vec![f("b", FieldType::Button)]);
        assert!(e.contains("input only"), "{e}");
        let e = bad(vec![f("s", FieldType::Str { max_len: 0 })]);
        assert!(e.contains("must be 1 to 255"), "{e}");
        let e = bad(vec![f("e", FieldType::Enum { variants: vec![] })]);
        assert!(e.contains("0 variants"), "{e}");
        let e = bad(vec![f(
            "e",
            FieldType::Enum {
                variants: vec!["a".into(), "a".into()],
            },
        )]);
        assert!(e.contains("duplicate variant"), "{e}");
        let e = bad(vec![f("bad name", FieldType::Bool)]);
        assert!(e.contains("ASCII"), "{e}");
        let e = bad(vec![f(
            "i",
            FieldType::Int {
                min: 0,
                max: 1 << 40,
            },
        )]);
        assert!(e.contains("more than 32 bits"), "{e}");
        let e = bad(vec![f("a", FieldType::Angle { bits: 0 })]);
        assert!(e.contains("1 to 32"), "{e}");
        let e = bad(vec![f("v", FieldType::VarUint { max: 0 })]);
        assert!(
            e.contains("entity player, field v") && e.contains("max must be at least 1"),
            "{e}"
        );

        let mut s = base();
        s.entities.push(s.entities[0].clone());
        assert!(
            s.validate()
                .expect_err("dup")
                .to_string()
                .contains("duplicate entity")
        );
        let mut s = base();
        s.lobby = vec![Field {
            owner_only: true,
            ..f("x", FieldType::Bool)
        }];
        assert!(
            s.validate()
                .expect_err("owner")
                .to_string()
                .contains("owner_only")
        );
        let mut s = base();
        s.input = vec![f("s", FieldType::Str { max_len: 255 })];
        assert!(
            s.validate()
                .expect_err("big")
                .to_string()
                .contains("must fit")
        );
    }

    #[test]
    fn schema_bytes_roundtrip_and_hash() {
        let s = base();
        let bytes = s.encode();
        assert_eq!(Schema::decode(&bytes).expect("decodes"), s);
        assert_eq!(s.hash(), fnv1a64(&bytes));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Schema::decode(&long),
            Err(SchemaDecodeError::TrailingBytes(1))
        ));
        assert!(Schema::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
