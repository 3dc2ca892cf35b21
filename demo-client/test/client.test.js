// The client without a browser: the session state, the lobby flow and the netcode of
// GameClient over a fake WebSocket and fake timers, the link conditioner, and the helpers.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { ClientFrameTag, CodecError, PROTOCOL_VERSION, ServerFrameTag } from '../src/codec.js';
import { ConnState, describeClose } from '../src/client.js';
import { LinkConditioner, conditionerSettings } from '../src/conditioner.js';
import { serverUrl } from '../src/connection.js';
import { directionOf, joystickDirection } from '../src/input.js';
import { Phase, Session } from '../src/session.js';
import { FakeTime } from './support/fake-time.js';
import { arenaSchema, codec, harness, joined, player, welcome } from './support/harness.js';
import { buildState, encodeSnapshot } from '../src/state/encoder.js';
import { encodeEvent } from '../src/state/io.js';
import { encodeSchema, fnv1a64 } from '../src/state/schema.js';

const snapshotOf = (tick, ack, entities, from = null) => {
  const state = buildState(codec, { tick, entities });
  return { state, bytes: encodeSnapshot(codec, ServerFrameTag.Snapshot, from, state, joined.seat, ack) };
};

describe('Session', () => {
  test('tracks welcome, lobby (its schema and game), players, snapshots and scores', () => {
    const s = new Session();
    s.apply(welcome);
    assert.equal(s.phase, Phase.Lobbyless);
    assert.equal(s.tickRate, 30);
    s.apply(joined);
    assert.equal(s.phase, Phase.InLobby);
    assert.equal(s.seat, 2);
    assert.equal(s.schemaError, null);
    assert.equal(s.lobby.game, 'arena');
    assert.equal(s.game.name, 'arena');
    assert.equal(s.game.known, true);
    assert.deepEqual(s.game.world, { width: 1000, height: 1000, minX: 0, minY: 0 });
    const a = snapshotOf(100, 3, [player(1, 1000, 0, { vx: 200, it: true, score: 1 }), player(2, 500, 200, { vy: -200, score: 4 })]);
    const applied = s.applySnapshot(a.bytes);
    assert.deepEqual(applied.created, [11, 12]);
    const mine = s.myEntity();
    assert.equal(mine.id, 12);
    const values = codec.kinds[0].values(mine.row);
    assert.ok(Math.abs(values.pos.x - 500) < 0.01 && Math.abs(values.pos.y - 200) < 0.01);
    assert.equal(values.vel.y, -200);
    // A delta against it.
    const b = snapshotOf(101, 4, [player(1, 990, 0, { vx: 200, it: true, score: 1 }), player(2, 500, 200, { vy: -200, score: 5 })], a.state);
    assert.deepEqual(s.applySnapshot(b.bytes).changed, [11, 12]);

    s.apply({ type: 'PlayerJoined', seat: 3, player_id: 9, name: 'cy' });
    assert.deepEqual(s.scoreboard().map((r) => [r.name, r.score, r.me]), [
      ['ada', 5, true],
      ['bo', 1, false],
      ['cy', 0, false],
    ]);
    s.apply({ type: 'PlayerLeft', seat: 3, player_id: 9 });
    assert.equal(s.players.size, 2);
    assert.equal(s.scoreboard().length, 2);

    s.apply({ type: 'Error', code: 5, message: 'lobby is full' });
    assert.deepEqual(s.lastError, { code: 5, name: 'LobbyFull', message: 'lobby is full' });
    s.apply({ type: 'Error', code: 999, message: '?' });
    assert.equal(s.lastError.name, 'Unknown');
    s.apply({ type: 'MatchEnded', summary: 'time is up', results: [{ seat: 2, name: 'ada', score: 5, place: 1 }] });
    assert.equal(s.matchEnded.results[0].name, 'ada');

    s.apply({ type: 'Left', reason: 4 });
    assert.equal(s.phase, Phase.Lobbyless);
    assert.equal(s.lobby, null);
    assert.equal(s.state, null);
    assert.equal(s.myEntity(), null);
    assert.equal(s.lastLeft.name, 'MatchEnded');
  });

  test('a schema whose hash does not match, or that does not decode, is refused', () => {
    const s = new Session();
    s.apply({ ...joined, schema_hash: new Uint8Array(8) });
    assert.match(s.schemaError, /hash/);
    assert.equal(s.state, null);
    const bad = Uint8Array.of(...joined.schema, 0);
    s.apply({ ...joined, schema: bad, schema_hash: Uint8Array.from({ length: 8 }, (_, i) => parseInt(fnv1a64(bad).slice(14 - 2 * i, 16 - 2 * i), 16)) });
    assert.match(s.schemaError, /trailing/);
  });

  test('a game without a module still plays with the defaults (no prediction)', () => {
    const schema = { ...arenaSchema, game: 'mystery' };
    const bytes = encodeSchema(schema);
    const hash = fnv1a64(bytes);
    const s = new Session();
    s.apply({ ...joined, schema: bytes, schema_hash: Uint8Array.from({ length: 8 }, (_, i) => parseInt(hash.slice(14 - 2 * i, 16 - 2 * i), 16)) });
    assert.equal(s.game.name, 'mystery');
    assert.equal(s.game.known, false);
    assert.equal(s.game.predict, null);
    assert.deepEqual(s.game.controls, { dir: 'move' });
    assert.equal(s.game.score, 'score');
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
    // Nothing but pings and lists while in the browser: no inputs before a lobby.
    assert.deepEqual(new Set(h.ws.sent.slice(1).map((m) => m.type)), new Set(['ListLobbies', 'Ping']));
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
    h.snapshot(100, seq, [player(1, 1000, 0, { it: true }), player(2, 500, 200)], { full: true });
    h.client.frame(h.time.now());
    const view = h.client.frame(h.time.now() + 16);
    const me = view.entities.find((e) => e.me);
    assert.equal(me.name, 'ada');
    assert.equal(me.kindName, 'Player');
    assert.ok(Math.abs(me.x - 500) < 0.01, String(me.x));
    assert.equal(h.client.myEntityId, 12);
    const other = view.entities.find((e) => !e.me);
    assert.equal(other.it, true);
    assert.deepEqual(other.style, { ring: '#ff4848', badge: 'IT', glow: true });
    // Hold right: the next frame moves, before any input has been sent.
    h.dir = { x: 1, y: 0 };
    const moved = h.client.frame(h.time.now() + 32).entities.find((e) => e.me);
    assert.ok(moved.x > me.x + 3, `moved from ${me.x} to ${moved.x}`);
    // The input goes out at the next tick and the prediction follows it.
    h.time.advance(40);
    const last = h.ws.ofType('Input').at(-1);
    assert.deepEqual(last.dir, { x: 1, y: 0 });
    assert.ok(h.client.predictor.state.pos.x > me.x);
  });

  test('inputs: one per tick, seq from 1, the client tick, quantized as the server reads them', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.quickJoin();
    h.ws.deliver(joined);
    h.dir = { x: 3, y: 4 }; // longer than 1: scaled to 1 before it is sent
    h.time.advance(100);
    const inputs = h.ws.ofType('Input');
    assert.deepEqual(inputs.map((i) => i.seq), inputs.map((_, i) => i + 1));
    const d = inputs.at(-1).dir;
    assert.ok(Math.abs(d.x - 0.6) < 1e-4 && Math.abs(d.y - 0.8) < 1e-4, JSON.stringify(d));
    // The prediction steps with exactly what the server decodes.
    assert.deepEqual(h.client.lastInput.dir, d);
    assert.equal(inputs.at(-1).bytes[0], ClientFrameTag.Input);
  });

  test('delta snapshots are applied to the previous snapshot; one that does not fit turns them off', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    // Deltas are protocol 2's default: nothing to ask for.
    assert.equal(h.ws.ofType('Options').length, 0);
    h.client.quickJoin();
    h.ws.deliver(joined);
    h.snapshot(100, 1, [player(1, 100, 100), player(2, 500, 200)], { full: true });
    h.snapshot(101, 2, [player(1, 110, 100, { vx: 200 }), player(2, 500, 200)]);
    assert.equal(h.client.session.state.tick, 101);
    const e1 = h.client.session.state.entityValues(11);
    assert.ok(Math.abs(e1.pos.x - 110) < 0.01);
    assert.equal(e1.vel.x, 200);
    assert.equal(h.client.buffer.newestTick, 101);
    assert.equal(h.client.stats().deltaShare, 0.5);
    // A baseline the client does not have: ask for full snapshots, say so once.
    const a = buildState(codec, { tick: 102, entities: [] });
    const b = buildState(codec, { tick: 103, entities: [] });
    h.ws.deliver({ type: 'Snapshot', bytes: encodeSnapshot(codec, ServerFrameTag.Snapshot, a, b, 2, 5) });
    assert.equal(h.client.session.state.tick, 101);
    assert.deepEqual(h.ws.sent.at(-1), { type: 'Options', delta_snapshots: false });
    assert.equal(h.events.filter((e) => e.kind === 'error').length, 1);
  });

  test('game events reach the feed and the page; MatchEnded and Left(MatchEnded) are told', () => {
    const schema = {
      ...arenaSchema,
      events: [{ name: 'Tagged', fields: [{ name: 'by', owner_only: false, ty: { type: 'Player' } }] }],
    };
    const bytes = encodeSchema(schema);
    const hash = fnv1a64(bytes);
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.quickJoin();
    h.ws.deliver({ ...joined, schema: bytes, schema_hash: Uint8Array.from({ length: 8 }, (_, i) => parseInt(hash.slice(14 - 2 * i, 16 - 2 * i), 16)) });
    const c = h.client.session.codec;
    h.ws.deliver({ type: 'Event', bytes: encodeEvent(c, ServerFrameTag.Event, 120, 'Tagged', { by: 1 }) });
    assert.deepEqual(h.client.session.events.map((e) => [e.tick, e.type, e.values.by]), [[120, 'Tagged', 1]]);
    // A player field is named (the generic description of a game without a module).
    assert.deepEqual(h.events.at(-1), { kind: 'game', text: 'Tagged: by bo' });
    h.ws.deliver({ type: 'MatchEnded', summary: 'time is up', results: [{ seat: 1, name: 'bo', score: 3, place: 1 }] });
    assert.deepEqual(h.events.at(-1), { kind: 'match', text: 'time is up — bo wins' });
    h.ws.deliver({ type: 'Left', reason: 4 });
    assert.deepEqual(h.events.at(-1), { kind: 'left', text: 'The match is over; the lobby closed.' });
    assert.equal(h.client.session.matchEnded.summary, 'time is up');
  });

  test('game messages go out by the schema; unknown types and no lobby send nothing', async () => {
    const { decodeMessage } = await import('../src/state/io.js');
    const schema = {
      ...arenaSchema,
      messages: [{ name: 'chat', fields: [{ name: 'text', owner_only: false, ty: { type: 'Str', max_len: 16 } }] }],
    };
    const bytes = encodeSchema(schema);
    const hash = fnv1a64(bytes);
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    assert.equal(h.client.sendGameMessage('chat', { text: 'hi' }), false, 'not in a lobby');
    h.client.quickJoin();
    h.ws.deliver({ ...joined, schema: bytes, schema_hash: Uint8Array.from({ length: 8 }, (_, i) => parseInt(hash.slice(14 - 2 * i, 16 - 2 * i), 16)) });
    assert.equal(h.client.sendGameMessage('chat', { text: 'gg, well played all' }), true);
    assert.equal(h.client.sendGameMessage('nope', {}), false);
    const sent = h.ws.ofType('GameMessage');
    assert.equal(sent.length, 1);
    const m = decodeMessage(h.client.session.codec, ClientFrameTag.GameMessage, sent[0].bytes);
    assert.deepEqual(m.values, { text: 'gg, well played ' }, 'cut to the declared 16 bytes');
  });

  test('a refused join shows the game\'s reason', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.client.createLobby({ name: 'x', maxPlayers: 4, private: false, options: [['match_secs', '60']] });
    assert.deepEqual(h.ws.ofType('CreateLobby')[0].options, [['match_secs', '60']]);
    h.ws.deliver({ type: 'Error', code: 19, message: 'the match has started' });
    assert.equal(h.client.busy, false);
    assert.deepEqual(h.events.at(-1), { kind: 'error', text: 'The match has started' });
  });

  test('?delta=0: Options asks for full snapshots', () => {
    const h = harness({ deltaSnapshots: false });
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    assert.deepEqual(h.ws.ofType('Options'), [{ type: 'Options', delta_snapshots: false }]);
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
    assert.throws(() => h.client.send({ type: 'Input', bytes: Uint8Array.of(0) }), CodecError);
    assert.throws(() => h.client.send({ type: 'Ping', client_time: -1 }), CodecError);
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
