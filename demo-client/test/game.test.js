// The generic game path (game.js) for a game the client has no module for: event lines
// with player names, actions for message types without fields, join options, and the
// page's title from GET /api/game before joining.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultActions, describeGeneric, gameInfoUrl, parseOptions, serverGameTitle } from '../src/game.js';
import { gameModule } from '../src/games/index.js';
import { kindColour } from '../src/render.js';

// The parts of a compiled schema (state/codec.js Codec) these read: the coins example's.
const coins = {
  messages: [
    { name: 'Drop', fields: [] },
    { name: 'Chat', fields: [{ name: 'text', type: 'Str' }] },
  ],
  events: [{ name: 'Collected', fields: [{ name: 'by', type: 'Player' }] }],
};

test('an event of an unknown game names its player fields', () => {
  const names = new Map([[1, 'ann']]);
  const line = describeGeneric(coins, { type: 'Collected', values: { by: 1 } }, (s) => names.get(s));
  assert.equal(line, 'Collected: by ann');
  assert.equal(describeGeneric(coins, { type: 'Other', values: { n: 3, at: { x: 1, y: 2 } } }), 'Other: n 3, at {"x":1,"y":2}');
  assert.equal(describeGeneric(coins, { type: 'Ping', values: {} }), 'Ping');
});

test('messages without fields become actions on the digit keys', () => {
  assert.deepEqual(defaultActions(coins), [{ message: 'Drop', label: 'Drop', key: 'Digit1' }]);
  assert.deepEqual(defaultActions({ messages: [] }), []);
  const many = { messages: Array.from({ length: 12 }, (_, i) => ({ name: `m_${i}`, fields: [] })) };
  const actions = defaultActions(many);
  assert.equal(actions.length, 9);
  assert.deepEqual(actions[8], { message: 'm_8', label: 'm 8', key: 'Digit9' });
});

test('join options parse from key=value pairs', () => {
  assert.deepEqual(parseOptions(' password = gold, team=red ,solo,, '), [
    ['password', 'gold'],
    ['team', 'red'],
    ['solo', ''],
  ]);
  assert.deepEqual(parseOptions(''), []);
  assert.deepEqual(parseOptions(undefined), []);
});

test('the server is asked which game it runs at /api/game of its own host', () => {
  assert.equal(gameInfoUrl('ws://127.0.0.1:8080/ws?token=abc'), 'http://127.0.0.1:8080/api/game');
  assert.equal(gameInfoUrl('wss://play.example/ws'), 'https://play.example/api/game');
  assert.equal(gameInfoUrl('ws://127.0.0.1:8080/ws', 'http://127.0.0.1:8080'), 'http://127.0.0.1:8080/api/game');
  // Another node (?server=): asked at the page's own origin, the only one it may fetch.
  assert.equal(gameInfoUrl('ws://127.0.0.1:9090/ws', 'http://127.0.0.1:8080'), 'http://127.0.0.1:8080/api/game');
});

test("the lobby screen's title: the module's, else the server's, else the name", () => {
  assert.equal(serverGameTitle({ game: 'coins', title: 'Coins' }, gameModule('coins')), 'Coins');
  assert.equal(serverGameTitle({ game: 'hill', title: 'Hill' }, gameModule('hill')), 'King of the hill');
  assert.equal(serverGameTitle({ game: 'x_y' }, null), 'x_y');
  assert.equal(serverGameTitle(null, null), null);
  assert.equal(serverGameTitle({ nope: 1 }, null), null);
});

test('entities nobody controls are coloured by kind', () => {
  assert.notEqual(kindColour(0), kindColour(1));
  assert.equal(kindColour(8), kindColour(0));
});

// The guide's JavaScript prediction module for coins (docs/GAME_GUIDE.md, the block after
// `<!-- coins.js -->`), run against the Rust game's own positions: the page's code is
// the rule the server runs, to the last bit of f32.
test("the guide's coins prediction module matches the Rust game tick by tick", async () => {
  const { readFileSync } = await import('node:fs');
  const guide = readFileSync(new URL('../../docs/GAME_GUIDE.md', import.meta.url), 'utf8');
  const open = '<!-- coins.js -->\n```js\n';
  const at = guide.indexOf(open);
  assert.ok(at >= 0, 'the guide has the coins.js block');
  const body = guide.slice(at + open.length, guide.indexOf('\n```\n', at + open.length));
  const prediction = new URL('../src/prediction.js', import.meta.url).href;
  const source = body.replace("'../prediction.js'", JSON.stringify(prediction));
  assert.notEqual(source, body, 'the block imports prediction.js');
  const module = await import(`data:text/javascript,${encodeURIComponent(source)}`);
  const game = module.default;
  assert.equal(game.name, 'coins');
  const golden = JSON.parse(readFileSync(new URL('../../server/examples/coins/prediction.json', import.meta.url), 'utf8'));
  assert.ok(golden.cases.length >= 5);
  for (const c of golden.cases) {
    let state = { pos: { x: Math.fround(c.start[0]), y: Math.fround(c.start[1]) }, vel: { x: 0, y: 0 } };
    c.inputs.forEach(([x, y], i) => {
      state = game.predict(state, { dir: { x, y } }, golden.dt);
      const [ex, ey] = c.positions[i];
      assert.deepEqual([state.pos.x, state.pos.y], [Math.fround(ex), Math.fround(ey)], `${c.name}, tick ${i + 1}`);
    });
  }
});
