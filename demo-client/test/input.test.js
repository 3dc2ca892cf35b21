// The controls and the input built from a game's declaration: keys and buttons on a
// plain EventTarget (no DOM needed), a tap between two input samples still counted by
// the button's press counter, and buildInput mapping controls to the input's fields.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { buildInput, defaultControls } from '../src/game.js';
import { Controls } from '../src/input.js';
import { Codec } from '../src/state/codec.js';

const key = (type, code, extra = {}) => Object.assign(new Event(type, { cancelable: true }), { code, ...extra });

const f = (name, ty) => ({ name, owner_only: false, ty });
const shooterLike = {
  game: 'shooter',
  entities: [],
  lobby: [],
  private: [],
  input: [
    f('dir', { type: 'Vec2', min_x: -1, max_x: 1, min_y: -1, max_y: 1, precision: Math.fround(0.01) }),
    f('aim', { type: 'Angle', bits: 12 }),
    f('fire', { type: 'Button' }),
    f('reload', { type: 'Button' }),
  ],
  messages: [],
  events: [],
};

describe('Controls', () => {
  test('a button pressed and released between two samples is one more press', () => {
    const keys = new EventTarget();
    const c = new Controls({ keyTarget: keys });
    assert.deepEqual(c.button('primary'), { held: false, presses: 0 });
    keys.dispatchEvent(key('keydown', 'Space'));
    keys.dispatchEvent(key('keyup', 'Space'));
    assert.deepEqual(c.button('primary'), { held: false, presses: 1 });
    // Key repeat is not a press; holding is.
    keys.dispatchEvent(key('keydown', 'Space'));
    keys.dispatchEvent(key('keydown', 'Space', { repeat: true }));
    assert.deepEqual(c.button('primary'), { held: true, presses: 2 });
    keys.dispatchEvent(key('keyup', 'Space'));
    // The counter wraps at 16 (4 bits on the wire).
    for (let i = 0; i < 15; i++) c.press('primary');
    assert.equal(c.button('primary').presses, 1);
    keys.dispatchEvent(key('keydown', 'KeyR'));
    assert.deepEqual(c.button('secondary'), { held: true, presses: 1 });
    c.release();
    assert.deepEqual(c.button('secondary'), { held: false, presses: 1 }, 'released, presses kept');
  });

  test('a direction key tapped between two samples still moves for one input', () => {
    const keys = new EventTarget();
    const c = new Controls({ keyTarget: keys });
    keys.dispatchEvent(key('keydown', 'KeyD'));
    keys.dispatchEvent(key('keyup', 'KeyD'));
    assert.deepEqual(c.direction(), { x: 0, y: 0 });
    assert.deepEqual(c.sample(), { x: 1, y: 0 });
    assert.deepEqual(c.sample(), { x: 0, y: 0 });
  });

  test('nothing is pressed while the controls are disabled (not in a game)', () => {
    const keys = new EventTarget();
    const c = new Controls({ keyTarget: keys, enabled: () => false });
    keys.dispatchEvent(key('keydown', 'Space'));
    keys.dispatchEvent(key('keydown', 'KeyW'));
    assert.equal(c.button('primary').presses, 0);
    assert.deepEqual(c.sample(), { x: 0, y: 0 });
  });
});

describe('inputs from the declaration', () => {
  const codec = new Codec(shooterLike, 8);

  test('by default: the first Vec2 moves, the first Angle aims, buttons are primary then secondary', () => {
    assert.deepEqual(defaultControls(codec.input), { dir: 'move', aim: 'aim', fire: 'primary', reload: 'secondary' });
  });

  test('the values sent, and what the server reads of them', () => {
    const keys = new EventTarget();
    const c = new Controls({ keyTarget: keys });
    keys.dispatchEvent(key('keydown', 'KeyW'));
    keys.dispatchEvent(key('keydown', 'KeyD'));
    keys.dispatchEvent(key('keydown', 'Space'));
    keys.dispatchEvent(key('keyup', 'Space'));
    const values = buildInput(codec.input, defaultControls(codec.input), c, { aim: Math.PI / 2 });
    assert.ok(Math.abs(values.dir.x - Math.SQRT1_2) < 1e-6 && Math.abs(values.dir.y + Math.SQRT1_2) < 1e-6);
    assert.deepEqual(values.fire, { held: false, presses: 1 });
    assert.deepEqual(values.reload, { held: false, presses: 0 });
    const read = codec.input.values(codec.input.fromValues(values));
    assert.equal(read.aim, Math.fround(Math.PI / 2));
    assert.deepEqual(read.fire, { held: false, presses: 1 });
    assert.ok(Math.abs(read.dir.x - 0.71) < 0.006, String(read.dir.x));
    // No aim known (the pointer is away): the last one is kept.
    assert.equal(buildInput(codec.input, defaultControls(codec.input), c, { lastAim: 1.5 }).aim, 1.5);
  });
});
