// The demo client's netcode modules without a browser: the session state, the flow of
// GameClient over a fake WebSocket, and the keyboard direction.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { CodecError, PROTOCOL_VERSION, decodeClient, encodeServer } from '../src/codec.js';
import { GameClient, describeClose } from '../src/client.js';
import { serverUrl } from '../src/connection.js';
import { directionOf } from '../src/input.js';
import { Phase, Session } from '../src/session.js';

const welcome = {
  type: 'Welcome',
  player_id: 7,
  session_token: new Uint8Array(16).fill(9),
  tick_rate: 30,
  protocol_version: PROTOCOL_VERSION,
};
const joined = {
  type: 'Joined',
  lobby_id: 2,
  name: 'quick 2',
  code: null,
  max_players: 10,
  your_entity: 1,
  tick: 99,
  world_width: 1000,
  world_height: 1000,
  max_speed: 200,
  players: [
    { entity: 0, player_id: 5, name: 'bo' },
    { entity: 1, player_id: 7, name: 'ada' },
  ],
};
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

class FakeSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.binaryType = 'blob';
    FakeSocket.last = this;
  }
  send(bytes) {
    this.sent.push(decodeClient(bytes));
  }
  close(code, reason) {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: true });
  }
  // Test side.
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  deliver(message) {
    const bytes = encodeServer(message);
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) });
  }
  drop(code, reason) {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: false });
  }
}

describe('GameClient', () => {
  test('Hello, QuickJoin, then one Input per tick with increasing seq', () => {
    const events = [];
    let dir = { x: 0, y: 0 };
    const client = new GameClient({
      url: 'ws://test/ws',
      name: 'ada',
      direction: () => dir,
      onEvent: (e) => events.push(e),
      WebSocketImpl: FakeSocket,
      now: () => 1000,
    });
    client.connect();
    const ws = FakeSocket.last;
    assert.equal(ws.binaryType, 'arraybuffer');
    assert.equal(client.session.phase, Phase.Connecting);
    ws.open();
    assert.deepEqual(ws.sent[0], { type: 'Hello', protocol_version: PROTOCOL_VERSION, name: 'ada', resume_token: null });

    ws.deliver(welcome);
    assert.equal(ws.sent[1].type, 'QuickJoin');

    // No input before Joined.
    client.sendInput();
    assert.ok(!ws.sent.some((m) => m.type === 'Input'));

    ws.deliver(joined);
    assert.notEqual(client.inputTimer, null);
    client.sendInput();
    dir = { x: Math.SQRT1_2, y: -Math.SQRT1_2 };
    client.sendInput();
    const inputs = ws.sent.filter((m) => m.type === 'Input');
    assert.deepEqual(inputs.map((m) => m.seq), [1, 2]);
    assert.equal(inputs[1].dir_x, Math.fround(Math.SQRT1_2));
    assert.equal(inputs[1].dir_y, Math.fround(-Math.SQRT1_2));

    ws.deliver({ type: 'Pong', client_time: 990, server_tick: 5 });
    assert.equal(client.session.rttMs, 10);

    ws.deliver({ type: 'Error', code: 3, message: 'not now' });
    assert.deepEqual(events.at(-1), { kind: 'error', text: 'InvalidState: not now' });

    ws.deliver({ type: 'Left', reason: 0 });
    assert.equal(client.inputTimer, null);

    ws.drop(4003, 'idle');
    assert.equal(client.session.phase, Phase.Closed);
    assert.deepEqual(events.at(-1), { kind: 'closed', text: 'Disconnected: 4003 idle timeout (idle)' });
    assert.equal(client.pingTimer, null);
  });

  test('an undecodable server message closes the connection', () => {
    const events = [];
    const client = new GameClient({ url: 'ws://x/ws', name: 'a', WebSocketImpl: FakeSocket, onEvent: (e) => events.push(e) });
    client.connect();
    const ws = FakeSocket.last;
    ws.open();
    ws.onmessage({ data: Uint8Array.of(200).buffer });
    assert.equal(ws.readyState, 3);
    assert.equal(events[0].kind, 'error');
    assert.match(events[0].text, /Undecodable/);
    client.disconnect();
  });

  test('an invalid outgoing message throws CodecError', () => {
    const client = new GameClient({ url: 'ws://x/ws', name: 'a', WebSocketImpl: FakeSocket });
    client.connect();
    FakeSocket.last.open();
    assert.throws(() => client.send({ type: 'Input', seq: -1, dir_x: 0, dir_y: 0, buttons: 0 }), CodecError);
    client.disconnect();
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
