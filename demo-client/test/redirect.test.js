// Cluster mode: the client follows `Redirect` by itself, over a fake socket and fake
// timers. A join on node A for a lobby on node B: the A socket closed normally, B opened,
// Hello as a new player, JoinReserved with the reservation as it came, Joined lands in the
// lobby as a direct join would; a drop then resumes on B with B's token. Refusals
// (ReservationFailed, ClusterUnavailable, B unreachable or silent) are said plainly and
// the client goes back to A's lobby list; a loop of redirects stops after MAX_REDIRECTS;
// URLs are resolved (relative ones against the page's origin) and only ws:/wss: is taken.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { ConnState, MAX_REDIRECTS } from '../src/client.js';
import { ErrorCode } from '../src/codec.js';
import { resolveRedirectUrl } from '../src/connection.js';
import { harness, joined, player, welcome } from './support/harness.js';

const HOME = 'ws://test/ws';
const B = 'ws://10.0.0.5:8080/ws';
const RESERVATION = '0107070707070707070707070707070707000001a229f1287b0000002a066e6f64652d61';
const tokenB = new Uint8Array(16).fill(0xb);
const welcomeB = { ...welcome, player_id: 40, session_token: tokenB };

/** A client welcomed on A (the home node), in the lobby list, that asked to join lobby `joined.lobby_id`. */
function joiningFromA(options) {
  const h = harness(options);
  h.client.connect();
  h.ws.open();
  h.ws.deliver(welcome);
  assert.equal(h.client.joinLobby(joined.lobby_id), true);
  return h;
}

/** A answers the join with a Redirect to `url`; B's socket opens. Returns [A's socket, B's]. */
function redirected(h, url = B, reservation = RESERVATION) {
  const a = h.ws;
  a.deliver({ type: 'Redirect', url, reservation });
  const b = h.ws;
  assert.notEqual(a, b, 'a new socket');
  b.open();
  return [a, b];
}

const errors = (h) => h.events.filter((e) => e.kind === 'error').map((e) => e.text);

describe('resolveRedirectUrl', () => {
  test('absolute ws:/wss: URLs as they are; relative ones against the page origin; nothing else', () => {
    assert.equal(resolveRedirectUrl(B, 'http://page.test', HOME), B);
    assert.equal(resolveRedirectUrl('wss://b.example/ws', 'https://a.example', HOME), 'wss://b.example/ws');
    assert.equal(resolveRedirectUrl('/b/ws', 'https://game.example', HOME), 'wss://game.example/b/ws');
    assert.equal(resolveRedirectUrl('/b/ws', 'http://127.0.0.1:8080', HOME), 'ws://127.0.0.1:8080/b/ws');
    const noPage = resolveRedirectUrl('/b/ws', null, 'ws://a.test:81/ws');
    assert.equal(noPage, 'ws://a.test:81/b/ws', 'no page: against the current URL');
    assert.equal(resolveRedirectUrl('http://b.example/ws', 'http://a.example', HOME), null);
    assert.equal(resolveRedirectUrl('javascript:alert(1)', 'http://a.example', HOME), null);
    assert.equal(resolveRedirectUrl('b/ws', null, null), null, 'relative with nothing to resolve against');
  });
});

describe('GameClient: following a Redirect', () => {
  test('joined through a redirect: A closed normally, Hello then JoinReserved on B, in the lobby as a direct join', () => {
    const h = joiningFromA();
    assert.equal(h.ws.ofType('JoinLobby').length, 1);
    const [a, b] = redirected(h);
    assert.deepEqual(a.closedBy, { code: 1000, reason: 'bye' }, 'A is closed normally: it frees the player at once');
    assert.equal(b.url, B);
    assert.equal(h.client.url, B);
    assert.equal(h.client.busy, false, 'no lobby request while connecting to B');
    assert.equal(h.client.joinLobby(9), false, 'nor may one start');
    const hello = b.sent[0];
    assert.equal(hello.type, 'Hello');
    assert.equal(hello.name, 'ada');
    assert.equal(hello.resume_token, null, "a new player on B: A's token means nothing there");
    b.deliver(welcomeB);
    assert.deepEqual(
      b.sent.filter((m) => m.type !== 'Ping').map((m) => m.type),
      ['Hello', 'JoinReserved'],
      'no ListLobbies, no JoinLobby again: the reservation is the join',
    );
    assert.equal(b.ofType('JoinReserved')[0].reservation, RESERVATION);
    assert.equal(h.client.busy, true);
    b.deliver(joined);
    assert.equal(h.client.state, ConnState.Online);
    assert.equal(h.client.inLobby, true);
    assert.equal(h.client.session.lobby.id, joined.lobby_id);
    assert.equal(h.client.session.seat, joined.seat);
    assert.equal(h.client.session.lobby.game, 'arena', 'the schema and game module, as a direct join');
    assert.equal(h.client.game.name, 'arena');
    assert.equal(h.client.session.playerId, welcomeB.player_id);
    assert.equal(h.client.busy, false);
    h.time.advance(200);
    assert.ok(b.ofType('Input').length > 3, 'inputs flow on B');
    assert.equal(a.sent.filter((m) => m.type === 'Input').length, 0);
    assert.deepEqual(errors(h), []);
  });

  test("a drop on B resumes on B with B's token, back in the same seat", () => {
    const h = joiningFromA();
    const [, b] = redirected(h);
    b.deliver(welcomeB);
    b.deliver(joined);
    h.time.advance(200);
    b.drop(1006);
    assert.equal(h.client.state, ConnState.Reconnecting);
    h.time.advance(500);
    const again = h.ws;
    assert.notEqual(again, b);
    assert.equal(again.url, B, 'reconnects to the node that holds the session, not to A');
    again.open();
    assert.deepEqual([...again.sent[0].resume_token], [...tokenB]);
    again.deliver(welcomeB);
    again.deliver(joined);
    assert.equal(h.client.inLobby, true);
    assert.equal(h.client.session.seat, joined.seat);
    h.time.advance(200);
    assert.ok(again.ofType('Input').length > 3, 'inputs flow again');
    // The net stats go on: snapshots and Pongs of B's new connection count.
    h.snapshot(120, 1, [player(1, 50, 50), player(2, 60, 60)], { full: true });
    assert.equal(h.client.stats().snapshotTick, 120);
    const ping = again.ofType('Ping').at(-1);
    h.time.advance(40);
    again.deliver({ type: 'Pong', client_time: ping.client_time, server_tick: 120 });
    assert.equal(typeof h.client.stats().rttMs, 'number');
    assert.ok(h.client.stats().rttMs >= 40);
  });

  test('a relative redirect URL is resolved against the page origin', () => {
    const h = joiningFromA({ pageOrigin: 'https://game.example' });
    const [, b] = redirected(h, '/node-b/ws');
    assert.equal(b.url, 'wss://game.example/node-b/ws');
  });

  test('a resume sent to the wrong node (empty reservation): the same token at the URL given', () => {
    const h = joiningFromA();
    const [, b] = redirected(h);
    b.deliver(welcomeB);
    b.deliver(joined);
    b.drop(1006);
    h.time.advance(500);
    const wrong = h.ws;
    wrong.open();
    wrong.deliver({ type: 'Redirect', url: 'ws://10.0.0.6:8080/ws', reservation: '' });
    const right = h.ws;
    assert.equal(right.url, 'ws://10.0.0.6:8080/ws');
    right.open();
    assert.deepEqual([...right.sent[0].resume_token], [...tokenB], 'the same session, resumed where it lives');
    right.deliver(welcomeB);
    right.deliver(joined);
    assert.equal(h.client.inLobby, true);
    assert.deepEqual(errors(h), []);
  });

  for (const [code, message] of [
    [ErrorCode.ReservationFailed, 'reservation refused: the reservation expired or is unknown'],
    [ErrorCode.ReservationFailed, 'reservation refused: the reservation is for another lobby'],
    [ErrorCode.ClusterUnavailable, 'the cluster directory does not answer; try again shortly'],
    [ErrorCode.LobbyFull, 'the lobby is full'],
  ]) {
    test(`B answers JoinReserved with Error ${code}: said plainly, back to A's lobby list`, () => {
      const h = joiningFromA();
      const [, b] = redirected(h);
      b.deliver(welcomeB);
      b.deliver({ type: 'Error', code, message });
      assert.equal(b.closedBy?.code, 1000, 'B is closed normally');
      const said = new RegExp(`Could not join the lobby on its server: ${message}\\. Back to the lobby list\\.`);
      assert.match(errors(h).at(-1), said);
      const home = h.ws;
      assert.equal(home.url, HOME);
      assert.equal(h.client.url, HOME);
      home.open();
      assert.equal(home.sent[0].resume_token, null, 'a new player at home');
      home.deliver(welcome);
      h.time.advance(1);
      assert.equal(h.client.state, ConnState.Online);
      assert.equal(h.client.inLobby, false);
      assert.equal(h.client.busy, false);
      assert.equal(home.ofType('ListLobbies').length, 1, 'the lobby list on A');
      assert.equal(h.client.joinLobby(joined.lobby_id), true, 'free to try again');
    });
  }

  test("B unreachable: said plainly, back to A's lobby list", () => {
    const h = joiningFromA();
    const a = h.ws;
    a.deliver({ type: 'Redirect', url: B, reservation: RESERVATION });
    const b = h.ws;
    b.drop(1006); // connection refused
    assert.match(errors(h).at(-1), /Could not reach the lobby's server \(1006 connection lost\); back to the lobby list\./);
    assert.equal(h.ws.url, HOME);
    assert.equal(h.client.state, ConnState.Connecting, 'at once, no backoff towards B');
    h.ws.open();
    h.ws.deliver(welcome);
    h.time.advance(1);
    assert.equal(h.ws.ofType('ListLobbies').length, 1);
  });

  test("B silent after JoinReserved: given up after the lobby request timeout, back to A", () => {
    const h = joiningFromA();
    const [, b] = redirected(h);
    b.deliver(welcomeB);
    h.time.advance(8000);
    assert.match(errors(h).at(-1), /The lobby's server did not answer; back to the lobby list\./);
    assert.equal(h.ws.url, HOME);
  });

  test('A answers ClusterUnavailable itself: said, the request is over, still in the list', () => {
    const h = joiningFromA();
    h.ws.deliver({ type: 'Error', code: ErrorCode.ClusterUnavailable, message: 'the cluster directory does not answer' });
    assert.equal(h.client.busy, false);
    assert.equal(h.Socket.all.length, 1, 'no reconnect');
    assert.match(errors(h).at(-1), /cluster directory does not answer/);
  });

  test(`a loop of redirects stops after ${MAX_REDIRECTS} and goes home`, () => {
    const h = joiningFromA();
    const nodes = ['ws://b.test/ws', 'ws://c.test/ws', 'ws://b.test/ws', 'ws://c.test/ws'];
    let followed = 0;
    for (const url of nodes) {
      const before = h.ws;
      if (followed > 0) before.deliver({ ...welcomeB });
      before.deliver({ type: 'Redirect', url, reservation: RESERVATION });
      if (h.ws === before || h.ws.url === HOME) break;
      followed++;
      h.ws.open();
    }
    assert.equal(followed, MAX_REDIRECTS);
    assert.match(errors(h).at(-1), /Too many redirects in a row \(3\)/);
    assert.equal(h.ws.url, HOME);
    assert.equal(h.Socket.all.length, MAX_REDIRECTS + 2, 'A, three redirects, home');
    h.ws.open();
    h.ws.deliver(welcome);
    h.time.advance(1);
    assert.equal(h.client.inLobby, false);
    assert.equal(h.ws.ofType('ListLobbies').length, 1);
  });

  test('a loop of resume redirects stops too', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.ws.drop(1006);
    for (let i = 0; i < 10 && h.Socket.all.length < 20; i++) {
      h.time.advance(500);
      h.ws.open();
      h.ws.deliver({ type: 'Redirect', url: i % 2 ? 'ws://b.test/ws' : 'ws://c.test/ws', reservation: '' });
      if (h.ws.url === HOME && errors(h).length) break;
    }
    assert.match(errors(h).at(-1), /Too many redirects in a row/);
    assert.equal(h.ws.url, HOME);
  });

  test('a redirect to a non-WebSocket URL is refused, the player stays in the list', () => {
    const h = joiningFromA();
    h.ws.deliver({ type: 'Redirect', url: 'http://evil.example/ws', reservation: RESERVATION });
    assert.equal(h.Socket.all.length, 1, 'nothing opened');
    assert.equal(h.client.busy, false);
    assert.match(errors(h).at(-1), /an address it cannot use/);
  });

  test('a redirect nobody asked for is ignored', () => {
    const h = harness();
    h.client.connect();
    h.ws.open();
    h.ws.deliver(welcome);
    h.ws.deliver({ type: 'Redirect', url: B, reservation: RESERVATION });
    assert.equal(h.Socket.all.length, 1);
    assert.match(errors(h).at(-1), /redirect nobody asked for/);
  });

  test('a new connection (new name) after a redirect goes home', () => {
    const h = joiningFromA();
    const [, b] = redirected(h);
    b.deliver(welcomeB);
    b.deliver(joined);
    h.client.leaveLobby();
    h.client.connect('bob');
    assert.equal(h.ws.url, HOME);
  });

  test('a WebSocket the page refuses to open (a policy): said, back home', () => {
    const h = joiningFromA();
    const Socket = h.Socket;
    h.client.options.WebSocketImpl = class extends Socket {
      constructor(url) {
        if (url === B) throw new Error('refused by the page policy');
        super(url);
      }
    };
    h.ws.deliver({ type: 'Redirect', url: B, reservation: RESERVATION });
    assert.match(
      errors(h).at(-1),
      /Could not connect to the lobby's server \(refused by the page policy\); back to the lobby list\./,
    );
    assert.equal(h.ws.url, HOME);
    assert.equal(h.Socket.all.length, 2, 'A, then A again');
  });
});
