// Reconnecting: the backoff, which close codes stop it, and the client's resume flow over
// a fake socket and fake timers (same player back in the same lobby, an expired session
// rejoining its lobby, a version mismatch said plainly).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { ConnState } from '../src/client.js';
import { CloseCode, LocalCloseCode } from '../src/codec.js';
import { Backoff, FINAL_CLOSE_CODES, closeCodeText, shouldReconnect } from '../src/reconnect.js';
import { harness, joined, welcome } from './support/harness.js';

describe('Backoff', () => {
  test('doubles from 0.5 s up to 8 s, and starts over after a success', () => {
    const b = new Backoff({ random: () => 0 });
    assert.deepEqual(Array.from({ length: 7 }, () => b.next()), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    b.reset();
    assert.equal(b.next(), 500);
  });

  test('jitter takes up to 30% off each delay', () => {
    const low = new Backoff({ random: () => 1 });
    assert.deepEqual(Array.from({ length: 5 }, () => low.next()), [350, 700, 1400, 2800, 5600]);
    const b = new Backoff();
    for (let i = 0; i < 200; i++) {
      const ceiling = Math.min(8000, 500 * 2 ** Math.min(i, 10));
      const d = b.next();
      assert.ok(d >= ceiling * 0.7 - 1 && d <= ceiling, `${d} for ceiling ${ceiling}`);
    }
  });

  // Which codes are final, against Rust's close::FINAL: constants.test.js.
  test('a final code stops reconnecting; a lost link does not', () => {
    for (const code of FINAL_CLOSE_CODES) assert.equal(shouldReconnect(code), false, `${code}`);
    for (const code of [CloseCode.GOING_AWAY, CloseCode.TRY_AGAIN_LATER, LocalCloseCode.CONNECTION_LOST]) {
      assert.equal(shouldReconnect(code), true, `${code}`);
    }
    assert.equal(closeCodeText(CloseCode.REPLACED), 'replaced');
    assert.equal(closeCodeText(LocalCloseCode.CONNECTION_LOST), 'connection lost');
    assert.equal(closeCodeText(4999), 'closed');
  });
});

// A client welcomed and in `joined`'s lobby, inputs flowing.
function playing(options) {
  const h = harness(options);
  h.client.connect();
  h.ws.open();
  h.ws.deliver(welcome);
  h.client.quickJoin();
  h.ws.deliver(joined);
  h.time.advance(200);
  return h;
}

describe('GameClient: reconnecting', () => {
  test('a dropped link: reconnecting with a countdown, then the same player back in its lobby', () => {
    const h = playing();
    const first = h.ws;
    assert.ok(h.client.inputSeq > 3);
    first.drop(1006);
    assert.equal(h.client.state, ConnState.Reconnecting);
    assert.equal(h.client.closeInfo.code, 1006);
    assert.equal(h.client.closeInfo.codeText, 'connection lost');
    assert.equal(h.client.reconnectIn(h.time.now()), 0.5);
    assert.equal(h.client.inLobby, true, 'the game stays on screen while reconnecting');
    h.time.advance(499);
    assert.equal(h.Socket.all.length, 1, 'not before the delay');
    h.time.advance(1);
    assert.equal(h.Socket.all.length, 2);
    assert.equal(h.client.state, ConnState.Connecting);
    h.ws.open();
    const hello = h.ws.sent[0];
    assert.equal(hello.type, 'Hello');
    assert.deepEqual([...hello.resume_token], [...welcome.session_token]);
    // The server gives the same player back, then a fresh Joined for the same seat.
    h.ws.deliver(welcome);
    h.ws.deliver(joined);
    assert.equal(h.client.state, ConnState.Online);
    assert.equal(h.client.session.lobby.id, joined.lobby_id);
    // The new connection's inputs count from 1 again, and the prediction starts over.
    const inputs = h.ws.ofType('Input');
    assert.equal(inputs[0].seq, 1);
    assert.equal(h.client.predictor.ackSeq, 0);
    assert.ok(h.client.predictor.pending.every((p) => p.seq <= h.client.inputSeq));
    // A later drop starts again from the shortest delay.
    h.ws.drop(1006);
    assert.equal(h.client.reconnectIn(h.time.now()), 0.5);
  });

  test('the server unreachable: longer and longer delays, each attempt resuming', () => {
    const h = playing();
    h.ws.drop(1001, 'server shutting down');
    assert.equal(h.client.closeInfo.reason, 'server shutting down');
    const delays = [];
    for (let i = 0; i < 6; i++) {
      delays.push(h.client.reconnect.delayMs);
      h.time.advance(h.client.reconnect.delayMs);
      h.ws.drop(1006); // the attempt fails to connect
      assert.equal(h.client.state, ConnState.Reconnecting);
    }
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 8000]);
    assert.ok(h.Socket.all.slice(1).every((s) => s.url === 'ws://test/ws'));
  });

  test('an expired session: a new player, who rejoins its lobby by code', () => {
    const h = playing();
    h.ws.deliver({ ...joined, code: 'ABCDE-FGHJK', type: 'Joined' });
    h.ws.drop(1006);
    h.time.advance(500);
    h.ws.open();
    h.ws.deliver({ type: 'Error', code: 14, message: 'unknown or expired session token; starting a new session' });
    h.ws.deliver({ ...welcome, player_id: 99, session_token: new Uint8Array(16).fill(3) });
    assert.equal(h.client.inLobby, false);
    assert.deepEqual(h.ws.ofType('JoinLobby')[0].target, { type: 'Code', value: 'ABCDE-FGHJK' });
    assert.match(h.events.at(-1).text, /rejoining/);
    h.ws.deliver({ ...joined, code: 'ABCDE-FGHJK', seat: 3 });
    assert.equal(h.client.session.seat, 3);
    assert.equal(h.client.session.playerId, 99);
  });

  test('resumed without the seat: back to the list after a while', () => {
    const h = playing();
    h.ws.drop(1006);
    h.time.advance(500);
    h.ws.open();
    h.ws.deliver(welcome);
    assert.equal(h.client.inLobby, true, 'waiting for the Joined');
    h.time.advance(4000);
    assert.equal(h.client.inLobby, false);
    assert.match(h.events.at(-1).text, /place in quick 2 was lost/);
  });

  test('leaving while disconnected leaves for real once resumed', () => {
    const h = playing();
    h.ws.drop(1006);
    h.client.leaveLobby();
    assert.equal(h.client.inLobby, false);
    h.time.advance(500);
    h.ws.open();
    h.ws.deliver(welcome);
    h.ws.deliver(joined);
    assert.equal(h.client.inLobby, false);
    assert.equal(h.ws.sent.at(-1).type, 'LeaveLobby');
  });

  for (const [code, reason] of [
    [4005, 'resumed by another connection'],
    [4006, 'kicked'],
    [1008, 'rate limit'],
  ]) {
    test(`close ${code}: disconnected, no automatic attempt, the button resumes`, () => {
      const h = playing();
      h.ws.drop(code, reason);
      assert.equal(h.client.state, ConnState.Disconnected);
      assert.equal(h.client.reconnect, null);
      assert.equal(h.client.closeInfo.reason, reason);
      h.time.advance(60000);
      assert.equal(h.Socket.all.length, 1);
      h.client.reconnectNow();
      assert.equal(h.Socket.all.length, 2);
      h.ws.open();
      assert.deepEqual([...h.ws.sent[0].resume_token], [...welcome.session_token]);
    });
  }

  test('a version mismatch says so and does not retry', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver({
      type: 'Error',
      code: 2,
      message: 'protocol version 1 is not supported; this server speaks version 2',
    });
    h.ws.drop(4001, 'protocol version mismatch');
    assert.equal(h.client.state, ConnState.Disconnected);
    assert.equal(h.client.versionMismatch, true);
    assert.equal(h.client.reconnect, null);
    assert.match(h.client.closeInfo.text, /4001 version mismatch \(protocol version mismatch\) — protocol version 1 is not supported/);
    assert.deepEqual(h.events, [], 'no toast: the connection card says it');
    h.time.advance(60000);
    assert.equal(h.Socket.all.length, 1);
  });

  test('kicked: the reason is shown; reconnecting by hand does not walk back into the lobby', () => {
    const h = playing();
    h.ws.deliver({ type: 'Error', code: 16, message: 'cheating' });
    h.ws.drop(4006, 'kicked');
    assert.equal(h.client.state, ConnState.Disconnected);
    assert.equal(h.client.closeInfo.error.message, 'cheating');
    assert.deepEqual(h.events, []);
    h.client.reconnectNow();
    h.ws.open();
    h.ws.deliver({ type: 'Error', code: 14, message: 'unknown or expired session token' });
    h.ws.deliver({ ...welcome, player_id: 12 });
    assert.equal(h.client.inLobby, false);
    assert.equal(h.ws.ofType('JoinLobby').length, 0);
  });

  test('an old error does not explain a later drop', () => {
    const h = playing();
    h.ws.deliver({ type: 'Error', code: 5, message: 'the lobby is full' });
    h.time.advance(10000);
    h.ws.drop(1006);
    assert.equal(h.client.closeInfo.error, null);
    assert.equal(h.client.closeInfo.text, 'Disconnected: 1006 connection lost');
  });

  test('closing on purpose does not reconnect', () => {
    const h = playing();
    h.client.disconnect();
    assert.equal(h.client.state, ConnState.Idle);
    h.time.advance(60000);
    assert.equal(h.Socket.all.length, 1);
    assert.equal(h.Socket.last.closedBy.code, 1000);
  });
});
