// The game schema (protocol 2) in JavaScript: a mirror of protocol/src/schema.rs.
//
// A schema arrives in `Joined` as bytes (bincode with the codec's settings: varint
// integers, zigzag signed integers, length-prefixed strings and sequences, enum variants
// as their varint index, f32 as 4 little-endian bytes, u8 and bool as one byte) and its
// hash (64-bit FNV-1a of those bytes). `decodeSchema` turns the bytes into a plain object
// shaped like the Rust types' serde view (the golden file's "schema"):
//
//   {game, entities: [{name, fields}], lobby: fields, private: fields, input: fields,
//    messages: [{name, fields}], events: [{name, fields}]}
//   field: {name, ty: {type: 'Bool' | 'Int' | 'F32' | 'Vec2' | 'Angle' | 'Enum' | 'Str' |
//           'Player' | 'Button' | 'VarUint', ...its parameters}, owner_only}
//
// and `validateSchema` applies every rule of `Schema::validate` (a client refuses a schema
// the server could not have sent).

import { varBits } from './bits.js';

/** Most fields of one row: a changed-field mask fits in a u32. */
export const MAX_FIELDS = 32;
/** Most entity kinds, message types or event types. */
export const MAX_TYPES = 256;
/** Most variants of a small enum. */
export const MAX_VARIANTS = 256;
/** Longest name of anything in a schema, in bytes (ASCII letters, digits, `_`). */
export const MAX_NAME_BYTES = 32;
/** Longest declarable short string, in bytes of UTF-8. */
export const MAX_STRING_BYTES = 255;
/** Bits of a button's wrapping press counter. */
export const BUTTON_COUNTER_BITS = 4;
/** Largest encoded schema a client accepts, in bytes. */
export const MAX_SCHEMA_BYTES = 16 * 1024;
/** Largest input or message payload after its header (MAX_CLIENT_MESSAGE_BYTES - 16). */
export const MAX_INPUT_PAYLOAD_BYTES = 256 - 16;
/** The player cap schemas are validated against (limits.rs MAX_LOBBY_PLAYERS). */
const VALIDATE_PLAYERS = 250;

/** The field types, by wire tag. */
export const FIELD_TYPES = Object.freeze(['Bool', 'Int', 'F32', 'Vec2', 'Angle', 'Enum', 'Str', 'Player', 'Button', 'VarUint']);

/** A schema that could not be decoded, or that does not validate. */
export class SchemaError extends Error {
  constructor(path, problem) {
    super(path ? `schema: ${path}: ${problem}` : `schema: ${problem}`);
    this.name = 'SchemaError';
    this.path = path;
    this.problem = problem;
  }
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** 64-bit FNV-1a of `bytes`, as 16 lowercase hex digits. */
export function fnv1a64(bytes) {
  let hash = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (const b of bytes) {
    hash ^= BigInt(b);
    hash = (hash * prime) & mask;
  }
  return hash.toString(16).padStart(16, '0');
}

/** The hash of `Joined.schema_hash` ([u8; 8], the u64 little-endian) as 16 hex digits. */
export function hashFromBytes(bytes8) {
  let hex = '';
  for (let i = 7; i >= 0; i--) hex += bytes8[i].toString(16).padStart(2, '0');
  return hex;
}

// ---------------------------------------------------------------------------------------
// bincode (standard configuration)

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.p = 0;
  }

  fail(what) {
    throw new SchemaError('', `undecodable schema: ${what} at byte ${this.p}`);
  }

  need(k) {
    if (this.b.length - this.p < k) this.fail('the bytes end early');
  }

  u8() {
    this.need(1);
    return this.b[this.p++];
  }

  // An unsigned varint of at most `maxMarker` width, as a BigInt.
  varint(maxMarker) {
    const m = this.u8();
    if (m < 251) return BigInt(m);
    if (m > maxMarker) this.fail('a number wider than its field');
    const p = this.p;
    if (m === 251) {
      this.need(2);
      this.p += 2;
      return BigInt(this.dv.getUint16(p, true));
    }
    if (m === 252) {
      this.need(4);
      this.p += 4;
      return BigInt(this.dv.getUint32(p, true));
    }
    this.need(8);
    this.p += 8;
    return this.dv.getBigUint64(p, true);
  }

  u16() {
    return Number(this.varint(251));
  }

  u32() {
    return Number(this.varint(252));
  }

  len() {
    const n = this.varint(253);
    if (n > BigInt(this.b.length)) this.fail('a length longer than the bytes');
    return Number(n);
  }

  i64() {
    const z = this.varint(253);
    const v = (z >> 1n) ^ -(z & 1n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.fail('an integer bound beyond 2^53 (not supported by this client)');
    }
    return Number(v);
  }

  bool() {
    const v = this.u8();
    if (v > 1) this.fail(`${v} for a true/false field`);
    return v === 1;
  }

  f32() {
    this.need(4);
    const v = this.dv.getFloat32(this.p, true);
    this.p += 4;
    return v;
  }

  string() {
    const n = this.len();
    this.need(n);
    const start = this.p;
    this.p += n;
    try {
      return utf8Decoder.decode(this.b.subarray(start, start + n));
    } catch {
      this.p = start;
      return this.fail('a name that is not UTF-8');
    }
  }

  vec(item) {
    const n = this.len();
    const out = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
}

function readType(r) {
  const tag = r.u32();
  switch (FIELD_TYPES[tag]) {
    case 'Bool':
      return { type: 'Bool' };
    case 'Int': {
      const min = r.i64();
      const max = r.i64();
      return { type: 'Int', min, max };
    }
    case 'F32': {
      const min = r.f32();
      const max = r.f32();
      const precision = r.f32();
      return { type: 'F32', min, max, precision };
    }
    case 'Vec2': {
      const min_x = r.f32();
      const max_x = r.f32();
      const min_y = r.f32();
      const max_y = r.f32();
      const precision = r.f32();
      return { type: 'Vec2', min_x, max_x, min_y, max_y, precision };
    }
    case 'Angle':
      return { type: 'Angle', bits: r.u8() };
    case 'Enum':
      return { type: 'Enum', variants: r.vec(() => r.string()) };
    case 'Str':
      return { type: 'Str', max_len: r.u16() };
    case 'Player':
      return { type: 'Player' };
    case 'Button':
      return { type: 'Button' };
    case 'VarUint':
      return { type: 'VarUint', max: r.u32() };
    default:
      return r.fail(`unknown field type ${tag}`);
  }
}

function readField(r) {
  const name = r.string();
  const ty = readType(r);
  const owner_only = r.bool();
  return { name, owner_only, ty };
}

function readTypeDef(r) {
  const name = r.string();
  const fields = r.vec(() => readField(r));
  return { fields, name };
}

/**
 * Decodes and validates a schema from its bytes (Joined.schema). Throws SchemaError.
 */
export function decodeSchema(bytes) {
  if (bytes.length > MAX_SCHEMA_BYTES) {
    throw new SchemaError('', `a schema of ${bytes.length} bytes is over the ${MAX_SCHEMA_BYTES}-byte limit`);
  }
  const r = new Reader(bytes);
  const fields = () => r.vec(() => readField(r));
  const types = () => r.vec(() => readTypeDef(r));
  const game = r.string();
  const entities = types();
  const lobby = fields();
  const priv = fields();
  const input = fields();
  const messages = types();
  const events = types();
  if (r.p !== bytes.length) throw new SchemaError('', `${bytes.length - r.p} trailing bytes after the schema`);
  const schema = { entities, events, game, input, lobby, messages, private: priv };
  validateSchema(schema);
  return schema;
}

class Writer {
  constructor() {
    this.out = [];
  }

  u8(v) {
    this.out.push(v & 0xff);
  }

  varint(v) {
    const n = BigInt(v);
    const bytes = (k, marker) => {
      this.out.push(marker);
      for (let i = 0n; i < k; i++) this.out.push(Number((n >> (8n * i)) & 0xffn));
    };
    if (n < 251n) this.out.push(Number(n));
    else if (n <= 0xffffn) bytes(2n, 251);
    else if (n <= 0xffffffffn) bytes(4n, 252);
    else bytes(8n, 253);
  }

  i64(v) {
    const n = BigInt(v);
    this.varint(n >= 0n ? n << 1n : ((-n) << 1n) - 1n);
  }

  f32(v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.out.push(...b);
  }

  string(s) {
    const b = utf8Encoder.encode(s);
    this.varint(b.length);
    this.out.push(...b);
  }
}

/** The schema's bytes (what `Schema::encode` writes), for tests and tools. */
export function encodeSchema(schema) {
  const w = new Writer();
  const field = (f) => {
    w.string(f.name);
    const t = f.ty;
    w.varint(FIELD_TYPES.indexOf(t.type));
    switch (t.type) {
      case 'Int':
        w.i64(t.min);
        w.i64(t.max);
        break;
      case 'F32':
        w.f32(t.min);
        w.f32(t.max);
        w.f32(t.precision);
        break;
      case 'Vec2':
        for (const k of ['min_x', 'max_x', 'min_y', 'max_y', 'precision']) w.f32(t[k]);
        break;
      case 'Angle':
        w.u8(t.bits);
        break;
      case 'Enum':
        w.varint(t.variants.length);
        for (const v of t.variants) w.string(v);
        break;
      case 'Str':
        w.varint(t.max_len);
        break;
      case 'VarUint':
        w.varint(t.max);
        break;
      default:
        break;
    }
    w.u8(f.owner_only ? 1 : 0);
  };
  const fields = (list) => {
    w.varint(list.length);
    list.forEach(field);
  };
  const types = (list) => {
    w.varint(list.length);
    for (const t of list) {
      w.string(t.name);
      fields(t.fields);
    }
  };
  w.string(schema.game);
  types(schema.entities);
  fields(schema.lobby);
  fields(schema.private);
  fields(schema.input);
  types(schema.messages);
  types(schema.events);
  return Uint8Array.from(w.out);
}

// ---------------------------------------------------------------------------------------
// Quantization of one f32 axis (AxisQuant)

/**
 * The quantization of `min..=max` with steps at most `precision`: the fewest bits `b`
 * whose step count (`2^b - 1`, or `2^b - 2` for a range symmetric around 0, so that 0 is
 * exact) reaches `ceil((max - min) / precision)`. Returns {min, max, steps, bits} or
 * throws a string saying what is wrong.
 */
export function axisQuant(min, max, precision) {
  if (!(Number.isFinite(min) && Number.isFinite(max) && Number.isFinite(precision))) {
    throw 'range and precision must be finite';
  }
  if (min >= max) throw `range ${min}..=${max}: min must be below max`;
  if (precision <= 0) throw `precision ${precision} must be above 0`;
  const symmetric = min === -max;
  const needed = Math.ceil((max - min) / precision);
  for (let bits = 1; bits <= 32; bits++) {
    const cap = Math.max(0, 2 ** bits - 1 - (symmetric ? 1 : 0));
    if (cap >= 1 && cap >= needed) return { min, max, steps: cap, bits };
  }
  throw `range ${min}..=${max} at precision ${precision} needs more than 32 bits`;
}

/** `value` quantized on axis `a`: clamped (NaN counts as 0), `round((v - min) / (max - min) × steps)`. */
export function quantizeAxis(a, value) {
  let v = Math.fround(value);
  if (Number.isNaN(v)) v = 0;
  v = Math.min(Math.max(v, a.min), a.max);
  const q = Math.round(((v - a.min) / (a.max - a.min)) * a.steps);
  return Math.min(q, a.steps);
}

/** The value a quantized `q` stands for on axis `a`: `f32(min + q × (max - min) / steps)`. */
export function axisValue(a, q) {
  const k = Math.min(q, a.steps);
  return Math.fround(a.min + (k * (a.max - a.min)) / a.steps);
}

/** An angle quantized to `bits` bits of a turn: `round(frac(v / 2π) × 2^bits) mod 2^bits`. */
export function quantizeAngle(value, bits) {
  const v = Math.fround(value);
  if (!Number.isFinite(v)) return 0;
  const turns = v / (2 * Math.PI);
  const frac = turns - Math.floor(turns);
  const scale = 2 ** bits;
  return Math.round(frac * scale) % scale;
}

/** The angle a quantized `q` stands for: `f32(q × 2π / 2^bits)`, in `0..2π`. */
export function angleValue(q, bits) {
  return Math.fround((q * (2 * Math.PI)) / 2 ** bits);
}

// ---------------------------------------------------------------------------------------
// Validation (Schema::validate)

function bitsFor(max) {
  let bits = 0;
  while (max >= 1) {
    max = Math.floor(max / 2);
    bits++;
  }
  return bits;
}

function checkName(name) {
  const n = utf8Encoder.encode(name).length;
  if (n === 0 || n > MAX_NAME_BYTES) throw `name ${JSON.stringify(name)} must be 1 to ${MAX_NAME_BYTES} bytes`;
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw `name ${JSON.stringify(name)} may hold only ASCII letters, digits and '_'`;
}

function checkUnique(names, what) {
  const seen = new Set();
  for (const name of names) {
    checkName(name);
    if (seen.has(name)) throw `duplicate ${what} name ${JSON.stringify(name)}`;
    seen.add(name);
  }
}

/** Bits a field type takes on the wire at most (strings: the longest), or throws a string. */
export function maxBits(ty, maxPlayers) {
  switch (ty.type) {
    case 'Bool':
      return 1;
    case 'Int': {
      if (ty.min >= ty.max) throw `range ${ty.min}..=${ty.max}: min must be below max`;
      const span = ty.max - ty.min;
      if (span > 0xffffffff) throw `range ${ty.min}..=${ty.max} needs more than 32 bits`;
      return bitsFor(span);
    }
    case 'F32':
      return axisQuant(ty.min, ty.max, ty.precision).bits;
    case 'Vec2':
      return axisQuant(ty.min_x, ty.max_x, ty.precision).bits + axisQuant(ty.min_y, ty.max_y, ty.precision).bits;
    case 'Angle':
      if (!(ty.bits >= 1 && ty.bits <= 32)) throw `angle of ${ty.bits} bits: must be 1 to 32`;
      return ty.bits;
    case 'Enum':
      if (ty.variants.length === 0 || ty.variants.length > MAX_VARIANTS) {
        throw `enum of ${ty.variants.length} variants: must be 1 to ${MAX_VARIANTS}`;
      }
      checkUnique(ty.variants, 'variant');
      return bitsFor(ty.variants.length - 1);
    case 'Str':
      if (ty.max_len === 0 || ty.max_len > MAX_STRING_BYTES) {
        throw `string of at most ${ty.max_len} bytes: must be 1 to ${MAX_STRING_BYTES}`;
      }
      return bitsFor(ty.max_len) + 8 * ty.max_len;
    case 'Player':
      return bitsFor(maxPlayers);
    case 'Button':
      return 1 + BUTTON_COUNTER_BITS;
    case 'VarUint':
      if (!(ty.max >= 1)) throw 'a variable-length integer of max 0: max must be at least 1';
      return varBits(ty.max);
    default:
      throw `unknown field type ${ty.type}`;
  }
}

function checkRow(path, fields, role) {
  if (fields.length > MAX_FIELDS) throw new SchemaError(path, `${fields.length} fields: at most ${MAX_FIELDS}`);
  try {
    checkUnique(fields.map((f) => f.name), 'field');
  } catch (e) {
    throw new SchemaError(path, String(e));
  }
  let bits = 0;
  for (const f of fields) {
    const at = `${path}, field ${f.name}`;
    try {
      bits += maxBits(f.ty, VALIDATE_PLAYERS);
    } catch (e) {
      throw new SchemaError(at, String(e));
    }
    if (f.ty.type === 'Button' && role !== 'input') throw new SchemaError(at, 'a button belongs in the input only');
    if (f.owner_only && role !== 'entity') {
      throw new SchemaError(at, 'owner_only applies to entity fields only (private state is already private)');
    }
  }
  return bits;
}

/** Checks every rule of `Schema::validate`; throws SchemaError on the first one broken. */
export function validateSchema(schema) {
  try {
    checkName(schema.game);
  } catch (e) {
    throw new SchemaError('game', String(e));
  }
  for (const [what, list] of [
    ['entity', schema.entities],
    ['message', schema.messages],
    ['event', schema.events],
  ]) {
    if (list.length > MAX_TYPES) throw new SchemaError(`${what} types`, `${list.length}: at most ${MAX_TYPES}`);
    try {
      checkUnique(list.map((t) => t.name), what);
    } catch (e) {
      throw new SchemaError(`${what} types`, String(e));
    }
  }
  for (const t of schema.entities) checkRow(`entity ${t.name}`, t.fields, 'entity');
  checkRow('lobby', schema.lobby, 'lobby');
  checkRow('private', schema.private, 'private');
  const input = checkRow('input', schema.input, 'input');
  if (Math.ceil(input / 8) > MAX_INPUT_PAYLOAD_BYTES) {
    throw new SchemaError('input', `up to ${Math.ceil(input / 8)} bytes: an input must fit in ${MAX_INPUT_PAYLOAD_BYTES}`);
  }
  for (const t of schema.messages) {
    const path = `message ${t.name}`;
    const bits = checkRow(path, t.fields, 'message');
    if (Math.ceil(bits / 8) > MAX_INPUT_PAYLOAD_BYTES) {
      throw new SchemaError(path, `up to ${Math.ceil(bits / 8)} bytes: a message must fit in ${MAX_INPUT_PAYLOAD_BYTES}`);
    }
  }
  for (const t of schema.events) checkRow(`event ${t.name}`, t.fields, 'event');
}
