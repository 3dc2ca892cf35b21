// Inputs, messages and events (protocol/src/state/io.rs), encoded by the schema with the
// same field encodings as state. Each is one WebSocket binary message:
//
// - input (client -> server): tag, seq u32 LE, client_tick u32 LE, then every input
//   field (bit-packed, padded to a byte);
// - message (client -> server): tag, the type index (1 byte), then the type's fields;
// - event (server -> client): tag, tick u32 LE, the type index (1 byte), the fields.
//
// The tags are passed in (`FrameTag` of codec.js holds them).

import { BitReader, BitWriter, EndOfStream } from './bits.js';
import { WireError } from './codec.js';

/** An input, message or event that did not decode: kind 'WrongTag' | 'TooLarge' | 'UnknownType' | 'Wire' | 'TrailingBytes'. */
export class IoError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'IoError';
    this.kind = kind;
  }
}

/** Largest client message, in bytes. */
const MAX_CLIENT_MESSAGE_BYTES = 256;

function concat(head, tail) {
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

function u32le(dv, at, v) {
  dv.setUint32(at, v >>> 0, true);
}

function rowBytes(rowCodec, row) {
  const w = new BitWriter();
  rowCodec.writeWire(rowCodec.allMask, row, w);
  return w.finish();
}

function readRow(rowCodec, bytes) {
  const r = new BitReader(bytes);
  const row = rowCodec.zero();
  let clamped;
  try {
    clamped = rowCodec.readWire(rowCodec.allMask, r, row);
  } catch (e) {
    if (e instanceof EndOfStream) throw new IoError('Wire', 'the bytes ended early');
    if (e instanceof WireError) throw new IoError('Wire', e.message);
    throw e;
  }
  if (!r.atPaddedEnd()) throw new IoError('TrailingBytes', 'bytes after the last field');
  return { row, clamped };
}

/**
 * An input message: `values` by field name ({steer: {x, y}, fire: {held, presses}}), or
 * a row already quantized (an array).
 */
export function encodeInput(codec, tag, seq, clientTick, values) {
  const row = Array.isArray(values) ? values : codec.input.fromValues(values);
  const head = new Uint8Array(9);
  const dv = new DataView(head.buffer);
  head[0] = tag;
  u32le(dv, 1, seq);
  u32le(dv, 5, clientTick);
  return concat(head, rowBytes(codec.input, row));
}

/** Decodes an input message: {seq, clientTick, row, values, clamped}. Throws IoError. */
export function decodeInput(codec, tag, bytes) {
  if (bytes.length > MAX_CLIENT_MESSAGE_BYTES) throw new IoError('TooLarge', `${bytes.length} bytes: over the client message limit`);
  if (bytes.length < 9 || bytes[0] !== tag) throw new IoError('WrongTag', 'not a message of this kind');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { row, clamped } = readRow(codec.input, bytes.subarray(9));
  return { seq: dv.getUint32(1, true), clientTick: dv.getUint32(5, true), row, values: codec.input.values(row), clamped };
}

function typeIndex(rows, type) {
  const index = typeof type === 'number' ? type : rows.findIndex((r) => r.name === type);
  if (!(index >= 0 && index < rows.length)) throw new IoError('UnknownType', `unknown type ${type}`);
  return index;
}

/** A game message of `type` (its name or index) with `values` by field name. */
export function encodeMessage(codec, tag, type, values = {}) {
  const index = typeIndex(codec.messages, type);
  const row = codec.messages[index].fromValues(values);
  return concat(Uint8Array.of(tag, index), rowBytes(codec.messages[index], row));
}

/** Decodes a game message: {index, type (name), values, clamped}. */
export function decodeMessage(codec, tag, bytes) {
  if (bytes.length > MAX_CLIENT_MESSAGE_BYTES) throw new IoError('TooLarge', `${bytes.length} bytes: over the client message limit`);
  if (bytes.length < 2 || bytes[0] !== tag) throw new IoError('WrongTag', 'not a message of this kind');
  const index = bytes[1];
  const rowCodec = codec.messages[index];
  if (!rowCodec) throw new IoError('UnknownType', `unknown type index ${index}`);
  const { row, clamped } = readRow(rowCodec, bytes.subarray(2));
  return { index, type: rowCodec.name, values: rowCodec.values(row), clamped };
}

/** A game event of `tick` (for tests and tools). */
export function encodeEvent(codec, tag, tick, type, values = {}) {
  const index = typeIndex(codec.events, type);
  const row = codec.events[index].fromValues(values);
  const head = new Uint8Array(6);
  head[0] = tag;
  u32le(new DataView(head.buffer), 1, tick);
  head[5] = index;
  return concat(head, rowBytes(codec.events[index], row));
}

/** Decodes a game event: {tick, index, type (name), values, clamped}. Throws IoError. */
export function decodeEvent(codec, tag, bytes) {
  if (bytes.length < 6 || bytes[0] !== tag) throw new IoError('WrongTag', 'not a message of this kind');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const index = bytes[5];
  const rowCodec = codec.events[index];
  if (!rowCodec) throw new IoError('UnknownType', `unknown type index ${index}`);
  const { row, clamped } = readRow(rowCodec, bytes.subarray(6));
  return { tick: dv.getUint32(1, true), index, type: rowCodec.name, values: rowCodec.values(row), clamped };
}
