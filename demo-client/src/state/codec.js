// A schema compiled for one lobby (protocol/src/state/mod.rs `Codec`): per row, each
// field's quantization, slots and bits. Rows are plain arrays of quantized slots: one per
// field (two for a Vec2; a Str's slot holds the string itself), so equality and deltas
// are slot compares, as Rust's word compares. Values are the JS view of a row:
//
//   Bool -> boolean, Int -> number, F32 -> number (an f32), Vec2 -> {x, y},
//   Angle -> number (radians, 0..2π), Enum -> number (variant index), Str -> string,
//   Player -> number (seat, 0 for none), Button -> {held, presses},
//   VarUint -> number (0..=max; sent as var4 groups)
//
// Writing a value quantizes it exactly as Rust's RowWriter (clamps, NaN to the minimum,
// strings cut at a character boundary); reading dequantizes as RowReader.

import { bitsFor, varBits } from './bits.js';
import {
  BUTTON_COUNTER_BITS,
  SchemaError,
  angleValue,
  axisQuant,
  axisValue,
  quantizeAngle,
  quantizeAxis,
  validateSchema,
} from './schema.js';

/** A wire value that could not be decoded: 'Truncated' | 'StringTooLong' | 'InvalidUtf8'. */
export class WireError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'WireError';
    this.kind = kind;
  }
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Mask of the first `n` fields (as an unsigned 32-bit number). */
export function maskOf(n) {
  return n >= 32 ? 0xffffffff : 2 ** n - 1;
}

/** Whether bit `i` of `mask` is set. */
export function hasBit(mask, i) {
  return ((mask >>> i) & 1) === 1;
}

// Compiles one (validated) field type.
function compileField(field, slot, maxPlayers) {
  const ty = field.ty;
  const f = { name: field.name, type: ty.type, ty, slot, bits: [0, 0], max: [0, 0], ownerOnly: Boolean(field.owner_only) };
  switch (ty.type) {
    case 'Bool':
      f.bits = [1, 0];
      f.max = [1, 0];
      break;
    case 'Int': {
      const span = Math.min(Math.max(ty.max - ty.min, 0), 0xffffffff);
      f.min = ty.min;
      f.span = span;
      f.bits = [bitsFor(span), 0];
      f.max = [span, 0];
      break;
    }
    case 'F32':
      f.axis = axisQuant(ty.min, ty.max, ty.precision);
      f.bits = [f.axis.bits, 0];
      f.max = [f.axis.steps, 0];
      break;
    case 'Vec2':
      f.ax = axisQuant(ty.min_x, ty.max_x, ty.precision);
      f.ay = axisQuant(ty.min_y, ty.max_y, ty.precision);
      f.bits = [f.ax.bits, f.ay.bits];
      f.max = [f.ax.steps, f.ay.steps];
      break;
    case 'Angle': {
      const bits = Math.min(Math.max(ty.bits, 1), 32);
      f.angleBits = bits;
      f.bits = [bits, 0];
      f.max = [2 ** bits - 1, 0];
      break;
    }
    case 'Enum': {
      const last = Math.max(0, ty.variants.length - 1);
      f.last = last;
      f.bits = [bitsFor(last), 0];
      f.max = [last, 0];
      break;
    }
    case 'Str':
      f.maxLen = ty.max_len;
      f.lenBits = bitsFor(ty.max_len);
      break;
    case 'Player':
      f.cap = maxPlayers;
      f.bits = [bitsFor(maxPlayers), 0];
      f.max = [maxPlayers, 0];
      break;
    case 'Button':
      f.bits = [1 + BUTTON_COUNTER_BITS, 0];
      f.max = [2 ** (1 + BUTTON_COUNTER_BITS) - 1, 0];
      break;
    case 'VarUint':
      // The bits vary with the value (var4); `bits` is the longest.
      f.min = 0;
      f.span = ty.max;
      f.bits = [varBits(ty.max), 0];
      f.max = [ty.max, 0];
      break;
    default:
      throw new SchemaError(field.name, `unknown field type ${ty.type}`);
  }
  f.slots = ty.type === 'Vec2' ? 2 : 1;
  return f;
}

/** The UTF-8 bytes of `s` cut to at most `max` bytes at a character boundary, as a string. */
function cutString(s, max) {
  const bytes = utf8Encoder.encode(s);
  if (bytes.length <= max) return s;
  let end = max;
  // A UTF-8 continuation byte is 10xxxxxx: back up to the start of its character.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return utf8Decoder.decode(bytes.subarray(0, end));
}

/** One row's layout: an entity kind, the lobby or private state, the input, a message or event type. */
export class RowCodec {
  constructor(name, declared, maxPlayers) {
    this.name = name;
    this.declared = declared;
    this.fields = [];
    let slot = 0;
    let ownerMask = 0;
    declared.forEach((d, i) => {
      const f = compileField(d, slot, maxPlayers);
      slot += f.slots;
      if (f.ownerOnly) ownerMask |= 1 << i;
      this.fields.push(f);
    });
    this.slots = slot;
    this.ownerMask = ownerMask >>> 0;
    this.allMask = maskOf(this.fields.length);
    /** Field index by name. */
    this.index = new Map(this.fields.map((f, i) => [f.name, i]));
  }

  /** A zero row: every field at its minimum, strings empty. */
  zero() {
    const row = new Array(this.slots).fill(0);
    for (const f of this.fields) if (f.type === 'Str') row[f.slot] = '';
    return row;
  }

  /** Mask of the fields in `include` that differ between rows `a` and `b`. */
  diff(include, a, b) {
    let mask = 0;
    this.fields.forEach((f, i) => {
      if (!hasBit(include, i)) return;
      if (a[f.slot] !== b[f.slot] || (f.slots === 2 && a[f.slot + 1] !== b[f.slot + 1])) mask |= 1 << i;
    });
    return mask >>> 0;
  }

  /** Writes the fields in `mask` of `row` to the BitWriter. */
  writeWire(mask, row, w) {
    this.fields.forEach((f, i) => {
      if (!hasBit(mask, i)) return;
      if (f.type === 'Str') {
        const bytes = utf8Encoder.encode(row[f.slot]);
        w.write(bytes.length, f.lenBits);
        for (const b of bytes) w.write(b, 8);
        return;
      }
      if (f.type === 'VarUint') {
        w.var(Math.min(row[f.slot], f.max[0]));
        return;
      }
      w.write(row[f.slot], f.bits[0]);
      if (f.slots === 2) w.write(row[f.slot + 1], f.bits[1]);
    });
  }

  /**
   * Reads the fields in `mask` into `row` (out-of-range values clamped: a player above
   * the cap to 0, the rest to their largest). Returns how many were clamped. Throws
   * WireError (or EndOfStream from the reader).
   */
  readWire(mask, r, row) {
    let clamped = 0;
    this.fields.forEach((f, i) => {
      if (!hasBit(mask, i)) return;
      if (f.type === 'Str') {
        const len = r.read(f.lenBits);
        if (len > f.maxLen) throw new WireError('StringTooLong', 'a string is longer than its declared maximum');
        const bytes = new Uint8Array(len);
        for (let k = 0; k < len; k++) bytes[k] = r.read(8);
        try {
          row[f.slot] = utf8Decoder.decode(bytes);
        } catch {
          throw new WireError('InvalidUtf8', 'a string is not valid UTF-8');
        }
        return;
      }
      if (f.type === 'VarUint') {
        // More than 11 groups, or above u32::MAX: EndOfStream (not a stream), as Rust.
        const v = r.var();
        if (v <= f.max[0]) {
          row[f.slot] = v;
        } else {
          clamped++;
          row[f.slot] = f.max[0];
        }
        return;
      }
      for (let k = 0; k < f.slots; k++) {
        const v = r.read(f.bits[k]);
        if (v <= f.max[k]) {
          row[f.slot + k] = v;
        } else {
          clamped++;
          row[f.slot + k] = f.type === 'Player' ? 0 : f.max[k];
        }
      }
    });
    return clamped;
  }

  /** Copies the fields in `mask` from row `from` into row `to`. */
  copyFields(mask, from, to) {
    this.fields.forEach((f, i) => {
      if (!hasBit(mask, i)) return;
      to[f.slot] = from[f.slot];
      if (f.slots === 2) to[f.slot + 1] = from[f.slot + 1];
    });
  }

  /** Field `i`'s value in `row` (dequantized). */
  fieldValue(i, row) {
    const f = this.fields[i];
    const q = row[f.slot];
    switch (f.type) {
      case 'Bool':
        return q !== 0;
      case 'Int':
      case 'VarUint':
        return f.min + q;
      case 'F32':
        return axisValue(f.axis, q);
      case 'Vec2':
        return { x: axisValue(f.ax, q), y: axisValue(f.ay, row[f.slot + 1]) };
      case 'Angle':
        return angleValue(q, f.angleBits);
      case 'Enum':
      case 'Player':
        return q;
      case 'Str':
        return q;
      case 'Button':
        return { held: (q & 1) === 1, presses: (q >>> 1) & 15 };
      default:
        return null;
    }
  }

  /** Sets field `i` of `row` from a value (quantized as RowWriter does). */
  setField(i, row, v) {
    const f = this.fields[i];
    switch (f.type) {
      case 'Bool':
        row[f.slot] = v ? 1 : 0;
        break;
      case 'Int':
      case 'VarUint': {
        let n = Math.trunc(Number(v));
        if (!Number.isFinite(n)) n = n > 0 ? f.min + f.span : f.min;
        row[f.slot] = Math.min(Math.max(n - f.min, 0), f.span);
        break;
      }
      case 'F32':
        row[f.slot] = quantizeAxis(f.axis, Number(v));
        break;
      case 'Vec2': {
        const x = Array.isArray(v) ? v[0] : v?.x;
        const y = Array.isArray(v) ? v[1] : v?.y;
        row[f.slot] = quantizeAxis(f.ax, Number(x ?? 0));
        row[f.slot + 1] = quantizeAxis(f.ay, Number(y ?? 0));
        break;
      }
      case 'Angle':
        row[f.slot] = quantizeAngle(Number(v), f.angleBits);
        break;
      case 'Enum': {
        const n = Math.trunc(Number(v));
        row[f.slot] = Number.isFinite(n) && n > 0 ? Math.min(n, f.last) : 0;
        break;
      }
      case 'Str':
        row[f.slot] = cutString(String(v ?? ''), f.maxLen);
        break;
      case 'Player': {
        const n = Math.trunc(Number(v));
        row[f.slot] = Number.isInteger(n) && n >= 0 && n <= f.cap ? n : 0;
        break;
      }
      case 'Button': {
        const held = Boolean(v?.held);
        const presses = Math.trunc(Number(v?.presses ?? 0)) & 15;
        row[f.slot] = (held ? 1 : 0) | (presses << 1);
        break;
      }
      default:
        break;
    }
  }

  /** The row's values as an object, field name -> value. */
  values(row) {
    const out = {};
    this.fields.forEach((f, i) => {
      out[f.name] = this.fieldValue(i, row);
    });
    return out;
  }

  /** A row from an object of values by field name (missing fields at their zero). */
  fromValues(values = {}) {
    const row = this.zero();
    this.fields.forEach((f, i) => {
      if (values[f.name] !== undefined) this.setField(i, row, values[f.name]);
    });
    return row;
  }
}

/**
 * A validated schema compiled for lobbies of at most `maxPlayers` players (the width of
 * player references). `schema` is the decoded object of schema.js.
 */
export class Codec {
  constructor(schema, maxPlayers) {
    validateSchema(schema);
    if (!(maxPlayers >= 1)) throw new SchemaError('lobby', 'a player cap of 0');
    this.schema = schema;
    this.maxPlayers = maxPlayers;
    this.playerBits = bitsFor(maxPlayers);
    this.kindBits = bitsFor(Math.max(0, schema.entities.length - 1));
    const row = (name, fields) => new RowCodec(name, fields, maxPlayers);
    this.kinds = schema.entities.map((t) => row(t.name, t.fields));
    this.lobby = row('', schema.lobby);
    this.private = row('', schema.private);
    this.input = row('', schema.input);
    this.messages = schema.messages.map((t) => row(t.name, t.fields));
    this.events = schema.events.map((t) => row(t.name, t.fields));
  }

  /** The index of the entity kind `name`, or -1. */
  kindIndex(name) {
    return this.kinds.findIndex((k) => k.name === name);
  }

  /** The index of the message type `name`, or -1. */
  messageIndex(name) {
    return this.messages.findIndex((k) => k.name === name);
  }

  /** The index of the event type `name`, or -1. */
  eventIndex(name) {
    return this.events.findIndex((k) => k.name === name);
  }
}
