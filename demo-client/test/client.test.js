// The client without a browser: the session state, the lobby flow and the netcode of
// GameClient over a fake WebSocket and fake timers, the link conditioner, and the helpers.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { CodecError, PROTOCOL_VERSION, positionValue } from '../src/codec.js';
import { ConnState, describeClose } from '../src/client.js';
import { LinkConditioner, conditionerSettings } from '../src/conditioner.js';
import { serverUrl } from '../src/connection.js';
import { directionOf, joystickDirection } from '../src/input.js';
import { Phase, Session } from '../src/session.js';
import { FakeTime } from './support/fake-time.js';
import { harness, joined, welcome } from './support/harness.js';

const snapshot = {
  type: 'Snapshot',
  ack_seq: 3,
  tick: 100,
  baseline: 0,
  entities: [
    { id: 0, flags: 1, x: 65535, y: 0, vx: 127, vy: 0 },
    { id: 1, flags: 0, x: 32768, y: 13107, vx: 0, vy: -127 },
  ],
};

describe('Session', () => {
  test('tracks welcome, lobby, players, snapshots and scores', () => {
    const s = new Session();
    s.apply(welcome);
    assert.equal(s.phase, Phase.Lobbyless);
    assert.equal(s.tickRate, 30);
    s.apply(joined);
    assert.equal(s.phase, Phase.InLobby);
    assert.equal(s.myEntity, 1);
    s.apply(snapshot);
    const [a, b] = s.entities();
    assert.deepEqual(
      { id: a.id, name: a.name, x: a.x, y: a.y, vx: a.vx, it: a.it, me: a.me },
      { id: 0, name: 'bo', x: 1000, y: 0, vx: 200, it: true, me: false },
    );
    assert.equal(b.name, 'ada');
    assert.ok(b.me && !b.it);
    assert.ok(Math.abs(b.x - 500) < 0.01 && Math.abs(b.y - 200) < 0.01);
    assert.equal(b.vy, -200);

    // An older snapshot does not replace a newer one.
    s.apply({ ...snapshot, tick: 90, entities: [] });
    assert.equal(s.snapshot.tick, 100);

    s.apply({ type: 'PlayerJoined', entity: 3, player_id: 9, name: 'cy' });
    s.apply({ type: 'Scoreboard', entries: [{ entity: 0, score: 1 }, { entity: 1, score: 4 }, { entity: 3, score: 0 }] });
    assert.deepEqual(s.scoreboard().map((r) => [r.name, r.score, r.me]), [
      ['ada', 4, true],
      ['bo', 1, false],
      ['cy', 0, false],
    ]);
    s.apply({ type: 'PlayerLeft', entity: 3, player_id: 9 });
    assert.equal(s.players.size, 2);
    assert.equal(s.scoreboard().length, 2);

    s.apply({ type: 'Error', code: 5, message: 'lobby is full' });
    assert.deepEqual(s.lastError, { code: 5, name: 'LobbyFull', message: 'lobby is full' });
    s.apply({ type: 'Error', code: 999, message: '?' });
    assert.equal(s.lastError.name, 'Unknown');

    s.apply({ type: 'Left', reason: 1 });
    assert.equal(s.phase, Phase.Lobbyless);
    assert.equal(s.lobby, null);
    assert.equal(s.snapshot, null);
    assert.deepEqual(s.entities(), []);
    assert.equal(s.lastLeft.name, 'LobbyClosed');
  });
});

describe('GameClient: the lobby flow', () => {
  test('Hello, then the lobby list, refreshed every 2 s and no faster', () => {
    const h = harness();
    h.client.connect();
    assert.equal(h.ws.binaryType, 'arraybuffer');
    assert.equal(h.client.state, ConnState.Connecting);
    h.ws.open();
    assert.deepEqual(h.ws.sent[0], { type: 'Hello', protocol_version: PROTOCOL_VERSION, name: 'ada', resume_token: null });
    h.ws.deliver(welcome);
    assert.equal(h.client.state, ConnState.Online);
    h.time.advance(0);
    assert.equal(h.ws.ofType('ListLobbies').length, 1);
    h.ws.deliver({ type: 'LobbyList', lobbies: [{ id: 4, name: 'arena', players: 2, max_players: 8 }] });
    assert.equal(h.client.session.lobbies[0].name, 'arena');
    h.time.advance(6000);
    assert.equal(h.ws.ofType('ListLobbies').length, 4, 'at 0, 2, 4 and 6 s');
    // Nothing but pings and lists while in the browser (and the options asking for delta
    // snapshots): no inputs before a lobby.
    assert.deepEqual(h.ws.ofType('Options'), [{ type: 'Options', delta_snapshots: true }]);
    assert.deepEqual(new Set(h.ws.sent.slice(1).map((m) => m.type)), new Set(['Options', 'ListLobbies', 'Ping']));
  });

  test('one lobby request at a time; Joined starts one input per tick', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.time.advance(0);
    assert.equal(h.client.quickJoin(), true);
    assert.equal(h.client.busy, true);
    // A second click before the answer would arrive in a lobby: a protocol violation.
    assert.equal(h.client.quickJoin(), false);
    assert.equal(h.client.createLobby({ name: 'x', maxPlayers: 4, private: true }), false);
    assert.equal(h.ws.ofType('QuickJoin').length, 1);
    h.ws.deliver(joined);
    assert.equal(h.client.busy, false);
    assert.equal(h.client.inLobby, true);
    const before = h.ws.ofType('Input').length;
    h.time.advance(1000);
    const inputs = h.ws.ofType('Input');
    assert.ok(inputs.length - before >= 29 && inputs.length - before <= 31, `${inputs.length - before} inputs in 1 s`);
    assert.deepEqual(inputs.map((m) => m.seq), inputs.map((_, i) => i + 1));
    // No lobby list while playing.
    const lists = h.ws.ofType('ListLobbies').length;
    h.time.advance(5000);
    assert.equal(h.ws.ofType('ListLobbies').length, lists);
  });

  test('snapshots drive the prediction; the held direction moves the own entity at once', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.quickJoin();
    h.ws.deliver(joined);
    const seq = h.client.inputSeq;
    h.ws.deliver({ ...snapshot, ack_seq: seq, tick: 100 });
    h.client.frame(h.time.now());
    const view = h.client.frame(h.time.now() + 16);
    const me = view.entities.find((e) => e.me);
    assert.equal(me.name, 'ada');
    assert.ok(Math.abs(me.x - positionValue(32768, 1000)) < 1e-9);
    // Hold right: the next frame moves, before any input has been sent.
    h.dir = { x: 1, y: 0 };
    const moved = h.client.frame(h.time.now() + 32).entities.find((e) => e.me);
    assert.ok(moved.x > me.x + 3, `moved from ${me.x} to ${moved.x}`);
    // The input goes out at the next tick and the prediction follows it.
    h.time.advance(40);
    const last = h.ws.ofType('Input').at(-1);
    assert.equal(last.dir_x, 1);
    assert.ok(h.client.view.predicted === null || h.client.predictor.state.x > me.x);
  });

  test('delta snapshots are applied to the previous snapshot; one that does not fit turns them off', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.quickJoin();
    h.ws.deliver(joined);
    h.ws.deliver({ ...snapshot, tick: 100 });
    h.ws.deliver({
      type: 'SnapshotDelta',
      ack_seq: 4,
      tick: 101,
      baseline: 100,
      changes: [{ id: 1, dx: 437, dy: null, vx: 127, vy: 0, flags: null }],
    });
    assert.equal(h.client.session.snapshot.tick, 101);
    const e1 = h.client.session.snapshot.entities.find((e) => e.id === 1);
    assert.deepEqual(e1, { id: 1, flags: 0, x: 32768 + 437, y: 13107, vx: 127, vy: 0 });
    assert.equal(h.client.buffer.newestTick, 101);
    assert.equal(h.client.stats().deltaShare, 0.5);
    // A baseline the client does not have: ask for full snapshots, say so once.
    h.ws.deliver({ type: 'SnapshotDelta', ack_seq: 5, tick: 103, baseline: 102, changes: [] });
    assert.equal(h.client.session.snapshot.tick, 101);
    assert.deepEqual(h.ws.sent.at(-1), { type: 'Options', delta_snapshots: false });
    assert.equal(h.events.filter((e) => e.kind === 'error').length, 1);
  });

  test('?delta=0: no Options, full snapshots', () => {
    const h = harness({ deltaSnapshots: false });
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    assert.equal(h.ws.ofType('Options').length, 0);
  });

  test('errors answer the pending request; Leave goes back to the list', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.joinCode('ABCDE-FGHJK');
    assert.deepEqual(h.ws.ofType('JoinLobby')[0].target, { type: 'Code', value: 'ABCDE-FGHJK' });
    h.ws.deliver({ type: 'Error', code: 4, message: 'no such lobby' });
    assert.equal(h.client.busy, false);
    assert.deepEqual(h.events.at(-1), { kind: 'error', text: 'No such lobby' });
    h.client.joinLobby(2);
    h.ws.deliver(joined);
    h.ws.deliver({ type: 'Notice', text: 'restart in 5 minutes' });
    assert.deepEqual(h.events.at(-1), { kind: 'notice', text: 'restart in 5 minutes' });
    h.client.leaveLobby();
    assert.equal(h.ws.sent.at(-1).type, 'LeaveLobby');
    assert.equal(h.client.inLobby, false);
    const inputs = h.ws.ofType('Input').length;
    h.time.advance(2500);
    assert.equal(h.ws.ofType('Input').length, inputs, 'no inputs after leaving');
    assert.ok(h.ws.ofType('ListLobbies').length >= 1);
    h.ws.deliver({ type: 'Left', reason: 0 });
    assert.equal(h.client.inLobby, false);
  });

  test('a lobby that closes under the player sends it back to the list with a message', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.quickJoin();
    h.ws.deliver(joined);
    h.ws.deliver({ type: 'Error', code: 12, message: 'the game crashed; the lobby is closed' });
    h.ws.deliver({ type: 'Left', reason: 2 });
    assert.equal(h.client.inLobby, false);
    assert.equal(h.client.state, ConnState.Online);
    assert.deepEqual(h.events.at(-1), { kind: 'left', text: 'The lobby crashed and is gone.' });
  });

  test('a new name starts a new session, then does what was asked', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    const first = h.ws;
    h.client.setName('grace');
    h.client.quickJoin();
    assert.notEqual(h.ws, first, 'a new connection');
    assert.equal(first.closedBy.code, 1000);
    h.ws.open();
    assert.equal(h.ws.sent[0].name, 'grace');
    assert.equal(h.ws.sent[0].resume_token, null);
    h.ws.deliver({ ...welcome, player_id: 8 });
    assert.equal(h.ws.ofType('QuickJoin').length, 1);
  });

  test('pings measure the round trip', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    const ping = h.ws.ofType('Ping')[0];
    h.time.advance(12);
    h.ws.deliver({ type: 'Pong', client_time: ping.client_time, server_tick: 0 });
    assert.equal(h.client.session.rttMs, 12);
    h.time.advance(2000);
    assert.ok(h.ws.ofType('Ping').length >= 4, 'every 500 ms');
  });

  test('an undecodable server message closes the connection', () => {
    const h = harness({ autoReconnect: false });
    h.client.connect();
    h.ws.open();
    h.ws.onmessage({ data: Uint8Array.of(200).buffer });
    assert.equal(h.ws.readyState, 3);
    assert.equal(h.events[0].kind, 'error');
    assert.match(h.events[0].text, /Undecodable/);
  });

  test('an invalid outgoing message throws CodecError', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    assert.throws(() => h.client.send({ type: 'Input', seq: -1, dir_x: 0, dir_y: 0, buttons: 0 }), CodecError);
  });
});

describe('the link conditioner', () => {
  test('settings from the page parameters', () => {
    assert.equal(conditionerSettings(''), null);
    assert.deepEqual(conditionerSettings('?lag=150&jitter=30'), { lagMs: 150, jitterMs: 30 });
    assert.deepEqual(conditionerSettings('?lag=20&jitter=500'), { lagMs: 20, jitterMs: 20 });
    assert.equal(conditionerSettings('?lag=abc'), null);
  });

  test('delays each direction by lag ± jitter and keeps the order', () => {
    const time = new FakeTime(0);
    let r = 0;
    const randoms = [0.9, 0.1, 0.5, 0.0, 1.0, 0.2];
    const c = new LinkConditioner({
      lagMs: 100,
      jitterMs: 30,
      random: () => randoms[r++ % randoms.length],
      now: time.now,
      setTimeout: time.setTimeout,
      clearTimeout: time.clearTimeout,
    });
    const got = [];
    for (let i = 0; i < 6; i++) {
      c.delay('in', () => got.push({ i, at: time.now() }));
      time.advance(5);
    }
    time.advance(200);
    assert.deepEqual(got.map((g) => g.i), [0, 1, 2, 3, 4, 5], 'in order');
    for (const g of got) assert.ok(g.at >= g.i * 5 + 70 && g.at <= g.i * 5 + 131, JSON.stringify(g));
    // A message is never delivered before the one ahead of it, even with less jitter.
    assert.ok(got[1].at >= got[0].at);
  });

  test('the client: messages and the close come late, in order; inputs wait too', () => {
    const h = harness({ conditioner: { lagMs: 150, jitterMs: 0 } });
    h.client.connect();
    h.ws.open();
    assert.equal(h.ws.sent.length, 0, 'Hello is on its way');
    h.time.advance(150);
    assert.equal(h.ws.sent[0].type, 'Hello');
    h.ws.deliver(welcome);
    assert.equal(h.client.state, ConnState.Connecting);
    h.time.advance(150);
    assert.equal(h.client.state, ConnState.Online);
    h.ws.drop(1006);
    assert.equal(h.client.state, ConnState.Online, 'the close is delayed like a message');
    h.time.advance(150);
    assert.equal(h.client.state, ConnState.Reconnecting);
  });
});

describe('helpers', () => {
  test('directionOf normalizes diagonals', () => {
    assert.deepEqual(directionOf(new Set()), { x: 0, y: 0 });
    assert.deepEqual(directionOf(new Set(['left', 'right'])), { x: 0, y: 0 });
    assert.deepEqual(directionOf(new Set(['up'])), { x: 0, y: -1 });
    const d = directionOf(new Set(['down', 'right']));
    assert.ok(Math.abs(Math.hypot(d.x, d.y) - 1) < 1e-12);
    assert.ok(d.x > 0 && d.y > 0);
  });

  test('joystickDirection: dead zone, proportional, capped at 1', () => {
    const o = { x: 100, y: 100 };
    assert.deepEqual(joystickDirection(o, { x: 105, y: 100 }, 56), { x: 0, y: 0 });
    assert.deepEqual(joystickDirection(o, { x: 128, y: 100 }, 56), { x: 0.5, y: 0 });
    const far = joystickDirection(o, { x: 400, y: 500 }, 56);
    assert.ok(Math.abs(Math.hypot(far.x, far.y) - 1) < 1e-12);
  });

  test('serverUrl', () => {
    const loc = (href) => new URL(href);
    assert.equal(serverUrl(loc('http://localhost:8080/')), 'ws://localhost:8080/ws');
    assert.equal(serverUrl(loc('https://game.example/index.html')), 'wss://game.example/ws');
    assert.equal(serverUrl(loc('http://a/?server=127.0.0.1:9000')), 'ws://127.0.0.1:9000/ws');
    assert.equal(serverUrl(loc('http://a/?server=wss://b/x')), 'wss://b/x');
    assert.equal(serverUrl(loc('http://a:1/?token=1700000000.ab12')), 'ws://a:1/ws?token=1700000000.ab12');
  });

  test('describeClose', () => {
    assert.equal(describeClose({ code: 1001, reason: '' }), 'Disconnected: 1001 going away');
    assert.equal(describeClose({ code: 1006, reason: '' }), 'Disconnected: 1006 connection lost');
    assert.equal(describeClose({ code: 4001, reason: 'v2' }), 'Disconnected: 4001 version mismatch (v2)');
  });
});
