// A GameClient on fake time and a fake socket, and the server messages the tests share.

import { PROTOCOL_VERSION } from '../../src/codec.js';
import { GameClient } from '../../src/client.js';
import { FakeTime } from './fake-time.js';
import { fakeSocketClass } from './fake-socket.js';

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
/** A client on fake time and a fake socket; `dir` is the held direction. */
export function harness(options = {}) {
  const time = new FakeTime();
  const Socket = fakeSocketClass();
  const events = [];
  const h = {
    time,
    Socket,
    events,
    dir: { x: 0, y: 0 },
    get ws() {
      return Socket.last;
    },
  };
  h.client = new GameClient({
    url: 'ws://test/ws',
    name: 'ada',
    direction: () => h.dir,
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

