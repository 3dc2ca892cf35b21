// Bit packing of the game-state encoding (protocol 2), a mirror of protocol/src/bits.rs:
// LSB-first. Bit `i` of a stream is bit `i % 8` of byte `i / 8`; a value of `n` bits is
// written low bit first, so 32 bits written at a byte boundary are the value's 4
// little-endian bytes. A stream ends on a byte boundary (the last byte padded with zero
// bits).
//
// `var` is the variable-length integer of counts and id gaps ("var4"): groups of 4 bits,
// each 3 value bits (low first) and a continuation bit; 0..=7 take 4 bits, up to 11
// groups for a u32.

/** Bits in one var4 group: 3 value bits and a continuation bit. */
export const VAR_GROUP_BITS = 4;

const TWO_POW_32 = 4294967296;

/** The low `bits` bits of `value` (bits 0..=32), as a non-negative number. */
function low(value, bits) {
  if (bits >= 32) return value >>> 0;
  return (value >>> 0) % 2 ** bits;
}

/** Bits needed for every value in `0..=max` (max a non-negative integer up to 2^53). */
export function bitsFor(max) {
  let bits = 0;
  while (max >= 1) {
    max = Math.floor(max / 2);
    bits++;
  }
  return bits;
}

/** Bits in a var4 encoding of `value`. */
export function varBits(value) {
  const significant = bitsFor(value >>> 0);
  return Math.max(1, Math.ceil(significant / 3)) * VAR_GROUP_BITS;
}

/** The bytes ended before a value was complete (or a var4 is not a valid u32). */
export class EndOfStream extends Error {
  constructor(message = 'the bit stream ended early') {
    super(message);
    this.name = 'EndOfStream';
  }
}

/** Appends bits to a growing byte buffer. */
export class BitWriter {
  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
    /** Bits written so far. */
    this.pos = 0;
  }

  grow(bytes) {
    if (bytes <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < bytes) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf);
    this.buf = next;
  }

  /** Writes the low `bits` bits of `value` (bits at most 32). */
  write(value, bits) {
    if (bits === 0) return;
    let v = low(value, bits);
    this.grow(((this.pos + bits + 7) >>> 3) + 1);
    let left = bits;
    while (left > 0) {
      const byte = this.pos >>> 3;
      const off = this.pos & 7;
      const k = Math.min(8 - off, left);
      const chunk = v % (1 << k);
      this.buf[byte] |= chunk << off;
      v = Math.floor(v / (1 << k));
      this.pos += k;
      left -= k;
    }
  }

  /** Writes one bit. */
  bit(value) {
    this.write(value ? 1 : 0, 1);
  }

  /** Writes a var4 integer. */
  var(value) {
    let v = value >>> 0;
    for (;;) {
      const group = v & 7;
      v = Math.floor(v / 8);
      const more = v !== 0;
      this.write(group | (more ? 8 : 0), VAR_GROUP_BITS);
      if (!more) return;
    }
  }

  /** Bits written so far. */
  get bitsWritten() {
    return this.pos;
  }

  /** The stream, padded to a byte boundary (a new Uint8Array). */
  finish() {
    return this.buf.slice(0, (this.pos + 7) >>> 3);
  }
}

/**
 * Reads bits from a byte array. With `zeroTail`, reading past the end gives zero bits
 * (a per-player part whose trailing zero bytes were trimmed); without, it throws
 * EndOfStream.
 */
export class BitReader {
  constructor(bytes, zeroTail = false) {
    this.bytes = bytes;
    this.pos = 0;
    this.zeroTail = zeroTail;
  }

  /** Reads `bits` bits (at most 32), low bit first. */
  read(bits) {
    if (bits === 0) return 0;
    const end = this.pos + bits;
    const len = this.bytes.length;
    if (end > len * 8 && !this.zeroTail) throw new EndOfStream();
    let value = 0;
    let shift = 1;
    let left = bits;
    while (left > 0) {
      const byte = this.pos >>> 3;
      const off = this.pos & 7;
      const k = Math.min(8 - off, left);
      const b = byte < len ? this.bytes[byte] : 0;
      value += ((b >>> off) & ((1 << k) - 1)) * shift;
      shift *= 1 << k;
      this.pos += k;
      left -= k;
    }
    return value;
  }

  /** Reads one bit, as a boolean. */
  bit() {
    return this.read(1) === 1;
  }

  /** Reads a var4 integer; more than 11 groups or a value over u32::MAX throws. */
  var() {
    let value = 0;
    let scale = 1;
    for (let group = 0; group < 11; group++) {
      const g = this.read(VAR_GROUP_BITS);
      value += (g & 7) * scale;
      scale *= 8;
      if ((g & 8) === 0) {
        if (value >= TWO_POW_32) throw new EndOfStream('a var4 integer over u32::MAX');
        return value;
      }
    }
    throw new EndOfStream('a var4 integer of more than 11 groups');
  }

  /** Bits left before the end of the bytes (ignoring any zero tail). */
  remaining() {
    return Math.max(0, this.bytes.length * 8 - this.pos);
  }

  /** True if everything left is at most 7 zero padding bits of the last byte. */
  atPaddedEnd() {
    const len = this.bytes.length * 8;
    if (this.pos > len || len - this.pos >= 8) return this.pos >= len;
    const rest = len - this.pos;
    if (rest === 0) return true;
    const last = this.bytes[this.bytes.length - 1];
    return last >>> (8 - rest) === 0;
  }
}
