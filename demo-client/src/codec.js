// The ticksync wire codec, in JavaScript: a byte-exact mirror of protocol/src/codec.rs
// (bincode 2.0.1, `standard()` configuration, with the per-direction decode limits).
//
// Plain ES module, no dependencies, no build step: runs as-is in browsers and Node 20.
// PROTOCOL.md documents the bytes; protocol/golden/vectors.json pins them (see
// test/codec.test.js, which checks every golden vector in both directions).
//
// Messages are plain objects shaped like the golden file's "message" field (the Rust
// types' serde view): `{type: 'Input', seq, dir_x, dir_y, buttons}`, field names in
// snake_case as in Rust. Tokens decode to a Uint8Array(16); on encode a Uint8Array or an
// array of 16 bytes is accepted. `Option` fields are `null` when absent (`undefined` is
// accepted on encode).
//
// Decoding mirrors bincode exactly, including two of its less obvious rules:
// - varints need not be minimal: bincode accepts e.g. `fb 05 00` for 5 (any marker up to
//   the integer type's width), and so does this decoder; the encoder always writes the
//   shortest form, like bincode;
// - the decode limit is bincode's "claimed bytes" accounting, not the wire length: every
//   decoded primitive claims its in-memory size (u16 2, u32/i32/f32 4, a length 8, bool/u8
//   1, a token 16, an entity 8), every string its byte length, and every Vec claims
//   `count * size_of::<T>()` up front (returning one item's worth as each item is
//   decoded). The total may never exceed the direction's limit (256 bytes client->server,
//   16 KiB server->client). Sizes of Rust items on a 64-bit server: LobbyInfo 32,
//   PlayerInfo 32, ScoreEntry 8, EntityState 8.
// Decoding never allocates from an untrusted length: a length is checked against the
// limit and against the bytes left before anything is read.

// ---------------------------------------------------------------------------------------
// Constants (protocol/src/lib.rs, messages.rs, limits.rs)
//
// The one JavaScript home of every protocol constant: the rest of the client imports them
// from here. test/constants.test.js checks each one against the `constants` object of
// protocol/golden/vectors.json, which the Rust protocol crate writes, and fails on a
// constant here that the file does not have.

/** Version of the wire protocol (`ticksync_protocol::PROTOCOL_VERSION`). */
export const PROTOCOL_VERSION = 1;

/** Largest client message the server accepts, in bytes. */
export const MAX_CLIENT_MESSAGE_BYTES = 256;
/** Largest server message a client must accept, in bytes. */
export const MAX_SERVER_MESSAGE_BYTES = 16 * 1024;
/** Longest player name, in bytes of UTF-8. */
export const MAX_PLAYER_NAME_BYTES = 24;
/** Longest lobby name, in bytes of UTF-8. */
export const MAX_LOBBY_NAME_BYTES = 32;
/** Longest private lobby code, in bytes. */
export const MAX_CODE_BYTES = 16;
/** Longest error or notice text the server sends, in bytes. */
export const MAX_TEXT_BYTES = 256;
/** Most lobbies one LobbyList carries. */
export const MAX_LISTED_LOBBIES = 100;
/** Most entities one snapshot carries. */
export const MAX_ENTITIES = 255;
/** Most players one lobby can hold. */
export const MAX_LOBBY_PLAYERS = 250;

/** All limits of limits.rs in one object. */
export const Limits = Object.freeze({
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_SERVER_MESSAGE_BYTES,
  MAX_PLAYER_NAME_BYTES,
  MAX_LOBBY_NAME_BYTES,
  MAX_CODE_BYTES,
  MAX_TEXT_BYTES,
  MAX_LISTED_LOBBIES,
  MAX_ENTITIES,
  MAX_LOBBY_PLAYERS,
});

/** Error codes carried by the server's `Error` message (`ErrorCode`). */
export const ErrorCode = Object.freeze({
  BadMessage: 1,
  VersionMismatch: 2,
  InvalidState: 3,
  LobbyNotFound: 4,
  LobbyFull: 5,
  InvalidName: 6,
  InvalidArgument: 7,
  RateLimited: 8,
  TextFrame: 9,
  MessageTooLarge: 10,
  ServerFull: 11,
  LobbyClosed: 12,
  ShuttingDown: 13,
  ResumeFailed: 14,
  Timeout: 15,
  Kicked: 16,
  Internal: 17,
  Unauthorized: 18,
});

/** Why a player left a lobby (the server's `Left` message). */
export const LeftReason = Object.freeze({
  Requested: 0,
  LobbyClosed: 1,
  LobbyCrashed: 2,
  Kicked: 3,
});

/** WebSocket close codes the server uses (`ticksync_protocol::close`). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  VERSION_MISMATCH: 4001,
  HELLO_TIMEOUT: 4002,
  IDLE_TIMEOUT: 4003,
  SLOW_CONSUMER: 4004,
  REPLACED: 4005,
  KICKED: 4006,
});

/**
 * Codes a client reports itself when a connection ends without a close code of the
 * server's; never sent in a close frame (`close::local`).
 */
export const LocalCloseCode = Object.freeze({
  NO_CLOSE_CODE: 1005,
  CONNECTION_LOST: 1006,
  TLS_FAILURE: 1015,
});

/**
 * Close codes after which reconnecting would only repeat the failure (`close::FINAL`): a
 * protocol error, a text frame, a policy violation (a rate limit, a refused join token),
 * an oversized message, a version mismatch, replaced by a newer connection of the same
 * session, kicked.
 */
export const FINAL_CLOSE_CODES = Object.freeze([
  CloseCode.PROTOCOL_ERROR,
  CloseCode.UNSUPPORTED_DATA,
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.VERSION_MISMATCH,
  CloseCode.REPLACED,
  CloseCode.KICKED,
]);

/** The name of `value` in one of the tables above (ErrorCode, LeftReason, CloseCode...). */
export function nameOf(table, value) {
  for (const key of Object.keys(table)) {
    if (table[key] === value) return key;
  }
  return undefined;
}

/** Wire tags of the client messages. */
export const ClientTag = Object.freeze({
  Hello: 0,
  ListLobbies: 1,
  CreateLobby: 2,
  JoinLobby: 3,
  QuickJoin: 4,
  LeaveLobby: 5,
  Input: 6,
  Ping: 7,
  Options: 8,
});

/** Wire tags of the server messages. */
export const ServerTag = Object.freeze({
  Welcome: 0,
  LobbyList: 1,
  Joined: 2,
  PlayerJoined: 3,
  PlayerLeft: 4,
  Snapshot: 5,
  Pong: 6,
  Error: 7,
  Left: 8,
  Scoreboard: 9,
  Notice: 10,
  SnapshotDelta: 11,
});

/** Wire tags of a `JoinLobby`'s target. */
export const JoinTargetTag = Object.freeze({ Id: 0, Code: 1 });

/** The wire tag of the server's `Snapshot`. */
export const SNAPSHOT_TAG = ServerTag.Snapshot;
/** The wire tag of the server's `SnapshotDelta`. */
export const SNAPSHOT_DELTA_TAG = ServerTag.SnapshotDelta;
/** Field-mask bits of an entity change in a `SnapshotDelta`. */
export const ChangeBit = Object.freeze({ dx: 1, dy: 2, vx: 4, vy: 8, flags: 16 });
/** Bytes of one entity in a snapshot (fixed width). */
export const ENTITY_WIRE_BYTES = 8;
/** Bytes of a session token. */
export const TOKEN_BYTES = 16;

// ---------------------------------------------------------------------------------------
// Quantization (protocol/src/quantize.rs), computed in f32 like Rust.

/** Largest quantized position. */
export const POSITION_STEPS = 65535;
/** Largest quantized velocity magnitude. */
export const VELOCITY_STEPS = 127;

const f32 = Math.fround;

// f32::round: halves away from zero (Math.round rounds them up).
function roundHalfAway(v) {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/** The coordinate a quantized position `q` (u16) stands for, over `0..=extent`. */
export function positionValue(q, extent) {
  return f32(f32(q / POSITION_STEPS) * f32(extent));
}

/** The velocity component a quantized velocity `q` (i8) stands for, over `-max..=max`. */
export function velocityValue(q, max) {
  return f32(f32(q / VELOCITY_STEPS) * f32(max));
}

/** Quantizes a coordinate in `0..=extent` (clamped) to a u16; 0 for NaN or a bad extent. */
export function quantizePosition(value, extent) {
  const v = f32(value);
  const e = f32(extent);
  if (!(e > 0) || !Number.isFinite(v)) return 0;
  const unit = Math.min(Math.max(f32(v / e), 0), 1);
  return roundHalfAway(f32(unit * POSITION_STEPS));
}

/** Quantizes a velocity component in `-max..=max` (clamped) to an i8; 0 for NaN/inf. */
export function quantizeVelocity(value, max) {
  const v = f32(value);
  const m = f32(max);
  if (!(m > 0) || !Number.isFinite(v)) return 0;
  const unit = Math.min(Math.max(f32(v / m), -1), 1);
  // `+ 0` turns -0 into 0.
  return roundHalfAway(f32(unit * VELOCITY_STEPS)) + 0;
}

// ---------------------------------------------------------------------------------------
// Errors

/**
 * Why bytes could not be decoded, or a message encoded. `kind` is one of
 * 'TooLarge' | 'Decode' | 'TrailingBytes' | 'Encode' (as Rust's `CodecError`);
 * `offset` is the byte offset where decoding stopped, when known.
 */
export class CodecError extends Error {
  constructor(kind, message, offset) {
    super(message);
    this.name = 'CodecError';
    this.kind = kind;
    if (offset !== undefined) this.offset = offset;
  }
}

// ---------------------------------------------------------------------------------------
// Decoding

// Error texts are those of Rust's CodecError (plain sentences a person can read):
// test/codec.test.js checks them against the golden file's rejections.
const ENDS_EARLY = 'the message ends early';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

// In-memory sizes bincode claims for the Vec items (64-bit Rust).
const SIZE_LOBBY_INFO = 32;
const SIZE_PLAYER_INFO = 32;
const SIZE_SCORE_ENTRY = 8;
const SIZE_ENTITY_STATE = 8;
const SIZE_ENTITY_CHANGE = 16;

const TWO_POW_32 = 4294967296;

class Reader {
  constructor(bytes, limit) {
    this.b = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.p = 0;
    this.n = bytes.length;
    this.limit = limit;
    this.claimed = 0;
  }

  fail(what) {
    throw new CodecError('Decode', `the message could not be decoded: ${what}`, this.p);
  }

  claim(k) {
    this.claimed += k;
    if (this.claimed > this.limit) this.fail('a length is over the limit');
  }

  need(k) {
    if (this.n - this.p < k) this.fail(ENDS_EARLY);
  }

  u8() {
    this.claim(1);
    if (this.p >= this.n) this.fail(ENDS_EARLY);
    return this.b[this.p++];
  }

  i8() {
    return (this.u8() << 24) >> 24;
  }

  // A fixed-width little-endian i16 (inside an entity change).
  i16() {
    this.claim(2);
    this.need(2);
    const v = this.dv.getInt16(this.p, true);
    this.p += 2;
    return v;
  }

  bool() {
    const v = this.u8();
    if (v > 1) {
      this.p--;
      this.fail(`unknown value ${v} for a true/false field (0 or 1)`);
    }
    return v === 1;
  }

  // A varint whose widest allowed marker is `maxMarker` (251 u16, 252 u32, 253 u64).
  varint(maxMarker) {
    const b = this.b;
    const p = this.p;
    if (p >= this.n) this.fail(ENDS_EARLY);
    const m = b[p];
    if (m < 251) {
      this.p = p + 1;
      return m;
    }
    if (m > maxMarker) this.fail('a number is wider than its field');
    if (m === 251) {
      this.need(3);
      this.p = p + 3;
      return this.dv.getUint16(p + 1, true);
    }
    if (m === 252) {
      this.need(5);
      this.p = p + 5;
      return this.dv.getUint32(p + 1, true);
    }
    this.need(9);
    this.p = p + 9;
    // Exact below 2^53; any larger value is far over every limit, which is all that matters
    // for the lengths (the only u64s of the protocol).
    return this.dv.getUint32(p + 5, true) * TWO_POW_32 + this.dv.getUint32(p + 1, true);
  }

  u16() {
    this.claim(2);
    return this.varint(251);
  }

  u32() {
    this.claim(4);
    return this.varint(252);
  }

  i32() {
    this.claim(4);
    const z = this.varint(252);
    return (z >>> 1) ^ -(z & 1);
  }

  // A string or sequence length (bincode: u64, then usize).
  len() {
    this.claim(8);
    return this.varint(253);
  }

  f32() {
    this.claim(4);
    this.need(4);
    const v = this.dv.getFloat32(this.p, true);
    this.p += 4;
    return v;
  }

  string() {
    const len = this.len();
    this.claim(len);
    this.need(len);
    const start = this.p;
    this.p = start + len;
    try {
      return utf8Decoder.decode(this.b.subarray(start, start + len));
    } catch {
      this.p = start;
      return this.fail('a text field is not valid UTF-8');
    }
  }

  token() {
    this.claim(TOKEN_BYTES);
    this.need(TOKEN_BYTES);
    const t = this.b.slice(this.p, this.p + TOKEN_BYTES);
    this.p += TOKEN_BYTES;
    return t;
  }

  // Reads an Option tag (a raw byte 0 or 1); true when a value follows.
  some() {
    const t = this.u8();
    if (t > 1) {
      this.p--;
      this.fail(`unknown value ${t} for an optional field (0 or 1)`);
    }
    return t === 1;
  }

  // Vec<T>: the count, the claim of count * size, then each item (unclaiming its size).
  vec(size, item) {
    const count = this.len();
    this.claim(count * size);
    const out = [];
    for (let i = 0; i < count; i++) {
      this.claimed -= size;
      out.push(item(this));
    }
    return out;
  }

  tag() {
    return this.u32();
  }

  finish(message) {
    if (this.p !== this.n) {
      const extra = this.n - this.p;
      const follow = extra === 1 ? '1 byte follows' : `${extra} bytes follow`;
      throw new CodecError('TrailingBytes', `${follow} the end of the message`, this.p);
    }
    return message;
  }
}

function toBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new CodecError('Decode', 'expected a Uint8Array or an ArrayBuffer');
}

function reader(bytes, max) {
  const b = toBytes(bytes);
  if (b.length > max) {
    throw new CodecError('TooLarge', `the message of ${b.length} bytes is over the ${max}-byte limit`);
  }
  return new Reader(b, max);
}

function readLobbyInfo(r) {
  const id = r.u32();
  const name = r.string();
  const players = r.u8();
  const max_players = r.u8();
  return { id, name, players, max_players };
}

function readPlayerInfo(r) {
  const entity = r.u8();
  const player_id = r.u32();
  const name = r.string();
  return { entity, player_id, name };
}

function readScoreEntry(r) {
  const entity = r.u8();
  const score = r.i32();
  return { entity, score };
}

// The hot path (a snapshot per tick): one bounds check for all entities, then DataView
// reads straight into the result objects.
function readSnapshot(r) {
  const ack_seq = r.u32();
  const tick = r.u32();
  const baseline = r.u32();
  const count = r.len();
  // Each entity unclaims its container share (8) and claims its [u8; 8] (8): net zero.
  r.claim(count * SIZE_ENTITY_STATE);
  r.need(count * ENTITY_WIRE_BYTES);
  const dv = r.dv;
  const entities = new Array(count);
  let p = r.p;
  for (let i = 0; i < count; i++, p += ENTITY_WIRE_BYTES) {
    entities[i] = {
      id: dv.getUint8(p),
      flags: dv.getUint8(p + 1),
      x: dv.getUint16(p + 2, true),
      y: dv.getUint16(p + 4, true),
      vx: dv.getInt8(p + 6),
      vy: dv.getInt8(p + 7),
    };
  }
  r.p = p;
  return { type: 'Snapshot', ack_seq, tick, baseline, entities };
}

// One entity change of a SnapshotDelta: id, field mask, then the fields the mask names.
function readEntityChange(r) {
  const id = r.u8();
  const mask = r.u8();
  if (mask === 0 || (mask & ~0x1f) !== 0) {
    r.p--;
    r.fail('an entity change has an invalid field mask');
  }
  return {
    id,
    dx: mask & ChangeBit.dx ? r.i16() : null,
    dy: mask & ChangeBit.dy ? r.i16() : null,
    vx: mask & ChangeBit.vx ? r.i8() : null,
    vy: mask & ChangeBit.vy ? r.i8() : null,
    flags: mask & ChangeBit.flags ? r.u8() : null,
  };
}

function readSnapshotDelta(r) {
  const ack_seq = r.u32();
  const tick = r.u32();
  const baseline = r.u32();
  const changes = r.vec(SIZE_ENTITY_CHANGE, readEntityChange);
  return { type: 'SnapshotDelta', ack_seq, tick, baseline, changes };
}

/**
 * The entities of a SnapshotDelta applied to those of its baseline snapshot (a new
 * array; the inputs are not changed). Throws CodecError if a change names an entity the
 * baseline does not have.
 */
export function applyDelta(baseEntities, delta) {
  const out = baseEntities.map((e) => ({ ...e }));
  for (const c of delta.changes) {
    const e = out.find((x) => x.id === c.id);
    if (!e) throw new CodecError('Decode', `the delta changes entity ${c.id}, which its baseline does not have`);
    if (c.dx !== null) e.x = (e.x + c.dx) & 0xffff;
    if (c.dy !== null) e.y = (e.y + c.dy) & 0xffff;
    if (c.vx !== null) e.vx = c.vx;
    if (c.vy !== null) e.vy = c.vy;
    if (c.flags !== null) e.flags = c.flags;
  }
  return out;
}

/** Decodes one client message (one WebSocket binary message). Throws CodecError. */
export function decodeClient(bytes) {
  const r = reader(bytes, MAX_CLIENT_MESSAGE_BYTES);
  const tag = r.tag();
  let m;
  switch (tag) {
    case ClientTag.Hello: {
      const protocol_version = r.u16();
      const name = r.string();
      const resume_token = r.some() ? r.token() : null;
      m = { type: 'Hello', protocol_version, name, resume_token };
      break;
    }
    case ClientTag.ListLobbies:
      m = { type: 'ListLobbies' };
      break;
    case ClientTag.CreateLobby: {
      const name = r.string();
      const max_players = r.u8();
      const priv = r.bool();
      m = { type: 'CreateLobby', name, max_players, private: priv };
      break;
    }
    case ClientTag.JoinLobby: {
      const t = r.tag();
      let target;
      if (t === JoinTargetTag.Id) target = { type: 'Id', value: r.u32() };
      else if (t === JoinTargetTag.Code) target = { type: 'Code', value: r.string() };
      else r.fail(`unknown value ${t} for JoinTarget`);
      m = { type: 'JoinLobby', target };
      break;
    }
    case ClientTag.QuickJoin:
      m = { type: 'QuickJoin' };
      break;
    case ClientTag.LeaveLobby:
      m = { type: 'LeaveLobby' };
      break;
    case ClientTag.Input: {
      const seq = r.u32();
      const dir_x = r.f32();
      const dir_y = r.f32();
      const buttons = r.u8();
      m = { type: 'Input', seq, dir_x, dir_y, buttons };
      break;
    }
    case ClientTag.Ping:
      m = { type: 'Ping', client_time: r.u32() };
      break;
    case ClientTag.Options:
      m = { type: 'Options', delta_snapshots: r.bool() };
      break;
    default:
      r.fail(`unknown message type ${tag}`);
  }
  return r.finish(m);
}

/** Decodes one server message (one WebSocket binary message). Throws CodecError. */
export function decodeServer(bytes) {
  const r = reader(bytes, MAX_SERVER_MESSAGE_BYTES);
  const tag = r.tag();
  let m;
  switch (tag) {
    case ServerTag.Snapshot:
      m = readSnapshot(r);
      break;
    case ServerTag.Welcome: {
      const player_id = r.u32();
      const session_token = r.token();
      const tick_rate = r.u16();
      const protocol_version = r.u16();
      m = { type: 'Welcome', player_id, session_token, tick_rate, protocol_version };
      break;
    }
    case ServerTag.LobbyList:
      m = { type: 'LobbyList', lobbies: r.vec(SIZE_LOBBY_INFO, readLobbyInfo) };
      break;
    case ServerTag.Joined: {
      const lobby_id = r.u32();
      const name = r.string();
      const code = r.some() ? r.string() : null;
      const max_players = r.u8();
      const your_entity = r.u8();
      const tick = r.u32();
      const world_width = r.f32();
      const world_height = r.f32();
      const max_speed = r.f32();
      const players = r.vec(SIZE_PLAYER_INFO, readPlayerInfo);
      m = {
        type: 'Joined',
        lobby_id,
        name,
        code,
        max_players,
        your_entity,
        tick,
        world_width,
        world_height,
        max_speed,
        players,
      };
      break;
    }
    case ServerTag.PlayerJoined: {
      const p = readPlayerInfo(r);
      m = { type: 'PlayerJoined', entity: p.entity, player_id: p.player_id, name: p.name };
      break;
    }
    case ServerTag.PlayerLeft: {
      const entity = r.u8();
      const player_id = r.u32();
      m = { type: 'PlayerLeft', entity, player_id };
      break;
    }
    case ServerTag.Pong: {
      const client_time = r.u32();
      const server_tick = r.u32();
      m = { type: 'Pong', client_time, server_tick };
      break;
    }
    case ServerTag.Error: {
      const code = r.u16();
      const message = r.string();
      m = { type: 'Error', code, message };
      break;
    }
    case ServerTag.Left:
      m = { type: 'Left', reason: r.u8() };
      break;
    case ServerTag.Scoreboard:
      m = { type: 'Scoreboard', entries: r.vec(SIZE_SCORE_ENTRY, readScoreEntry) };
      break;
    case ServerTag.Notice:
      m = { type: 'Notice', text: r.string() };
      break;
    case ServerTag.SnapshotDelta:
      m = readSnapshotDelta(r);
      break;
    default:
      r.fail(`unknown message type ${tag}`);
  }
  return r.finish(m);
}

// ---------------------------------------------------------------------------------------
// Encoding

function bad(field, expected, value) {
  let shown;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    shown = typeof value;
  }
  throw new CodecError('Encode', `the message could not be encoded: ${field} must be ${expected}, got ${shown}`);
}

function checkUint(v, max, field, expected) {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(field, expected, v);
  return v;
}

// A lone surrogate cannot be UTF-8 (Rust strings never hold one); TextEncoder would
// silently write U+FFFD instead.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

class Writer {
  constructor() {
    this.b = new Uint8Array(64);
    this.dv = new DataView(this.b.buffer);
    this.p = 0;
  }

  reserve(k) {
    if (this.p + k <= this.b.length) return;
    let cap = this.b.length * 2;
    while (cap < this.p + k) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.b.subarray(0, this.p));
    this.b = nb;
    this.dv = new DataView(nb.buffer);
  }

  raw(v) {
    this.reserve(1);
    this.b[this.p++] = v;
  }

  u8(v, field) {
    this.raw(checkUint(v, 0xff, field, 'a u8 (integer 0..=255)'));
  }

  i8(v, field) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -128 || v > 127) {
      bad(field, 'an i8 (integer -128..=127)', v);
    }
    this.raw(v & 0xff);
  }

  bool(v, field) {
    if (typeof v !== 'boolean') bad(field, 'a boolean', v);
    this.raw(v ? 1 : 0);
  }

  varint(v) {
    if (v < 251) {
      this.raw(v);
    } else if (v <= 0xffff) {
      this.reserve(3);
      this.b[this.p] = 251;
      this.dv.setUint16(this.p + 1, v, true);
      this.p += 3;
    } else if (v <= 0xffffffff) {
      this.reserve(5);
      this.b[this.p] = 252;
      this.dv.setUint32(this.p + 1, v, true);
      this.p += 5;
    } else {
      this.reserve(9);
      this.b[this.p] = 253;
      this.dv.setUint32(this.p + 1, v % TWO_POW_32, true);
      this.dv.setUint32(this.p + 5, Math.floor(v / TWO_POW_32), true);
      this.p += 9;
    }
  }

  u16(v, field) {
    this.varint(checkUint(v, 0xffff, field, 'a u16 (integer 0..=65535)'));
  }

  u32(v, field) {
    this.varint(checkUint(v, 0xffffffff, field, 'a u32 (integer 0..=4294967295)'));
  }

  i32(v, field) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      bad(field, 'an i32', v);
    }
    this.varint(((v << 1) ^ (v >> 31)) >>> 0);
  }

  f32(v, field) {
    if (typeof v !== 'number') bad(field, 'a number', v);
    this.reserve(4);
    this.dv.setFloat32(this.p, v, true);
    this.p += 4;
  }

  string(v, field) {
    if (typeof v !== 'string' || LONE_SURROGATE.test(v)) bad(field, 'a well-formed string', v);
    const bytes = utf8Encoder.encode(v);
    this.varint(bytes.length);
    this.reserve(bytes.length);
    this.b.set(bytes, this.p);
    this.p += bytes.length;
  }

  token(v, field) {
    const ok =
      v != null &&
      (v instanceof Uint8Array || Array.isArray(v)) &&
      v.length === TOKEN_BYTES &&
      (v instanceof Uint8Array || v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255));
    if (!ok) bad(field, 'a Uint8Array or array of 16 bytes', v);
    this.reserve(TOKEN_BYTES);
    for (let i = 0; i < TOKEN_BYTES; i++) this.b[this.p + i] = v[i];
    this.p += TOKEN_BYTES;
  }

  // Writes the Option tag; true when the value must follow.
  some(v) {
    const present = v !== null && v !== undefined;
    this.raw(present ? 1 : 0);
    return present;
  }

  vec(items, field, write) {
    if (!Array.isArray(items)) bad(field, 'an array', items);
    this.varint(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item === null || typeof item !== 'object') bad(`${field}[${i}]`, 'an object', item);
      write(this, item, `${field}[${i}]`);
    }
  }

  bytes() {
    return this.b.slice(0, this.p);
  }
}

function messageType(m) {
  if (m === null || typeof m !== 'object') bad('message', 'an object', m);
  return m.type;
}

/** Encodes a client message. Throws CodecError ('Encode') on an invalid message. */
export function encodeClient(m) {
  const w = new Writer();
  const type = messageType(m);
  switch (type) {
    case 'Hello':
      w.raw(ClientTag.Hello);
      w.u16(m.protocol_version, 'protocol_version');
      w.string(m.name, 'name');
      if (w.some(m.resume_token)) w.token(m.resume_token, 'resume_token');
      break;
    case 'ListLobbies':
      w.raw(ClientTag.ListLobbies);
      break;
    case 'CreateLobby':
      w.raw(ClientTag.CreateLobby);
      w.string(m.name, 'name');
      w.u8(m.max_players, 'max_players');
      w.bool(m.private, 'private');
      break;
    case 'JoinLobby': {
      w.raw(ClientTag.JoinLobby);
      const t = m.target;
      if (t === null || typeof t !== 'object') bad('target', "{type: 'Id' | 'Code', value}", t);
      if (t.type === 'Id') {
        w.raw(JoinTargetTag.Id);
        w.u32(t.value, 'target.value');
      } else if (t.type === 'Code') {
        w.raw(JoinTargetTag.Code);
        w.string(t.value, 'target.value');
      } else {
        bad('target.type', "'Id' or 'Code'", t.type);
      }
      break;
    }
    case 'QuickJoin':
      w.raw(ClientTag.QuickJoin);
      break;
    case 'LeaveLobby':
      w.raw(ClientTag.LeaveLobby);
      break;
    case 'Input':
      w.raw(ClientTag.Input);
      w.u32(m.seq, 'seq');
      w.f32(m.dir_x, 'dir_x');
      w.f32(m.dir_y, 'dir_y');
      w.u8(m.buttons, 'buttons');
      break;
    case 'Ping':
      w.raw(ClientTag.Ping);
      w.u32(m.client_time, 'client_time');
      break;
    case 'Options':
      w.raw(ClientTag.Options);
      w.bool(m.delta_snapshots, 'delta_snapshots');
      break;
    default:
      bad('type', 'a client message type', type);
  }
  return w.bytes();
}

function writePlayerInfo(w, p, field) {
  w.u8(p.entity, `${field}.entity`);
  w.u32(p.player_id, `${field}.player_id`);
  w.string(p.name, `${field}.name`);
}

/** Encodes a server message (for tests and tools). Throws CodecError ('Encode'). */
export function encodeServer(m) {
  const w = new Writer();
  const type = messageType(m);
  switch (type) {
    case 'Welcome':
      w.raw(ServerTag.Welcome);
      w.u32(m.player_id, 'player_id');
      w.token(m.session_token, 'session_token');
      w.u16(m.tick_rate, 'tick_rate');
      w.u16(m.protocol_version, 'protocol_version');
      break;
    case 'LobbyList':
      w.raw(ServerTag.LobbyList);
      w.vec(m.lobbies, 'lobbies', (w, l, f) => {
        w.u32(l.id, `${f}.id`);
        w.string(l.name, `${f}.name`);
        w.u8(l.players, `${f}.players`);
        w.u8(l.max_players, `${f}.max_players`);
      });
      break;
    case 'Joined':
      w.raw(ServerTag.Joined);
      w.u32(m.lobby_id, 'lobby_id');
      w.string(m.name, 'name');
      if (w.some(m.code)) w.string(m.code, 'code');
      w.u8(m.max_players, 'max_players');
      w.u8(m.your_entity, 'your_entity');
      w.u32(m.tick, 'tick');
      w.f32(m.world_width, 'world_width');
      w.f32(m.world_height, 'world_height');
      w.f32(m.max_speed, 'max_speed');
      w.vec(m.players, 'players', writePlayerInfo);
      break;
    case 'PlayerJoined':
      w.raw(ServerTag.PlayerJoined);
      writePlayerInfo(w, m, 'PlayerJoined');
      break;
    case 'PlayerLeft':
      w.raw(ServerTag.PlayerLeft);
      w.u8(m.entity, 'entity');
      w.u32(m.player_id, 'player_id');
      break;
    case 'Snapshot':
      w.raw(ServerTag.Snapshot);
      w.u32(m.ack_seq, 'ack_seq');
      w.u32(m.tick, 'tick');
      w.u32(m.baseline, 'baseline');
      w.vec(m.entities, 'entities', (w, e, f) => {
        w.u8(e.id, `${f}.id`);
        w.u8(e.flags, `${f}.flags`);
        checkUint(e.x, 0xffff, `${f}.x`, 'a u16 (integer 0..=65535)');
        checkUint(e.y, 0xffff, `${f}.y`, 'a u16 (integer 0..=65535)');
        w.reserve(4);
        w.dv.setUint16(w.p, e.x, true);
        w.dv.setUint16(w.p + 2, e.y, true);
        w.p += 4;
        w.i8(e.vx, `${f}.vx`);
        w.i8(e.vy, `${f}.vy`);
      });
      break;
    case 'Pong':
      w.raw(ServerTag.Pong);
      w.u32(m.client_time, 'client_time');
      w.u32(m.server_tick, 'server_tick');
      break;
    case 'Error':
      w.raw(ServerTag.Error);
      w.u16(m.code, 'code');
      w.string(m.message, 'message');
      break;
    case 'Left':
      w.raw(ServerTag.Left);
      w.u8(m.reason, 'reason');
      break;
    case 'Scoreboard':
      w.raw(ServerTag.Scoreboard);
      w.vec(m.entries, 'entries', (w, e, f) => {
        w.u8(e.entity, `${f}.entity`);
        w.i32(e.score, `${f}.score`);
      });
      break;
    case 'Notice':
      w.raw(ServerTag.Notice);
      w.string(m.text, 'text');
      break;
    case 'SnapshotDelta':
      w.raw(ServerTag.SnapshotDelta);
      w.u32(m.ack_seq, 'ack_seq');
      w.u32(m.tick, 'tick');
      w.u32(m.baseline, 'baseline');
      w.vec(m.changes, 'changes', (w, c, f) => {
        const has = (v) => v !== null && v !== undefined;
        let mask = 0;
        for (const k of Object.keys(ChangeBit)) if (has(c[k])) mask |= ChangeBit[k];
        if (mask === 0) bad(f, 'a change of at least one field', c);
        w.u8(c.id, `${f}.id`);
        w.raw(mask);
        for (const k of ['dx', 'dy']) {
          if (!has(c[k])) continue;
          if (!Number.isInteger(c[k]) || c[k] < -32768 || c[k] > 32767) bad(`${f}.${k}`, 'an i16', c[k]);
          w.reserve(2);
          w.dv.setInt16(w.p, c[k], true);
          w.p += 2;
        }
        if (has(c.vx)) w.i8(c.vx, `${f}.vx`);
        if (has(c.vy)) w.i8(c.vy, `${f}.vy`);
        if (has(c.flags)) w.u8(c.flags, `${f}.flags`);
      });
      break;
    default:
      bad('type', 'a server message type', type);
  }
  return w.bytes();
}
