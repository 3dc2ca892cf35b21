// The session flow: connect, Hello, (QuickJoin), then one Input per tick while in a lobby,
// and a Ping now and then for the round-trip time. No DOM: the page supplies the input
// direction and reacts to `onChange` / `onEvent`.

import { CloseCode, ErrorCode, PROTOCOL_VERSION, nameOf } from './codec.js';
import { Connection } from './connection.js';
import { Phase, Session } from './session.js';

const PING_INTERVAL_MS = 2000;
const U32 = 4294967296;

/**
 * A ticksync client.
 *
 * options: {
 *   url,                       the WebSocket URL (see connection.js serverUrl)
 *   name,                      the display name sent in Hello
 *   autoJoin = true,           send QuickJoin after Welcome
 *   direction() -> {x, y},     the movement direction, length at most 1
 *   onChange(),                the session state changed (a message arrived, a phase changed)
 *   onEvent({kind, text}),     something to show the player: kind 'error' | 'notice' | 'left' | 'closed'
 *   WebSocketImpl, now,        for tests
 * }
 */
export class GameClient {
  constructor(options) {
    this.options = options;
    this.session = new Session();
    this.connection = null;
    this.inputSeq = 0;
    this.inputTimer = null;
    this.pingTimer = null;
    this.now = options.now ?? (() => performance.now());
  }

  get connected() {
    return this.connection?.open ?? false;
  }

  /** Opens a new connection (closing any previous one). */
  connect(name = this.options.name) {
    this.disconnect();
    this.options.name = name;
    this.session.reset();
    this.session.phase = Phase.Connecting;
    this.inputSeq = 0;
    const connection = new Connection(
      this.options.url,
      {
        onOpen: () => this.opened(),
        onMessage: (m) => this.received(m),
        onClose: (info) => this.closed(connection, info),
        onProtocolError: (e) => this.emit('error', `Undecodable server message: ${e.message}`),
      },
      this.options.WebSocketImpl,
    );
    this.connection = connection;
    this.changed();
  }

  /** Closes the connection, if any. */
  disconnect() {
    this.stopTimers();
    if (this.connection) {
      const c = this.connection;
      this.connection = null;
      c.close(1000, 'bye');
    }
  }

  /** Sends a client message; false when not connected. */
  send(message) {
    return this.connection ? this.connection.send(message) : false;
  }

  quickJoin() {
    return this.send({ type: 'QuickJoin' });
  }

  leaveLobby() {
    return this.send({ type: 'LeaveLobby' });
  }

  opened() {
    this.session.phase = Phase.Handshaking;
    this.send({
      type: 'Hello',
      protocol_version: PROTOCOL_VERSION,
      name: this.options.name,
      resume_token: null,
    });
    this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    this.changed();
  }

  received(m) {
    const session = this.session;
    session.apply(m);
    switch (m.type) {
      case 'Snapshot':
        break;
      case 'Welcome':
        if (this.options.autoJoin !== false) this.quickJoin();
        this.ping();
        break;
      case 'Joined':
        this.startInputs();
        break;
      case 'Left':
        this.stopInputs();
        this.emit('left', `Left the lobby (${session.lastLeft.name}).`);
        break;
      case 'Pong': {
        const sent = m.client_time;
        const now = Math.floor(this.now()) % U32;
        session.rttMs = (now - sent + U32) % U32;
        break;
      }
      case 'Error':
        this.emit('error', `${nameOf(ErrorCode, m.code) ?? `Error ${m.code}`}: ${m.message}`);
        break;
      case 'Notice':
        this.emit('notice', m.text);
        break;
      default:
        break;
    }
    this.changed();
  }

  closed(connection, info) {
    if (connection !== this.connection && this.connection !== null) return; // an old one
    this.stopTimers();
    this.session.phase = Phase.Closed;
    this.emit('closed', describeClose(info));
    this.changed();
  }

  startInputs() {
    this.stopInputs();
    const rate = Math.max(1, this.session.tickRate ?? 30);
    this.inputTimer = setInterval(() => this.sendInput(), 1000 / rate);
  }

  stopInputs() {
    if (this.inputTimer !== null) clearInterval(this.inputTimer);
    this.inputTimer = null;
  }

  stopTimers() {
    this.stopInputs();
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /** Sends the next Input (called once per tick while in a lobby). */
  sendInput() {
    if (this.session.phase !== Phase.InLobby || !this.connected) return;
    const d = this.options.direction?.() ?? { x: 0, y: 0 };
    this.inputSeq = this.inputSeq >= U32 - 1 ? 1 : this.inputSeq + 1;
    this.send({ type: 'Input', seq: this.inputSeq, dir_x: d.x, dir_y: d.y, buttons: 0 });
  }

  ping() {
    if (this.connected) this.send({ type: 'Ping', client_time: Math.floor(this.now()) % U32 });
  }

  emit(kind, text) {
    this.options.onEvent?.({ kind, text });
  }

  changed() {
    this.options.onChange?.();
  }
}

// Codes a browser reports itself (never sent by the server).
const LOCAL_CLOSE_TEXT = { 1005: 'no status', 1006: 'connection lost', 1015: 'TLS failure' };

/** "Disconnected: 4003 idle timeout (reason)". */
export function describeClose({ code, reason }) {
  const known = nameOf(CloseCode, code);
  const what = known ? known.toLowerCase().replaceAll('_', ' ') : (LOCAL_CLOSE_TEXT[code] ?? 'closed');
  return `Disconnected: ${code} ${what}${reason ? ` (${reason})` : ''}`;
}
