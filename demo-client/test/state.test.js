// The JavaScript game-state codec against protocol/golden/state_vectors.json (written by
// protocol/tests/state_golden.rs): the schema's bytes and hash, a full snapshot and a
// delta applied in order (every decoded value exact, the created / changed / removed
// lists), an input encoded byte for byte, a message and an event both ways. The frame
// tags are read from the vectors' first bytes.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BitReader, BitWriter, EndOfStream, bitsFor, varBits } from '../src/state/bits.js';
import { Codec } from '../src/state/codec.js';
import { ClientState, StateDecodeError } from '../src/state/client-state.js';
import { decodeEvent, decodeInput, decodeMessage, encodeEvent, encodeInput, encodeMessage } from '../src/state/io.js';
import {
  SchemaError,
  angleValue,
  axisQuant,
  axisValue,
  decodeSchema,
  encodeSchema,
  fnv1a64,
  quantizeAngle,
  quantizeAxis,
  validateSchema,
} from '../src/state/schema.js';

const golden = JSON.parse(readFileSync(new URL('../../protocol/golden/state_vectors.json', import.meta.url), 'utf8'));

const unhex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

// A golden value ({type, value}, Rust's serde view) as the JS codec's value.
function jsValue({ type, value }) {
  if (type === 'Vec2') return { x: value[0], y: value[1] };
  return value;
}
const jsValues = (obj) => Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, jsValue(v)]));

function stateJson(client, applied) {
  return {
    tick: applied.tick,
    full: applied.full,
    ack_seq: applied.ackSeq,
    created: applied.created,
    changed: applied.changed,
    removed: applied.removed,
    lobby: client.lobbyValues(),
    private: client.privateValues(),
    entities: [...client.entities.values()]
      .sort((a, b) => a.id - b.id)
      .map((e) => ({ id: e.id, kind: client.kindName(e), controlled_by: e.controlledBy, fields: client.entityValues(e.id) })),
  };
}

function expected(state) {
  return {
    ...state,
    lobby: jsValues(state.lobby),
    private: jsValues(state.private),
    entities: state.entities.map((e) => ({ ...e, fields: jsValues(e.fields) })),
  };
}

for (const name of ['every_type', 'arena']) {
  const v = golden[name];
  describe(`golden ${name}`, () => {
    test('the schema decodes to the golden schema, encodes back byte for byte, and hashes alike', () => {
      const bytes = unhex(v.schema_hex);
      const schema = decodeSchema(bytes);
      assert.deepEqual(schema, v.schema);
      assert.equal(hex(encodeSchema(schema)), v.schema_hex);
      assert.equal(fnv1a64(bytes), v.schema_hash);
    });

    test('the full snapshot then the delta apply to the exact golden states', () => {
      const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);
      const full = unhex(v.full.hex);
      const client = new ClientState(codec, v.seat, full[0]);
      assert.deepEqual(stateJson(client, client.apply(full)), expected(v.full.state));
      assert.deepEqual(stateJson(client, client.apply(unhex(v.delta.hex))), expected(v.delta.state));
    });

    test('a delta against a tick the client does not hold is refused and changes nothing', () => {
      const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);
      const delta = unhex(v.delta.hex);
      const client = new ClientState(codec, v.seat, delta[0]);
      assert.throws(() => client.apply(delta), (e) => e instanceof StateDecodeError && e.kind === 'BaselineMismatch');
      assert.equal(client.tick, null);
      assert.equal(client.entities.size, 0);
    });

    test('every truncation of the full snapshot is refused without changing the state', () => {
      const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);
      const full = unhex(v.full.hex);
      const client = new ClientState(codec, v.seat, full[0]);
      client.apply(full);
      const before = stateJson(client, { tick: 0, full: false, ackSeq: 0, created: [], changed: [], removed: [] });
      let refused = 0;
      for (let n = 0; n < full.length; n++) {
        try {
          client.apply(full.subarray(0, n));
        } catch (e) {
          assert.ok(e instanceof StateDecodeError, `${n}: ${e}`);
          refused++;
        }
        // Whatever a truncated message did (a zero tail may still decode), the state
        // after a failure is the one before it.
        client.apply(full);
      }
      assert.ok(refused > full.length / 2, `${refused} of ${full.length} truncations refused`);
      assert.deepEqual(stateJson(client, { tick: 0, full: false, ackSeq: 0, created: [], changed: [], removed: [] }), before);
    });
  });
}

describe('golden every_type: input, message, event', () => {
  const v = golden.every_type;
  const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);

  test('the input encodes byte for byte, from the raw values and from the decoded ones', () => {
    const tag = unhex(v.input.hex)[0];
    const raw = { steer: { x: 0.6, y: -0.8 }, aim: 4.0, fire: { held: true, presses: 2 } };
    assert.equal(hex(encodeInput(codec, tag, v.input.seq, v.input.client_tick, raw)), v.input.hex);
    const decoded = jsValues(v.input.values);
    assert.equal(hex(encodeInput(codec, tag, v.input.seq, v.input.client_tick, decoded)), v.input.hex);
    const back = decodeInput(codec, tag, unhex(v.input.hex));
    assert.equal(back.seq, v.input.seq);
    assert.equal(back.clientTick, v.input.client_tick);
    assert.deepEqual(back.values, decoded);
  });

  test('the message encodes and decodes', () => {
    const tag = unhex(v.message.hex)[0];
    const values = jsValues(v.message.values);
    assert.equal(hex(encodeMessage(codec, tag, v.message.type, values)), v.message.hex);
    const back = decodeMessage(codec, tag, unhex(v.message.hex));
    assert.equal(back.type, v.message.type);
    assert.deepEqual(back.values, values);
  });

  test('the event decodes and encodes', () => {
    const tag = unhex(v.event.hex)[0];
    const back = decodeEvent(codec, tag, unhex(v.event.hex));
    assert.equal(back.tick, v.event.tick);
    assert.equal(back.type, v.event.type);
    assert.deepEqual(back.values, jsValues(v.event.values));
    assert.equal(hex(encodeEvent(codec, tag, v.event.tick, v.event.type, back.values)), v.event.hex);
    assert.throws(() => decodeEvent(codec, tag, unhex(`${v.event.hex}00`)), /after the last field/);
    assert.throws(() => decodeEvent(codec, tag, unhex(v.event.hex).subarray(0, 6)), /ended early/);
  });
});

describe('bits', () => {
  test('LSB-first layout as bits.rs', () => {
    const w = new BitWriter();
    w.write(1, 1);
    w.write(0b10, 2);
    w.write(0x1f, 5);
    w.write(0xabcd, 16);
    w.write(3, 3);
    const out = w.finish();
    assert.deepEqual([...out], [0b1111_1101, 0xcd, 0xab, 0b011]);
    const r = new BitReader(out);
    assert.equal(r.read(1), 1);
    assert.equal(r.read(2), 2);
    assert.equal(r.read(5), 0x1f);
    assert.equal(r.read(16), 0xabcd);
    assert.equal(r.read(3), 3);
    assert.ok(r.atPaddedEnd());
    assert.throws(() => r.read(6), EndOfStream);
  });

  test('var4 round trips and sizes', () => {
    for (const v of [0, 1, 7, 8, 63, 64, 511, 512, 70000, 0xffffffff]) {
      const w = new BitWriter();
      w.bit(true);
      w.var(v);
      assert.equal(w.bitsWritten, 1 + varBits(v), String(v));
      const r = new BitReader(w.finish());
      assert.equal(r.bit(), true);
      assert.equal(r.var(), v);
    }
    assert.equal(varBits(7), 4);
    assert.equal(varBits(8), 8);
    assert.equal(varBits(0xffffffff), 44);
    assert.throws(() => new BitReader(new Uint8Array(8).fill(0xff)).var(), EndOfStream);
  });

  test('full words and a zero tail', () => {
    const w = new BitWriter();
    w.write(5, 3);
    w.write(0xffffffff, 32);
    w.write(0x12345678, 32);
    const r = new BitReader(w.finish());
    assert.equal(r.read(3), 5);
    assert.equal(r.read(32), 0xffffffff);
    assert.equal(r.read(32), 0x12345678);
    const z = new BitReader(Uint8Array.of(1), true);
    assert.equal(z.read(1), 1);
    assert.equal(z.read(32), 0);
    assert.equal(z.var(), 0);
    assert.deepEqual([0, 1, 255, 256].map(bitsFor), [0, 1, 8, 9]);
  });
});

describe('VarUint (FieldType 9)', () => {
  // As protocol/tests/state.rs: an event `score` with points (max 999) and total (max
  // u32::MAX), at tick 0, tag 65.
  const schema = {
    game: 'varuint',
    entities: [],
    lobby: [],
    private: [],
    input: [],
    messages: [],
    events: [
      {
        name: 'score',
        fields: [
          { name: 'points', owner_only: false, ty: { type: 'VarUint', max: 999 } },
          { name: 'total', owner_only: false, ty: { type: 'VarUint', max: 0xffffffff } },
        ],
      },
    ],
  };
  const codec = new Codec(schema, 8);
  const head = [65, 0, 0, 0, 0, 0];

  test('the schema bytes: tag 9, then max as a u32 varint', () => {
    const bytes = encodeSchema(schema);
    assert.deepEqual(decodeSchema(bytes), schema);
    // ... "points", tag 9, 999 (251 = u16 marker, e7 03), owner_only false ...
    assert.ok(hex(bytes).includes(`06${hex(new TextEncoder().encode('points'))}09fbe70300`), hex(bytes));
  });

  test('var4 groups: 4 bits up to 7, 8 up to 63; clamped to max on encode', () => {
    for (const [points, total, bits] of [
      [0, 0, 8],
      [7, 7, 8],
      [8, 63, 16],
      [64, 511, 24],
      [999, 0, 20],
      [5000, 0xffffffff, 16 + 44],
    ]) {
      const bytes = encodeEvent(codec, 65, 0, 'score', { points, total });
      assert.equal(bytes.length, 6 + Math.ceil(bits / 8), `${points} ${total}`);
      const d = decodeEvent(codec, 65, bytes);
      assert.equal(d.clamped, 0);
      assert.deepEqual(d.values, { points: Math.min(points, 999), total });
    }
    assert.deepEqual([...encodeEvent(codec, 65, 0, 'score', { points: 5, total: 0 }).subarray(6)], [0x05]);
  });

  test('a received value above max reads as max; a var4 over 32 bits is refused', () => {
    const d = decodeEvent(codec, 65, Uint8Array.of(...head, 0xd8, 0x1f, 0x00));
    assert.equal(d.clamped, 1);
    assert.deepEqual(d.values, { points: 999, total: 0 });
    assert.throws(() => decodeEvent(codec, 65, Uint8Array.of(...head, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00)), /ended early/);
    assert.throws(() => decodeEvent(codec, 65, Uint8Array.of(...head, 0xf0, 0xff, 0xff, 0xff, 0xff, 0x7f)), /ended early/);
    const most = decodeEvent(codec, 65, Uint8Array.of(...head, 0xf0, 0xff, 0xff, 0xff, 0xff, 0x3f));
    assert.deepEqual(most.values, { points: 0, total: 0xffffffff });
    assert.throws(() => decodeEvent(codec, 65, Uint8Array.of(...head, 0x08)), /ended early/);
  });
});

describe('quantization', () => {
  test('axes as schema.rs (the arena position and velocity)', () => {
    const pos = axisQuant(Math.fround(0), Math.fround(1000), Math.fround(0.0153));
    assert.deepEqual([pos.bits, pos.steps], [16, 65535]);
    assert.equal(quantizeAxis(pos, 500), 32768);
    assert.equal(quantizeAxis(pos, NaN), 0);
    assert.equal(quantizeAxis(pos, 1e9), 65535);
    const vel = axisQuant(-200, 200, Math.fround(1.575));
    assert.deepEqual([vel.bits, vel.steps], [8, 254]);
    assert.equal(quantizeAxis(vel, 0), 127);
    assert.equal(axisValue(vel, 127), 0);
    assert.equal(axisValue(vel, 0), -200);
    assert.equal(axisValue(vel, 254), 200);
    assert.equal(axisValue(vel, 255), 200);
    for (let i = -200; i <= 200; i++) {
      assert.ok(Math.abs(axisValue(vel, quantizeAxis(vel, i)) - i) <= 1.575 / 2 + 1e-3);
    }
  });

  test('angles wrap into 0..2π', () => {
    assert.equal(quantizeAngle(0, 8), 0);
    assert.equal(quantizeAngle(2 * Math.PI, 8), 0);
    assert.equal(quantizeAngle(-Math.PI / 2, 8), 192);
    assert.equal(quantizeAngle(Infinity, 8), 0);
    assert.equal(angleValue(64, 8), Math.fround(Math.PI / 2));
  });

  test('declaration mistakes are reported as schema.rs reports them', () => {
    const base = () => ({
      game: 'test',
      entities: [{ name: 'player', fields: [{ name: 'alive', owner_only: false, ty: { type: 'Bool' } }] }],
      lobby: [],
      private: [],
      input: [],
      messages: [],
      events: [],
    });
    const bad = (fields) => {
      const s = base();
      s.entities[0].fields = fields;
      try {
        validateSchema(s);
      } catch (e) {
        assert.ok(e instanceof SchemaError);
        return e.message;
      }
      return assert.fail('valid');
    };
    const f = (name, ty, owner_only = false) => ({ name, ty, owner_only });
    assert.match(bad([f('x', { type: 'F32', min: 1, max: 1, precision: 0.1 })]), /entity player, field x.*min must be below max/);
    assert.match(bad([f('x', { type: 'F32', min: 0, max: 1e9, precision: 1e-6 })]), /more than 32 bits/);
    assert.match(bad([f('a', { type: 'Bool' }), f('a', { type: 'Bool' })]), /duplicate field name "a"/);
    assert.match(bad([f('b', { type: 'Button' })]), /input only/);
    assert.match(bad([f('s', { type: 'Str', max_len: 0 })]), /must be 1 to 255/);
    assert.match(bad([f('e', { type: 'Enum', variants: [] })]), /0 variants/);
    assert.match(bad([f('bad name', { type: 'Bool' })]), /ASCII/);
    assert.match(bad([f('a', { type: 'Angle', bits: 0 })]), /1 to 32/);
    assert.match(bad([f('v', { type: 'VarUint', max: 0 })]), /entity player, field v.*max must be at least 1/);
    const s = base();
    s.lobby = [f('x', { type: 'Bool' }, true)];
    assert.throws(() => validateSchema(s), /owner_only/);
    const bytes = unhex(golden.arena.schema_hex);
    assert.throws(() => decodeSchema(Uint8Array.of(...bytes, 0)), /trailing bytes/);
    assert.throws(() => decodeSchema(bytes.subarray(0, bytes.length - 1)), SchemaError);
  });
});

describe('the JS snapshot encoder re-encodes the golden snapshots byte for byte', () => {
  const unit = (alive, health, level, throttle, pos, aim, team, name, target, ammo, kills) => ({
    alive,
    health,
    level,
    throttle,
    pos: { x: pos[0], y: pos[1] },
    aim,
    team,
    name,
    target,
    ammo,
    kills,
  });
  const marker = (x, y) => ({ at: { x, y } });

  test('every_type (the states of state_golden.rs), seat 2', async () => {
    const { buildState, encodeSnapshot } = await import('../src/state/encoder.js');
    const v = golden.every_type;
    const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);
    const tag = unhex(v.full.hex)[0];
    const a = buildState(codec, {
      tick: 1000,
      lobby: { phase: 1, time_left: 90 },
      private: new Map([
        [2, { coins: 12, hand: 'AK' }],
        [3, { coins: 99, hand: 'QQ' }],
      ]),
      entities: [
        { id: 1, kind: 'unit', controlledBy: 2, values: unit(true, 100, -3, 0.5, [250, 300], 1.0, 1, 'ada', 3, 30, 5) },
        { id: 2, kind: 'unit', controlledBy: 3, values: unit(true, 80, 7, -1.0, [900.5, 12.25], 3.5, 0, 'bob', 2, 11, 70) },
        { id: 7, kind: 'marker', values: marker(500, 300) },
        { id: 9, kind: 'marker', visibility: { only: 2 }, values: marker(10, 20) },
        { id: 10, kind: 'marker', visibility: { only: 3 }, values: marker(30, 40) },
      ],
    });
    const b = buildState(codec, {
      tick: 1001,
      lobby: { phase: 1, time_left: 89 },
      private: new Map([
        [2, { coins: 13, hand: 'AK' }],
        [3, { coins: 99, hand: 'QQ' }],
      ]),
      entities: [
        { id: 1, kind: 'unit', controlledBy: 2, values: unit(true, 100, -3, 0.5, [251, 300], 1.0, 1, 'ada', 3, 29, 9) },
        { id: 7, kind: 'marker', values: marker(500, 300) },
        { id: 9, kind: 'marker', visibility: { only: 2 }, values: marker(11, 20) },
        { id: 12, kind: 'unit', controlledBy: 4, values: unit(false, 0, 0, 0.0, [0, 600], 6.0, 2, 'Émile', 0, 5, 1000) },
      ],
    });
    assert.equal(hex(encodeSnapshot(codec, tag, null, a, v.seat, 41)), v.full.hex);
    assert.equal(hex(encodeSnapshot(codec, tag, a, b, v.seat, 42)), v.delta.hex);
  });

  test('arena, seat 1', async () => {
    const { buildState, encodeSnapshot } = await import('../src/state/encoder.js');
    const v = golden.arena;
    const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);
    const tag = unhex(v.full.hex)[0];
    const arena = (tick, players) =>
      buildState(codec, {
        tick,
        entities: players.map(([pos, vel, it, score], i) => ({
          id: i + 1,
          kind: 'player',
          controlledBy: i + 1,
          values: { pos: { x: pos[0], y: pos[1] }, vel: { x: vel[0], y: vel[1] }, it, score },
        })),
      });
    const a0 = arena(99, [
      [[500, 1000], [200, -200], true, 3],
      [[0, 4.5777], [0, 100.787], false, 12],
    ]);
    const a1 = arena(100, [
      [[493.3318, 1000], [200, -200], true, 3],
      [[0, 4.5777], [0, 100.787], false, 12],
    ]);
    assert.equal(hex(encodeSnapshot(codec, tag, null, a0, 1, 1234)), v.full.hex);
    assert.equal(hex(encodeSnapshot(codec, tag, a0, a1, 1, 1235)), v.delta.hex);
  });

  test('random worlds round trip through the encoder and ClientState', async () => {
    const { buildState, encodeSnapshot } = await import('../src/state/encoder.js');
    const v = golden.every_type;
    const codec = new Codec(decodeSchema(unhex(v.schema_hex)), v.max_players);
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const world = (tick) => {
      const entities = [];
      for (let id = 1; id <= 30; id++) {
        if (rnd() < 0.4) continue;
        const vis = rnd() < 0.7 ? 'everyone' : { only: 1 + Math.floor(rnd() * 3) };
        if (rnd() < 0.5) {
          entities.push({ id, kind: 'marker', visibility: vis, values: marker(rnd() * 1000, rnd() * 600) });
        } else {
          entities.push({
            id,
            kind: 'unit',
            controlledBy: Math.floor(rnd() * 4),
            visibility: vis,
            values: unit(rnd() < 0.5, Math.floor(rnd() * 101), -8 + Math.floor(rnd() * 16), rnd() * 2 - 1,
              [rnd() * 1000, rnd() * 600], rnd() * 7, Math.floor(rnd() * 3), rnd() < 0.5 ? 'x' : 'yz', Math.floor(rnd() * 9),
              Math.floor(rnd() * 31), Math.floor(rnd() * rnd() * 1200)),
          });
        }
      }
      return buildState(codec, {
        tick,
        lobby: { phase: Math.floor(rnd() * 3), time_left: Math.floor(rnd() * 600) },
        private: new Map([[2, { coins: Math.floor(rnd() * 256), hand: rnd() < 0.5 ? 'A' : '' }]]),
        entities,
      });
    };
    const client = new ClientState(codec, 2, 64);
    let prev = null;
    for (let t = 1; t <= 40; t++) {
      const s = world(t);
      client.apply(encodeSnapshot(codec, 64, prev, s, 2, t));
      // What seat 2 may see, and only that.
      const visible = s.entities.filter((e) => sees(e.visibility, 2));
      assert.deepEqual([...client.entities.keys()].sort((x, y) => x - y), visible.map((e) => e.id), `tick ${t}`);
      for (const e of visible) {
        const row = codec.kinds[e.kind];
        const got = client.entities.get(e.id);
        const fields = row.values(e.row);
        if (e.controlledBy !== 2) for (const f of row.fields) if (f.ownerOnly) fields[f.name] = row.fieldValue(row.index.get(f.name), row.zero());
        assert.deepEqual(row.values(got.row), fields, `tick ${t} entity ${e.id}`);
        assert.equal(got.controlledBy, e.controlledBy);
      }
      assert.deepEqual(client.privateValues(), codec.private.values(s.private.get(2)));
      assert.deepEqual(client.lobbyValues(), codec.lobby.values(s.lobby));
      prev = s;
    }
  });
});

function sees(visibility, seat) {
  if (visibility === 'everyone') return true;
  return visibility.only === seat;
}
