// The ticksync wire codec, in JavaScript: a byte-exact mirror of protocol/src/codec.rs
// (bincode 2.0.1, `standard()` configuration, with the per-direction decode limits) for
// the control messages of protocol 2, and the framing of its game frames.
//
// Plain ES module, no dependencies, no build step: runs as-is in browsers and Node 20.
// PROTOCOL.md documents the bytes; protocol/golden/vectors.json pins them (see
// test/codec.test.js, which checks every golden vector in both directions).
//
// Control messages (tags 0..=63) are plain objects shaped like the golden file's
// "message" field (the Rust types' serde view): `{type: 'Ping', client_time}`, field
// names in snake_case as in Rust. Tokens and byte strings decode to Uint8Arrays; on
// encode a Uint8Array or an array of bytes is accepted. `Option` fields are `null` when
// absent (`undefined` is accepted on encode). Game options are `[[key, value], ...]`
// (an object of strings is accepted on encode).
//
// Game frames (tags >= FIRST_FRAME_TAG) are schema-driven and bit-packed: this module
// only frames them. A decoded server frame is `{type: 'Snapshot', bytes, ack_seq}` or
// `{type: 'Event', bytes}`, the bytes for state/ (client-state.js, io.js) to decode
// with the lobby's schema; a client frame to send is `{type: 'Input' | 'GameMessage',
// bytes}` with the bytes state/io.js encoded.
//
// Decoding mirrors bincode exactly, including two of its less obvious rules:
// - varints need not be minimal: bincode accepts e.g. `fb 05 00` for 5 (any marker up to
//   the integer type's width), and so does this decoder; the encoder always writes the
//   shortest form, like bincode;
// - the decode limit is bincode's "claimed bytes" accounting, not the wire length: every
//   decoded primitive claims its in-memory size (u16 2, u32/i32 4, a length 8, bool/u8
//   1, a token 16, a schema hash 8), every string and byte vector its byte length, and
//   every Vec claims `count * size_of::<T>()` up front (returning one item's worth as
//   each item is decoded). The total may never exceed the direction's limit. Sizes of
//   Rust items on a 64-bit server: LobbyInfo 32, PlayerInfo 32, MatchResult 32, an
//   option pair (String, String) 48.
// Decoding never allocates from an untrusted length: a length is checked against the
// limit and against the bytes left before anything is read.

// ---------------------------------------------------------------------------------------
// Constants (protocol/src/lib.rs, messages.rs, limits.rs, state/)
//
// The one JavaScript home of every protocol constant: the rest of the client imports them
// from here. test/constants.test.js checks each one against the `constants` object of
// protocol/golden/vectors.json, which the Rust protocol crate writes, and fails on a
// constant here that the file does not have.

/** Version of the wire protocol (`ticksync_protocol::PROTOCOL_VERSION`). */
export const PROTOCOL_VERSION = 2;

/** Largest client message the server accepts, in bytes. */
export const MAX_CLIENT_MESSAGE_BYTES = 256;
/** Largest server message a client must accept, in bytes. */
export const MAX_SERVER_MESSAGE_BYTES = 64 * 1024;
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
/** Most players one lobby can hold. */
export const MAX_LOBBY_PLAYERS = 250;
/** Most game options of one request. */
export const MAX_GAME_OPTIONS = 8;
/** Longest game option key, in bytes ([a-z0-9_]). */
export const MAX_OPTION_KEY_BYTES = 32;
/** Longest game option value, in bytes of UTF-8. */
export const MAX_OPTION_VALUE_BYTES = 64;

/** All limits of limits.rs in one object. */
export const Limits = Object.freeze({
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_SERVER_MESSAGE_BYTES,
  MAX_PLAYER_NAME_BYTES,
  MAX_LOBBY_NAME_BYTES,
  MAX_CODE_BYTES,
  MAX_TEXT_BYTES,
  MAX_LISTED_LOBBIES,
  MAX_LOBBY_PLAYERS,
  MAX_GAME_OPTIONS,
  MAX_OPTION_KEY_BYTES,
  MAX_OPTION_VALUE_BYTES,
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
  JoinRefused: 19,
  ClusterUnavailable: 20,
  ReservationFailed: 21,
});

/** Why a player left a lobby (the server's `Left` message). */
export const LeftReason = Object.freeze({
  Requested: 0,
  LobbyClosed: 1,
  LobbyCrashed: 2,
  Kicked: 3,
  MatchEnded: 4,
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

/** Wire tags of the client control messages. */
export const ClientTag = Object.freeze({
  Hello: 0,
  ListLobbies: 1,
  CreateLobby: 2,
  JoinLobby: 3,
  QuickJoin: 4,
  LeaveLobby: 5,
  Ping: 6,
  Options: 7,
  JoinReserved: 8,
});

/** Wire tags of the server control messages. */
export const ServerTag = Object.freeze({
  Welcome: 0,
  LobbyList: 1,
  Joined: 2,
  PlayerJoined: 3,
  PlayerLeft: 4,
  Pong: 5,
  Error: 6,
  Left: 7,
  Notice: 8,
  MatchEnded: 9,
  Redirect: 10,
});

/** The first tag of a game frame (`codec::FIRST_FRAME_TAG`); below it, control messages. */
export const FIRST_FRAME_TAG = 64;
/** Tag of a snapshot frame (state/world.rs SNAPSHOT_TAG). */
export const SNAPSHOT_TAG = 64;
/** Tag of a game event frame (state/io.rs EVENT_TAG). */
export const EVENT_TAG = 65;
/** Tag of an input frame (state/io.rs INPUT_TAG). */
export const INPUT_TAG = 64;
/** Tag of a game message frame (state/io.rs MESSAGE_TAG). */
export const MESSAGE_TAG = 65;
/** Tags of the client's game frames. */
export const ClientFrameTag = Object.freeze({ Input: INPUT_TAG, GameMessage: MESSAGE_TAG });
/** Tags of the server's game frames. */
export const ServerFrameTag = Object.freeze({ Snapshot: SNAPSHOT_TAG, Event: EVENT_TAG });
/** Most entities one snapshot section may create, and one list may hold (state/world.rs). */
export const MAX_SNAPSHOT_ENTITIES = 16_384;

/** Wire tags of a `JoinLobby`'s target. */
export const JoinTargetTag = Object.freeze({ Id: 0, Code: 1 });

/** Bytes of a session token. */
export const TOKEN_BYTES = 16;
/** Bytes of a schema hash (`Joined.schema_hash`, the u64 little-endian). */
export const SCHEMA_HASH_BYTES = 8;

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
const SIZE_MATCH_RESULT = 32;
const SIZE_OPTION_PAIR = 48;

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

  // A fixed array of `n` bytes ([u8; n]): n bytes claimed.
  fixed(n) {
    this.claim(n);
    this.need(n);
    const t = this.b.slice(this.p, this.p + n);
    this.p += n;
    return t;
  }

  // A Vec<u8>: the length, then the bytes (one claimed each).
  byteVec() {
    const len = this.len();
    this.claim(len);
    this.need(len);
    const t = this.b.slice(this.p, this.p + len);
    this.p += len;
    return t;
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
    return this.fixed(TOKEN_BYTES);
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
  const players = r.u16();
  const max_players = r.u16();
  return { id, name, players, max_players };
}

function readPlayerInfo(r) {
  const seat = r.u16();
  const player_id = r.u32();
  const name = r.string();
  return { seat, player_id, name };
}

function readMatchResult(r) {
  const seat = r.u16();
  const name = r.string();
  const score = r.i32();
  const place = r.u16();
  return { seat, name, score, place };
}

// GameOptions: Vec<(String, String)>.
function readOptions(r) {
  return r.vec(SIZE_OPTION_PAIR, (r) => {
    const key = r.string();
    const value = r.string();
    return [key, value];
  });
}

/** Appends `value` (a non-negative integer below 2^53) to `out` (an array) as LEB128. */
export function pushLeb128(value, out) {
  let v = value;
  for (;;) {
    const byte = v % 128;
    v = Math.floor(v / 128);
    if (v === 0) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

// A LEB128 varint of at most `max` bytes at `at`: [value, next position], or null.
function readLeb128(bytes, at, max) {
  let value = 0;
  for (let i = 0; i < max && at + i < bytes.length; i++) {
    const b = bytes[at + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [value, at + i + 1];
  }
  return null;
}

// A snapshot's ack_seq (LEB128 at byte 1, at most 5 bytes, a u32): [value, next], or null.
function readAck(bytes) {
  const ack = readLeb128(bytes, 1, 5);
  return ack && ack[0] <= 0xffff_ffff ? ack : null;
}

/**
 * A snapshot message's parts (state/world.rs `split_snapshot`): {ackSeq, own, shared}
 * (subarrays), or null if it is not one: another tag, a varint too long or above its
 * type (ack_seq: 5 bytes, a u32; the own part length: 3 bytes), an own part past the end.
 */
export function splitSnapshot(bytes, tag = SNAPSHOT_TAG) {
  if (bytes.length < 1 || bytes[0] !== tag) return null;
  const ack = readAck(bytes);
  if (!ack) return null;
  const own = readLeb128(bytes, ack[1], 3);
  if (!own || own[0] > bytes.length - own[1]) return null;
  const end = own[1] + own[0];
  return { ackSeq: ack[0], own: bytes.subarray(own[1], end), shared: bytes.subarray(end) };
}

// A game frame: the bytes as they are (their schema-driven decoding is state/'s).
function frame(b, type) {
  const bytes = b.slice();
  if (type === 'Snapshot') {
    // Only the ack: the rest is ClientState's to judge (an undecodable snapshot is
    // reported there, and the connection stays).
    const ack = readAck(bytes);
    if (!ack) throw new CodecError('Decode', `the message could not be decoded: ${ENDS_EARLY}`, bytes.length);
    return { type, ack_seq: ack[0], bytes };
  }
  return { type, bytes };
}

/** Decodes one client message (one WebSocket binary message). Throws CodecError. */
export function decodeClient(bytes) {
  const r = reader(bytes, MAX_CLIENT_MESSAGE_BYTES);
  if (r.n > 0 && r.b[0] >= FIRST_FRAME_TAG) {
    const t = r.b[0];
    if (t === ClientFrameTag.Input) return frame(r.b, 'Input');
    if (t === ClientFrameTag.GameMessage) return frame(r.b, 'GameMessage');
    return r.fail(`unknown message type ${t}`);
  }
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
      const max_players = r.u16();
      const priv = r.bool();
      const options = readOptions(r);
      m = { type: 'CreateLobby', name, max_players, private: priv, options };
      break;
    }
    case ClientTag.JoinLobby: {
      const t = r.tag();
      let target;
      if (t === JoinTargetTag.Id) target = { type: 'Id', value: r.u32() };
      else if (t === JoinTargetTag.Code) target = { type: 'Code', value: r.string() };
      else r.fail(`unknown value ${t} for JoinTarget`);
      const options = readOptions(r);
      m = { type: 'JoinLobby', target, options };
      break;
    }
    case ClientTag.QuickJoin:
      m = { type: 'QuickJoin', options: readOptions(r) };
      break;
    case ClientTag.LeaveLobby:
      m = { type: 'LeaveLobby' };
      break;
    case ClientTag.Ping:
      m = { type: 'Ping', client_time: r.u32() };
      break;
    case ClientTag.Options:
      m = { type: 'Options', delta_snapshots: r.bool() };
      break;
    case ClientTag.JoinReserved:
      m = { type: 'JoinReserved', reservation: r.string() };
      break;
    default:
      r.fail(`unknown message type ${tag}`);
  }
  return r.finish(m);
}

/** Decodes one server message (one WebSocket binary message). Throws CodecError. */
export function decodeServer(bytes) {
  const r = reader(bytes, MAX_SERVER_MESSAGE_BYTES);
  if (r.n > 0 && r.b[0] >= FIRST_FRAME_TAG) {
    const t = r.b[0];
    if (t === ServerFrameTag.Snapshot) return frame(r.b, 'Snapshot');
    if (t === ServerFrameTag.Event) return frame(r.b, 'Event');
    return r.fail(`unknown message type ${t}`);
  }
  const tag = r.tag();
  let m;
  switch (tag) {
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
      const max_players = r.u16();
      const seat = r.u16();
      const tick = r.u32();
      const schema = r.byteVec();
      const schema_hash = r.fixed(SCHEMA_HASH_BYTES);
      const players = r.vec(SIZE_PLAYER_INFO, readPlayerInfo);
      m = { type: 'Joined', lobby_id, name, code, max_players, seat, tick, schema, schema_hash, players };
      break;
    }
    case ServerTag.PlayerJoined: {
      const p = readPlayerInfo(r);
      m = { type: 'PlayerJoined', seat: p.seat, player_id: p.player_id, name: p.name };
      break;
    }
    case ServerTag.PlayerLeft: {
      const seat = r.u16();
      const player_id = r.u32();
      m = { type: 'PlayerLeft', seat, player_id };
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
    case ServerTag.Notice:
      m = { type: 'Notice', text: r.string() };
      break;
    case ServerTag.MatchEnded: {
      const summary = r.string();
      const results = r.vec(SIZE_MATCH_RESULT, readMatchResult);
      m = { type: 'MatchEnded', summary, results };
      break;
    }
    case ServerTag.Redirect: {
      const url = r.string();
      m = { type: 'Redirect', url, reservation: r.string() };
      break;
    }
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

  // A fixed array of `n` bytes, from a Uint8Array or an array of numbers.
  fixed(v, n, field) {
    const ok =
      v != null &&
      (v instanceof Uint8Array || Array.isArray(v)) &&
      v.length === n &&
      (v instanceof Uint8Array || v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255));
    if (!ok) bad(field, `a Uint8Array or array of ${n} bytes`, v);
    this.reserve(n);
    for (let i = 0; i < n; i++) this.b[this.p + i] = v[i];
    this.p += n;
  }

  // A Vec<u8>.
  byteVec(v, field) {
    const ok = v instanceof Uint8Array || (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255));
    if (!ok) bad(field, 'a Uint8Array or an array of bytes', v);
    this.varint(v.length);
    this.reserve(v.length);
    for (let i = 0; i < v.length; i++) this.b[this.p + i] = v[i];
    this.p += v.length;
  }

  // Bytes as they are (a game frame, already encoded).
  rawBytes(v) {
    this.reserve(v.length);
    this.b.set(v, this.p);
    this.p += v.length;
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
    this.fixed(v, TOKEN_BYTES, field);
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

function writeOptions(w, options, field) {
  let list = options;
  if (options == null) list = [];
  else if (!Array.isArray(options)) {
    if (typeof options !== 'object') bad(field, 'an array of [key, value] pairs or an object of strings', options);
    list = Object.entries(options);
  }
  w.vec(list, field, (w, pair, f) => {
    if (!Array.isArray(pair) || pair.length !== 2) bad(f, 'a [key, value] pair', pair);
    w.string(pair[0], `${f}[0]`);
    w.string(pair[1], `${f}[1]`);
  });
}

function writeFrame(w, m, tag) {
  const b = m.bytes;
  if (!(b instanceof Uint8Array) || b.length === 0 || b[0] !== tag) bad('bytes', `a game frame of tag ${tag}`, b);
  w.rawBytes(b);
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
      w.u16(m.max_players, 'max_players');
      w.bool(m.private, 'private');
      writeOptions(w, m.options, 'options');
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
      writeOptions(w, m.options, 'options');
      break;
    }
    case 'QuickJoin':
      w.raw(ClientTag.QuickJoin);
      writeOptions(w, m.options, 'options');
      break;
    case 'LeaveLobby':
      w.raw(ClientTag.LeaveLobby);
      break;
    case 'Ping':
      w.raw(ClientTag.Ping);
      w.u32(m.client_time, 'client_time');
      break;
    case 'Options':
      w.raw(ClientTag.Options);
      w.bool(m.delta_snapshots, 'delta_snapshots');
      break;
    case 'JoinReserved':
      w.raw(ClientTag.JoinReserved);
      w.string(m.reservation, 'reservation');
      break;
    case 'Input':
      writeFrame(w, m, ClientFrameTag.Input);
      break;
    case 'GameMessage':
      writeFrame(w, m, ClientFrameTag.GameMessage);
      break;
    default:
      bad('type', 'a client message type', type);
  }
  return w.bytes();
}

function writePlayerInfo(w, p, field) {
  w.u16(p.seat, `${field}.seat`);
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
        w.u16(l.players, `${f}.players`);
        w.u16(l.max_players, `${f}.max_players`);
      });
      break;
    case 'Joined':
      w.raw(ServerTag.Joined);
      w.u32(m.lobby_id, 'lobby_id');
      w.string(m.name, 'name');
      if (w.some(m.code)) w.string(m.code, 'code');
      w.u16(m.max_players, 'max_players');
      w.u16(m.seat, 'seat');
      w.u32(m.tick, 'tick');
      w.byteVec(m.schema, 'schema');
      w.fixed(m.schema_hash, SCHEMA_HASH_BYTES, 'schema_hash');
      w.vec(m.players, 'players', writePlayerInfo);
      break;
    case 'PlayerJoined':
      w.raw(ServerTag.PlayerJoined);
      writePlayerInfo(w, m, 'PlayerJoined');
      break;
    case 'PlayerLeft':
      w.raw(ServerTag.PlayerLeft);
      w.u16(m.seat, 'seat');
      w.u32(m.player_id, 'player_id');
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
    case 'Notice':
      w.raw(ServerTag.Notice);
      w.string(m.text, 'text');
      break;
    case 'MatchEnded':
      w.raw(ServerTag.MatchEnded);
      w.string(m.summary, 'summary');
      w.vec(m.results, 'results', (w, x, f) => {
        w.u16(x.seat, `${f}.seat`);
        w.string(x.name, `${f}.name`);
        w.i32(x.score, `${f}.score`);
        w.u16(x.place, `${f}.place`);
      });
      break;
    case 'Redirect':
      w.raw(ServerTag.Redirect);
      w.string(m.url, 'url');
      w.string(m.reservation, 'reservation');
      break;
    case 'Snapshot':
      writeFrame(w, m, ServerFrameTag.Snapshot);
      break;
    case 'Event':
      writeFrame(w, m, ServerFrameTag.Event);
      break;
    default:
      bad('type', 'a server message type', type);
  }
  return w.bytes();
}
