// Entity interpolation and the tick clock, driven by synthetic snapshot streams: steady,
// jittery (in order, as over one TCP stream), with a dropped snapshot, and stalled. The
// entities are the golden arena schema's players (protocol/golden/state_vectors.json),
// interpolated by their declared field types, extrapolated as games/arena.js says.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { TickClock, quantile } from '../src/clock.js';
import { resolveGame } from '../src/game.js';
import arena from '../src/games/arena.js';
import { SnapshotBuffer, fieldMixer, lerpAngle } from '../src/interpolation.js';
import { Codec } from '../src/state/codec.js';

const golden = JSON.parse(readFileSync(new URL('../../protocol/golden/state_vectors.json', import.meta.url), 'utf8'));
const codec = new Codec(golden.arena.schema, 16);
const game = resolveGame(arena, codec);
const newBuffer = (options = {}) => new SnapshotBuffer({ mix: fieldMixer(codec), extrapolate: game.extrapolate, ...options });
const player = (id, x, y, vx, vy, it = false) => ({
  id,
  kind: 0,
  controlledBy: id,
  values: { pos: { x, y }, vel: { x: vx, y: vy }, it },
});

const RATE = 30;
const PERIOD = 1000 / RATE;
const DT = 1 / RATE;

// The server publishes tick n at BASE + n * PERIOD (local ms); entity 1 moves along x at
// 90 units/s, entity 2 stands still.
const BASE = 1234.5;
const SPEED = 90;
const xAt = (tick) => 100 + SPEED * DT * tick;
const snapshot = (tick) => [player(1, xAt(tick), 200, SPEED, 0), player(2, 500, 500, 0, 0, true)];

function lcg(seed) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

/**
 * Plays a stream through a TickClock and a SnapshotBuffer with frames at `fps`; returns
 * a frame log [{t, renderTick, newest, mode, x}].
 */
function play({
  ticks = 180,
  downMs = 40,
  jitterMs = 0,
  drop = () => false,
  stopAfter = Infinity,
  fps = 60,
  seed = 1,
  pongs = false,
}) {
  const random = lcg(seed);
  const clock = new TickClock({ tickRate: RATE });
  const buffer = newBuffer();
  const arrivals = [];
  let last = -Infinity;
  for (let n = 1; n <= ticks; n++) {
    if (drop(n) || n > stopAfter) continue;
    const at = Math.max(BASE + n * PERIOD + downMs + (random() * 2 - 1) * jitterMs, last);
    last = at;
    arrivals.push({ at, n });
  }
  const frames = [];
  const end = BASE + (ticks + 10) * PERIOD;
  let next = 0;
  let nextPing = BASE;
  for (let t = BASE; t < end; t += 1000 / fps) {
    while (next < arrivals.length && arrivals[next].at <= t) {
      const { at, n } = arrivals[next++];
      clock.onSnapshot(n, at);
      buffer.push(n, snapshot(n));
    }
    if (pongs && t >= nextPing) {
      // A Ping leaving at t, answered downMs later with, as the server does, the tick
      // number of the next snapshot (the one published then + 1).
      const answeredAt = t + downMs;
      const tick = Math.floor((answeredAt - BASE) / PERIOD);
      if (tick > 0) clock.onPong(t, t + 2 * downMs, tick + 1);
      nextPing = t + 500 + random() * 40;
    }
    const renderTick = clock.renderTick(t, buffer.newestTick);
    if (renderTick === null) continue;
    const s = buffer.sample(renderTick, DT);
    buffer.discardBefore(renderTick - 1);
    const e1 = s.entities.find((e) => e.id === 1);
    frames.push({ t, renderTick, newest: buffer.newestTick, mode: s.mode, x: e1?.values.pos.x, entities: s.entities });
  }
  return { frames, clock, buffer };
}

const settled = (frames) => frames.filter((f) => f.t > BASE + 40 * PERIOD && f.newest < 170);

describe('interpolation on a steady stream', () => {
  const { frames, clock } = play({});

  test('renders about two ticks behind the newest snapshot, always between two', () => {
    const f = settled(frames);
    assert.ok(f.length > 200);
    for (const frame of f) {
      assert.equal(frame.mode, 'interpolate', `at ${frame.t}`);
      const behind = frame.newest - frame.renderTick;
      assert.ok(behind >= 1 && behind <= 3.05, `render tick ${behind} behind`);
    }
    assert.equal(clock.stats.delayTicks, 2);
  });

  test('the remote entity moves at its speed, frame after frame (no stutter)', () => {
    const f = settled(frames);
    for (let i = 1; i < f.length; i++) {
      const v = (f[i].x - f[i - 1].x) / ((f[i].t - f[i - 1].t) / 1000);
      assert.ok(Math.abs(v - SPEED) < 1, `speed ${v} at ${f[i].t}`);
    }
  });

  test('the render tick advances with time, never backwards', () => {
    for (let i = 1; i < frames.length; i++) assert.ok(frames[i].renderTick >= frames[i - 1].renderTick);
  });
});

describe('interpolation with jitter', () => {
  const { frames, clock } = play({ jitterMs: 60, ticks: 300, seed: 3 });

  test('the delay grows to cover the jitter', () => {
    const target = clock.stats.delayTicks;
    assert.ok(target > 2.2 && target < 5, `target delay ${target} ticks`);
    assert.ok(clock.stats.spreadTicks > 0.5, `spread ${clock.stats.spreadTicks}`);
  });

  test('still interpolating nearly always, and smooth', () => {
    const f = frames.filter((x) => x.t > BASE + 80 * PERIOD && x.newest < 290);
    const interpolating = f.filter((x) => x.mode === 'interpolate').length;
    assert.ok(interpolating / f.length > 0.97, `${interpolating} of ${f.length} frames interpolate`);
    const speeds = [];
    for (let i = 1; i < f.length; i++) {
      const v = (f[i].x - f[i - 1].x) / ((f[i].t - f[i - 1].t) / 1000);
      assert.ok(v >= 0, 'never backwards');
      speeds.push(v);
    }
    speeds.sort((a, b) => a - b);
    // The clock warps by at most 10%, so the entity's speed stays within 10% of the truth.
    assert.ok(quantile(speeds, 0.01) > SPEED * 0.88 && quantile(speeds, 0.99) < SPEED * 1.12, 'speed within the warp');
  });
});

describe('a dropped snapshot', () => {
  test('is bridged by interpolating across the gap', () => {
    const { frames } = play({ drop: (n) => n === 60 });
    const across = frames.filter((f) => f.renderTick > 59 && f.renderTick < 61);
    assert.ok(across.length > 3);
    for (const f of across) {
      assert.equal(f.mode, 'interpolate');
      // Motion is linear, so interpolating 59 -> 61 is exact.
      assert.ok(Math.abs(f.x - xAt(f.renderTick)) < 1e-6, `x ${f.x} at tick ${f.renderTick}`);
    }
  });

  test('two in a row: a short extrapolation along the velocity, no jump', () => {
    const { frames } = play({ drop: (n) => n === 60 || n === 61 });
    const across = frames.filter((f) => f.renderTick > 59 && f.renderTick < 62);
    assert.ok(across.some((f) => f.mode === 'extrapolate'));
    for (const f of across) assert.ok(Math.abs(f.x - xAt(f.renderTick)) < 1e-6, `x ${f.x} at tick ${f.renderTick}`);
  });
});

describe('a stalled stream', () => {
  const { frames } = play({ stopAfter: 90, ticks: 150 });

  test('extrapolates at most a tick along the velocity, then holds', () => {
    const after = frames.filter((f) => f.t > BASE + 100 * PERIOD);
    assert.ok(after.length > 50);
    for (const f of after) {
      assert.equal(f.newest, 90);
      assert.ok(f.renderTick <= 91 + 1e-9, `render tick ${f.renderTick}`);
      assert.ok(f.x <= xAt(91) + 1e-6, `x ${f.x} beyond one tick of extrapolation`);
    }
    assert.ok(after.some((f) => f.mode === 'extrapolate' || f.mode === 'hold'));
  });
});

describe('underruns', () => {
  test('a late burst makes the render tick wait half a tick longer, for a while', () => {
    // Snapshots 61-66 are held back for 150 ms (a busy main thread), then come at once.
    const late = (n) => n >= 61 && n <= 66;
    const clock = new TickClock({ tickRate: RATE });
    const arrivals = [];
    for (let n = 1; n <= 240; n++) arrivals.push({ n, at: BASE + n * PERIOD + 20 + (late(n) ? 150 - (n - 61) * PERIOD : 0) });
    arrivals.sort((x, y) => x.at - y.at);
    let next = 0;
    let newest = null;
    const delays = [];
    for (let t = BASE; t < BASE + 240 * PERIOD; t += 1000 / 60) {
      while (next < arrivals.length && arrivals[next].at <= t) {
        clock.onSnapshot(arrivals[next].n, arrivals[next].at);
        newest = Math.max(newest ?? 0, arrivals[next++].n);
      }
      clock.renderTick(t, newest);
      delays.push({ t, delay: clock.delay() });
    }
    assert.equal(clock.stats.underruns, 1);
    const before = delays.find((d) => d.t > BASE + 50 * PERIOD).delay;
    const after = delays.find((d) => d.t > BASE + 80 * PERIOD).delay;
    const end = delays.at(-1).delay;
    assert.ok(after >= before + 0.4, `delay ${before} -> ${after}`);
    assert.ok(end < after && end > before, `fading: ${end}`);
  });
});

describe('SnapshotBuffer', () => {
  test('entities appear when the render tick reaches them and vanish after they left', () => {
    const b = newBuffer();
    b.push(10, [player(1, 0, 0, 0, 0)]);
    b.push(11, [player(1, 10, 0, 0, 0, true), player(2, 50, 50, 0, 0)]);
    b.push(12, [player(2, 60, 50, 0, 0)]);
    const ids = (tick) => b.sample(tick, DT).entities.map((e) => e.id).sort();
    assert.deepEqual(ids(10.5), [1]);
    assert.equal(b.sample(10.5, DT).entities[0].values.pos.x, 5);
    // A Bool snaps: the earlier snapshot's value until the later one is reached.
    assert.equal(b.sample(10.9, DT).entities[0].values.it, false);
    assert.equal(b.sample(11, DT).entities.find((e) => e.id === 1).values.it, true);
    assert.deepEqual(ids(11.5), [1, 2]);
    assert.deepEqual(ids(12), [2]);
  });

  test('keeps ticks in order, ignores duplicates, and forgets what is no longer needed', () => {
    const b = new SnapshotBuffer({ capacity: 4 });
    assert.equal(b.sample(5, DT).mode, 'empty');
    assert.equal(b.push(5, []), true);
    assert.equal(b.push(7, []), true);
    assert.equal(b.push(6, []), true);
    assert.equal(b.push(6, []), false);
    assert.deepEqual(b.snapshots.map((s) => s.tick), [5, 6, 7]);
    b.push(8, []);
    b.push(9, []);
    assert.deepEqual(b.snapshots.map((s) => s.tick), [6, 7, 8, 9]);
    b.discardBefore(8.5);
    assert.deepEqual(b.snapshots.map((s) => s.tick), [8, 9]);
    assert.equal(b.sample(7, DT).mode, 'early');
  });

  test('extrapolation is capped and clamped to the world', () => {
    const b = newBuffer({ maxExtrapolationTicks: 3 });
    b.push(1, [player(1, 990, 0, 200, 0)]);
    assert.equal(b.sample(1.5, DT).entities[0].values.pos.x, 993.3333333333334);
    // Three ticks would take it to 1010: the schema's position range ends at 1000.
    assert.equal(b.sample(100, DT).entities[0].values.pos.x, 1000);
    assert.equal(b.sample(100, DT).mode, 'hold');
    // Without an extrapolation rule (a game that declares none), entities hold still.
    const still = new SnapshotBuffer({ mix: fieldMixer(codec) });
    still.push(1, [player(1, 500, 0, 200, 0)]);
    assert.equal(still.sample(2, DT).entities[0].values.pos.x, 500);
  });

  test('field types decide: Vec2 and F32 lerp, angles take the shorter arc, the rest snaps', () => {
    const schema = golden.every_type.schema;
    const c = new Codec(schema, 8);
    const mix = fieldMixer(c);
    const a = { alive: true, health: 100, level: 1, throttle: 0, pos: { x: 0, y: 0 }, aim: 6.0, team: 0, name: 'a', target: 1, ammo: 3, kills: 4 };
    const b = { alive: false, health: 50, level: 2, throttle: 1, pos: { x: 10, y: 20 }, aim: 0.5, team: 2, name: 'b', target: 2, ammo: 1, kills: 9 };
    const m = mix(0, a, b, 0.5);
    assert.deepEqual(m.pos, { x: 5, y: 10 });
    assert.equal(m.throttle, 0.5);
    // 6.0 to 0.5 the short way crosses 2π: halfway is about 6.39 - 2π = 0.108.
    assert.ok(Math.abs(m.aim - lerpAngle(6.0, 0.5, 0.5)) < 1e-12);
    assert.ok(Math.abs(m.aim - ((6.0 + 0.5 + 2 * Math.PI) / 2 - 2 * Math.PI)) < 1e-9, String(m.aim));
    // kills is a VarUint: an integer, so it snaps too.
    for (const k of ['alive', 'health', 'level', 'team', 'name', 'target', 'ammo', 'kills']) assert.equal(m[k], a[k], k);
  });
});

describe('the server clock', () => {
  test('from snapshots alone it is a lower bound: the arrival', () => {
    const { clock } = play({ downMs: 0, ticks: 60 });
    const t = BASE + 61.25 * PERIOD;
    assert.ok(Math.abs(clock.serverTick(t) - 61.25) < 0.05, `server tick ${clock.serverTick(t)}`);
  });

  test('Pongs bound it from above: with a symmetric 50 ms link it is found within a fifth of a tick', () => {
    const { clock } = play({ downMs: 50, ticks: 240, pongs: true, seed: 5 });
    const t = BASE + 250.5 * PERIOD;
    const estimate = clock.serverTick(t);
    assert.ok(Math.abs(estimate - 250.5) < 0.2, `server tick ${estimate}, truly 250.5`);
    // Half the bounds' width is the one-way delay: 50 ms = 1.5 ticks.
    const up = clock.upstreamTicks();
    assert.ok(Math.abs(up - 1.5) < 0.25, `upstream ${up} ticks`);
    const down = clock.latencyMs(t);
    assert.ok(Math.abs(down - 50) < 10, `downstream ${down} ms`);
  });

  test('the input phase error says where an input would land in the server tick', () => {
    const clock = new TickClock({ tickRate: RATE });
    // Loopback: snapshots arrive as published, Pongs bound the clock tightly.
    for (let n = 1; n <= 30; n++) clock.onSnapshot(n, BASE + n * PERIOD + 0.1);
    for (let i = 0; i < 16; i++) {
      const sent = BASE + 31 * PERIOD + i * 97.3;
      const published = Math.floor((sent + 0.2 - BASE) / PERIOD);
      clock.onPong(sent, sent + 0.4, published + 1);
    }
    const err = clock.inputPhaseError(BASE + 40.5 * PERIOD);
    assert.ok(Math.abs(err) < 0.1, `mid-tick send: phase error ${err}`);
    const late = clock.inputPhaseError(BASE + 40.9 * PERIOD);
    assert.ok(late > 0.3, `late send: phase error ${late}`);
  });
});
