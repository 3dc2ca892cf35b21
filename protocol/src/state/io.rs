//! Inputs, messages and events (protocol 2), encoded by the schema with the same field
//! encodings as state. Each is one WebSocket binary message:
//!
//! - input (client → server): tag [`INPUT_TAG`], `seq` u32 LE, `client_tick` u32 LE,
//!   then every input field (bit-packed, padded to a byte);
//! - message (client → server): tag [`MESSAGE_TAG`], the type index (1 byte), then
//!   the type's fields;
//! - event (server → client): tag [`EVENT_TAG`], `tick` u32 LE, the type index (1
//!   byte), then the type's fields.
//!
//! Decoding clamps out-of-range values (and counts them), refuses unknown type indices,
//! over-long or non-UTF-8 strings, truncated bytes and trailing bytes, and never panics.

use super::{Codec, Row, RowCodec, RowReader, RowWriter, Value, WireError};
use crate::bits::{BitReader, BitWriter};
use crate::limits::MAX_CLIENT_MESSAGE_BYTES;
use crate::schema::{Fields, Messages};

/// Tag byte of an input (client → server; the first game frame tag,
/// [`crate::codec::FIRST_FRAME_TAG`]).
pub const INPUT_TAG: u8 = 64;
/// Tag byte of a game message (client → server).
pub const MESSAGE_TAG: u8 = 65;
/// Tag byte of a game event (server → client; a snapshot is 64).
pub const EVENT_TAG: u8 = 65;

/// Why an input, message or event did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoError {
    /// Another tag, or too short for its head.
    #[error("not a message of this kind")]
    WrongTag,
    /// Longer than a client message may be.
    #[error("{0} bytes: over the client message limit")]
    TooLarge(usize),
    /// No message or event type of this index.
    #[error("unknown type index {0}")]
    UnknownType(u8),
    /// A value did not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Bytes after the last field.
    #[error("bytes after the last field")]
    TrailingBytes,
}

/// A decoded input: read it as the game's type with `row.get::<T>(codec.input_row())`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedInput {
    /// Increases by one with every input a client sends.
    pub seq: u32,
    /// The client's tick when it sampled the input.
    pub client_tick: u32,
    /// The fields, quantized and in range.
    pub row: Row,
    /// How many values were out of range and clamped.
    pub clamped: u32,
}

/// A decoded message or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Its tick (events; 0 for messages).
    pub tick: u32,
    /// Its type index.
    pub index: usize,
    /// The fields.
    pub row: Row,
    /// How many values were out of range and clamped.
    pub clamped: u32,
}

impl Decoded {
    /// As the game's message or event enum (None if the index is not one of its types).
    pub fn get<M: Messages>(&self, row: &RowCodec) -> Option<M> {
        M::read_fields(
            self.index,
            &mut RowReader::new(row, &self.row.words, &self.row.text),
        )
    }
}

fn write_row(row: &RowCodec, words: &Row, w: &mut BitWriter<'_>) {
    row.write_wire(
        super::mask_of(row.fields.len()),
        &words.words,
        &words.text,
        w,
    );
}

fn read_row(row: &RowCodec, r: &mut BitReader<'_>) -> Result<(Row, u32), IoError> {
    let mut out = Row::zero(row);
    let clamped = row.read_wire(
        super::mask_of(row.fields.len()),
        r,
        &mut out.words,
        &mut out.text,
    )?;
    if !r.at_padded_end() {
        return Err(IoError::TrailingBytes);
    }
    Ok((out, clamped))
}

/// Appends an input message.
pub fn encode_input<T: Fields>(
    codec: &Codec,
    seq: u32,
    client_tick: u32,
    input: &T,
    out: &mut Vec<u8>,
) {
    let mut row = Row::default();
    row.set(&codec.input, input);
    encode_input_row(codec, seq, client_tick, &row, out);
}

/// Appends an input message from dynamic values.
pub fn encode_input_values(
    codec: &Codec,
    seq: u32,
    client_tick: u32,
    values: &[Value],
    out: &mut Vec<u8>,
) {
    let mut row = Row::default();
    row.set_values(&codec.input, values);
    encode_input_row(codec, seq, client_tick, &row, out);
}

fn encode_input_row(codec: &Codec, seq: u32, client_tick: u32, row: &Row, out: &mut Vec<u8>) {
    out.push(INPUT_TAG);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&client_tick.to_le_bytes());
    let mut w = BitWriter::new(out);
    write_row(&codec.input, row, &mut w);
    w.finish();
}

/// Decodes an input message.
pub fn decode_input(codec: &Codec, bytes: &[u8]) -> Result<DecodedInput, IoError> {
    if bytes.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Err(IoError::TooLarge(bytes.len()));
    }
    let [INPUT_TAG, s0, s1, s2, s3, t0, t1, t2, t3, rest @ ..] = bytes else {
        return Err(IoError::WrongTag);
    };
    let (row, clamped) = read_row(&codec.input, &mut BitReader::new(rest))?;
    Ok(DecodedInput {
        seq: u32::from_le_bytes([*s0, *s1, *s2, *s3]),
        client_tick: u32::from_le_bytes([*t0, *t1, *t2, *t3]),
        row,
        clamped,
    })
}

fn typed_row<M: Messages>(rows: &[RowCodec], value: &M) -> Option<(u8, Row)> {
    let index = value.type_index();
    let row = rows.get(index)?;
    let mut words = Row::zero(row);
    value.write_fields(&mut RowWriter::new(row, &mut words.words, &mut words.text));
    Some((index as u8, words))
}

fn values_row(rows: &[RowCodec], index: usize, values: &[Value]) -> Option<(u8, Row)> {
    let row = rows.get(index)?;
    let mut words = Row::default();
    words.set_values(row, values);
    Some((index as u8, words))
}

fn encode_typed(rows: &[RowCodec], index: u8, row: &Row, out: &mut Vec<u8>) {
    out.push(index);
    let mut w = BitWriter::new(out);
    if let Some(r) = rows.get(usize::from(index)) {
        write_row(r, row, &mut w);
    }
    w.finish();
}

/// Appends a game message (false, writing nothing, if the schema lacks its type).
pub fn encode_message<M: Messages>(codec: &Codec, message: &M, out: &mut Vec<u8>) -> bool {
    let Some((index, row)) = typed_row(&codec.messages, message) else {
        return false;
    };
    out.push(MESSAGE_TAG);
    encode_typed(&codec.messages, index, &row, out);
    true
}

/// Appends a game message of type `index` from dynamic values.
pub fn encode_message_values(
    codec: &Codec,
    index: usize,
    values: &[Value],
    out: &mut Vec<u8>,
) -> bool {
    let Some((index, row)) = values_row(&codec.messages, index, values) else {
        return false;
    };
    out.push(MESSAGE_TAG);
    encode_typed(&codec.messages, index, &row, out);
    true
}

/// Decodes a game message.
pub fn decode_message(codec: &Codec, bytes: &[u8]) -> Result<Decoded, IoError> {
    if bytes.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Err(IoError::TooLarge(bytes.len()));
    }
    let [MESSAGE_TAG, index, rest @ ..] = bytes else {
        return Err(IoError::WrongTag);
    };
    let row = codec
        .messages
        .get(usize::from(*index))
        .ok_or(IoError::UnknownType(*index))?;
    let (row, clamped) = read_row(row, &mut BitReader::new(rest))?;
    Ok(Decoded {
        tick: 0,
        index: usize::from(*index),
        row,
        clamped,
    })
}

/// Appends a game event of `tick` (false, writing nothing, if the schema lacks its
/// type).
pub fn encode_event<M: Messages>(codec: &Codec, tick: u32, event: &M, out: &mut Vec<u8>) -> bool {
    let Some((index, row)) = typed_row(&codec.events, event) else {
        return false;
    };
    out.push(EVENT_TAG);
    out.extend_from_slice(&tick.to_le_bytes());
    encode_typed(&codec.events, index, &row, out);
    true
}

/// Appends a game event of type `index` from dynamic values.
pub fn encode_event_values(
    codec: &Codec,
    tick: u32,
    index: usize,
    values: &[Value],
    out: &mut Vec<u8>,
) -> bool {
    let Some((index, row)) = values_row(&codec.events, index, values) else {
        return false;
    };
    out.push(EVENT_TAG);
    out.extend_from_slice(&tick.to_le_bytes());
    encode_typed(&codec.events, index, &row, out);
    true
}

/// Decodes a game event.
pub fn decode_event(codec: &Codec, bytes: &[u8]) -> Result<Decoded, IoError> {
    let [EVENT_TAG, t0, t1, t2, t3, index, rest @ ..] = bytes else {
        return Err(IoError::WrongTag);
    };
    let row = codec
        .events
        .get(usize::from(*index))
        .ok_or(IoError::UnknownType(*index))?;
    let (row, clamped) = read_row(row, &mut BitReader::new(rest))?;
    Ok(Decoded {
        tick: u32::from_le_bytes([*t0, *t1, *t2, *t3]),
        index: usize::from(*index),
        row,
        clamped,
    })
}
