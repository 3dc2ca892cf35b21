// A GameClient on fake time and a fake socket, and the server messages the tests share:
// a Welcome, a Joined into an arena-like lobby (the schema of server/src/games/arena.rs:
// kind Player {pos, vel, it, score}, input {dir}), and snapshots of it encoded by the JS
// encoder (full, then deltas against the previous one, as the server sends them).

import { ClientFrameTag, PROTOCOL_VERSION, ServerFrameTag } from '../../src/codec.js';
import { GameClient } from '../../src/client.js';
import { Codec } from '../../src/state/codec.js';
import { buildState, encodeSnapshot } from '../../src/state/encoder.js';
import { decodeInput } from '../../src/state/io.js';
import { encodeSchema, fnv1a64 } from '../../src/state/schema.js';
import { FakeTime } from './fake-time.js';
import { fakeSocketClass } from './fake-socket.js';

const f = (name, ty) => ({ name, owner_only: false, ty });
/** The arena's schema as server/src/games/arena.rs declares it. */
export const arenaSchema = {
  game: 'arena',
  entities: [
    {
      name: 'Player',
      fields: [
        f('pos', { type: 'Vec2', min_x: 0, max_x: 1000, min_y: 0, max_y: 1000, precision: Math.fround(0.0153) }),
        f('vel', { type: 'Vec2', min_x: -200, max_x: 200, min_y: -200, max_y: 200, precision: Math.fround(1.575) }),
        f('it', { type: 'Bool' }),
        f('score', { type: 'Int', min: 0, max: 65535 }),
      ],
    },
  ],
  lobby: [],
  private: [],
  input: [f('dir', { type: 'Vec2', min_x: -1, max_x: 1, min_y: -1, max_y: 1, precision: Math.fround(0.0001) })],
  messages: [],
  events: [],
};
export const schemaBytes = encodeSchema(arenaSchema);
const hashBytes = (hex) => Uint8Array.from({ length: 8 }, (_, i) => parseInt(hex.slice(14 - 2 * i, 16 - 2 * i), 16));
export const MAX_PLAYERS = 10;
export const codec = new Codec(arenaSchema, MAX_PLAYERS);

export const welcome = {
  type: 'Welcome',
  player_id: 7,
  session_token: new Uint8Array(16).fill(9),
  tick_rate: 30,
  protocol_version: PROTOCOL_VERSION,
};
export const joined = {
  type: 'Joined',
  lobby_id: 2,
  name: 'quick 2',
  code: null,
  max_players: MAX_PLAYERS,
  seat: 2,
  tick: 99,
  schema: schemaBytes,
  schema_hash: hashBytes(fnv1a64(schemaBytes)),
  players: [
    { seat: 1, player_id: 5, name: 'bo' },
    { seat: 2, player_id: 7, name: 'ada' },
  ],
};

/** A player entity: seat `seat` (entity id 10 + seat) at (x, y). */
export function player(seat, x, y, { vx = 0, vy = 0, it = false, score = 0 } = {}) {
  return { id: 10 + seat, kind: 0, controlledBy: seat, values: { pos: { x, y }, vel: { x: vx, y: vy }, it, score } };
}

/** Decodes an Input frame the client sent: {type: 'Input', seq, clientTick, dir}. */
function decodeFrame(m) {
  if (m.type !== 'Input') return m;
  const d = decodeInput(codec, ClientFrameTag.Input, m.bytes);
  return { type: 'Input', seq: d.seq, clientTick: d.clientTick, dir: d.values.dir, bytes: m.bytes };
}

/** A client on fake time and a fake socket; `dir` is the held direction. */
export function harness(options = {}) {
  const time = new FakeTime();
  const Socket = fakeSocketClass(decodeFrame);
  const events = [];
  const h = {
    time,
    Socket,
    events,
    dir: { x: 0, y: 0 },
    buttons: {},
    /** The state the server sent last (the next snapshot's baseline). */
    sentState: null,
    get ws() {
      return Socket.last;
    },
    /**
     * Delivers the snapshot of `tick`: `entities` (player() rows), acknowledging `ack`;
     * a delta against the previous one unless `full`.
     */
    snapshot(tick, ack, entities, { full = false, seat = joined.seat } = {}) {
      const state = buildState(codec, { tick, entities });
      const bytes = encodeSnapshot(codec, ServerFrameTag.Snapshot, full ? null : h.sentState, state, seat, ack);
      h.sentState = state;
      h.ws.deliver({ type: 'Snapshot', bytes });
      return bytes;
    },
  };
  const controls = {
    sample: () => h.dir,
    direction: () => h.dir,
    button: (name) => h.buttons[name] ?? { held: false, presses: 0 },
  };
  h.client = new GameClient({
    url: 'ws://test/ws',
    name: 'ada',
    controls,
    onEvent: (e) => events.push(e),
    WebSocketImpl: Socket,
    now: time.now,
    setTimeout: time.setTimeout,
    clearTimeout: time.clearTimeout,
    random: () => 0,
    ...options,
  });
  return h;
}
