// The game client without the page: the connection and its lifecycle (Hello, resume,
// reconnect with backoff), the lobby flow, one Input per tick, Pings, and the netcode
// that turns the snapshot stream into what to draw each frame (prediction for the local
// player, interpolation for the others). No DOM: the page supplies the input direction,
// calls `frame(now)` from requestAnimationFrame and reacts to `onChange` / `onEvent`.
// Timers, clock, randomness and the WebSocket class are injectable, so the whole flow
// runs in Node against a fake socket.

import { CloseCode, ErrorCode, LeftReason, PROTOCOL_VERSION, applyDelta, nameOf } from './codec.js';
import { TickClock } from './clock.js';
import { LinkConditioner } from './conditioner.js';
import { Connection } from './connection.js';
import { SnapshotBuffer } from './interpolation.js';
import { Arena, Predictor, Smoother, arenaStep, tickSeconds } from './prediction.js';
import { Backoff, closeCodeText, describeClose, shouldReconnect } from './reconnect.js';
import { FLAG_IT, Phase, Session, worldEntities } from './session.js';
import { RateMeter } from './stats.js';

export { describeClose };

/** The connection's state, as the player should see it. */
export const ConnState = Object.freeze({
  /** Not started, or closed on purpose. */
  Idle: 'idle',
  /** Opening the WebSocket, or waiting for Welcome. */
  Connecting: 'connecting',
  /** Welcomed: in the lobby browser or in a lobby. */
  Online: 'online',
  /** The connection dropped; the next attempt is due at `reconnect.at`. */
  Reconnecting: 'reconnecting',
  /** Closed for a reason another attempt would not fix (see reconnect.js); a button retries. */
  Disconnected: 'disconnected',
});

const U32 = 4294967296;
/**
 * Pings while connected: RTT for the stats, samples for the server clock. The interval
 * varies (400-600 ms): a fixed 500 ms is exactly 15 ticks at 30 Hz, so every Pong would
 * sample the same phase of the server's tick and never narrow the clock's bounds.
 */
const PING_INTERVAL_MS = 500;
const PING_SPREAD_MS = 200;
/** The lobby list is refreshed this often while it is shown (the server allows 5 lobby operations/s). */
const LOBBY_REFRESH_MS = 2000;
/** A lobby request unanswered for this long is given up (the server answers within ~6 s). */
const LOBBY_OP_TIMEOUT_MS = 8000;
/** After a resume, how long to wait for the lobby's Joined before assuming the seat is gone. */
const RESUME_JOIN_WAIT_MS = 4000;
/** Phase nudging of the input timer: at most this share of a tick per input. */
const MAX_PHASE_NUDGE = 0.1;
/** An Error this close before the connection ends is the reason it ended. */
const CLOSE_REASON_WINDOW_MS = 3000;
/**
 * Errors the server sends just before it closes the connection: the connection card shows
 * them with the close code, so they are not also a toast.
 */
const FATAL_ERRORS = new Set([
  ErrorCode.BadMessage,
  ErrorCode.VersionMismatch,
  ErrorCode.InvalidState,
  ErrorCode.RateLimited,
  ErrorCode.TextFrame,
  ErrorCode.MessageTooLarge,
  ErrorCode.ShuttingDown,
  ErrorCode.Timeout,
  ErrorCode.Kicked,
  ErrorCode.Internal,
  ErrorCode.Unauthorized,
]);

/**
 * A ticksync client.
 *
 * options: {
 *   url,                        the WebSocket URL (see connection.js serverUrl)
 *   name,                       the display name sent in Hello
 *   direction() -> {x, y},      the movement direction to send, sampled once per tick
 *   heldDirection() -> {x, y},  the direction held now, read every frame (default: direction)
 *   conditioner,                {lagMs, jitterMs} for a LinkConditioner, or null
 *   deltaSnapshots = true,      ask for SnapshotDelta messages (Options) after each Welcome
 *   autoReconnect = true,
 *   onChange(),                 the state changed (a message arrived, the connection moved on)
 *   onEvent({kind, text}),      something to tell the player: kind 'error' | 'notice' | 'info' | 'left'
 *   WebSocketImpl, now, setTimeout, clearTimeout, random,   for tests
 *   backoff,                    options of reconnect.js Backoff
 *   interpolation,              options of clock.js TickClock (minDelayTicks...)
 * }
 */
export class GameClient {
  constructor(options) {
    this.options = { autoReconnect: true, deltaSnapshots: true, ...options };
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout ?? ((id) => clearTimeout(id));
    this.random = options.random ?? Math.random;
    this.session = new Session();
    this.connection = null;
    this.state = ConnState.Idle;
    /** How the last connection ended: {code, reason, wasClean, codeText, text, error}. */
    this.closeInfo = null;
    /** True after a protocol version mismatch: reconnecting cannot help, reloading may. */
    this.versionMismatch = false;
    this.backoff = new Backoff({ random: this.random, ...options.backoff });
    /** {at, attempt, delayMs} while reconnecting. */
    this.reconnect = null;
    this.timers = new Map(); // name -> id
    /** The name the server welcomed us with (a new name needs a new session). */
    this.welcomedName = null;
    /** Run after the next Welcome (a lobby request made while (re)connecting). */
    this.afterWelcome = null;
    /** The lobby request awaiting its answer: {kind, at}. */
    this.pendingOp = null;
    /** The lobby we were in when the connection dropped: {id, name, code}. */
    this.lostLobby = null;
    this.resuming = false;
    this.resumeFailed = false;
    /** Left the lobby while the connection was down: leave it again once resumed. */
    this.leaveOnResume = false;
    this.lastListAt = -Infinity;
    this.pings = new Map(); // client_time -> exact send time
    this.inputSeq = 0;
    this.nextInputAt = null;
    this.clock = new TickClock(options.interpolation);
    this.meters = {
      snapshots: new RateMeter(2000),
      bytesIn: new RateMeter(2000),
      bytesOut: new RateMeter(2000),
      corrections: new RateMeter(2000),
      deltas: new RateMeter(2000),
    };
    this.snapshotGaps = 0;
    /** Delta snapshots asked for on this connection (and not given up on). */
    this.deltasOn = false;
    this.lastCorrection = null;
    this.frameCount = 0;
    this.lastFrameAt = null;
    this.view = emptyView();
    this.resetNetcode(30, Arena);
  }

  // ---------------------------------------------------------------------------------------
  // Public state

  /** True while the WebSocket is open. */
  get connected() {
    return this.connection?.open ?? false;
  }

  /** True when the server has welcomed this connection. */
  get online() {
    return this.state === ConnState.Online;
  }

  /** True while in a lobby (or, while reconnecting, about to be back in one). */
  get inLobby() {
    return this.session.lobby !== null;
  }

  /** The current tick rate (from Welcome; 30 until then). */
  get tickRate() {
    return this.session.tickRate ?? 30;
  }

  /** Seconds until the next reconnection attempt (while reconnecting), else null. */
  reconnectIn(now = this.now()) {
    return this.reconnect ? Math.max(0, (this.reconnect.at - now) / 1000) : null;
  }

  // ---------------------------------------------------------------------------------------
  // Connection lifecycle

  /** Opens a new connection as a new player (closing any previous one). */
  connect(name = this.options.name) {
    this.options.name = name;
    this.closeQuietly();
    this.session.reset();
    this.lostLobby = null;
    this.versionMismatch = false;
    this.open(false);
  }

  /** Reconnects now (the reconnect button): resumes the session when there is one. */
  reconnectNow() {
    this.closeQuietly();
    this.versionMismatch = false;
    this.open(this.session.sessionToken !== null);
  }

  /** Closes the connection on purpose: the server frees the player at once, no reconnect. */
  disconnect() {
    this.closeQuietly();
    this.session.reset();
    this.lostLobby = null;
    this.setState(ConnState.Idle);
  }

  /** Changes the name used in Hello; takes effect with the next new session. */
  setName(name) {
    this.options.name = name;
  }

  closeQuietly() {
    this.cancelTimer('reconnect');
    this.reconnect = null;
    this.stopTimers();
    if (this.connection) {
      const c = this.connection;
      this.connection = null;
      c.close(CloseCode.NORMAL, 'bye');
    }
  }

  open(resume) {
    this.closeInfo = null;
    this.lastConnectionError = null;
    this.resuming = resume;
    if (!resume) this.leaveOnResume = false;
    this.resumeFailed = false;
    this.pendingOp = null;
    this.pings.clear();
    const c = this.options.conditioner;
    const conditioner =
      c && (c.lagMs > 0 || c.jitterMs > 0)
        ? new LinkConditioner({
            ...c,
            random: this.random,
            now: this.now,
            setTimeout: this.setTimer,
            clearTimeout: this.clearTimer,
          })
        : null;
    const connection = new Connection(
      this.options.url,
      {
        onOpen: () => this.opened(connection),
        onMessage: (m) => {
          if (connection === this.connection) this.received(m);
        },
        onClose: (info) => this.closed(connection, info),
        onProtocolError: (e) => this.emit('error', `Undecodable server message: ${e.message}`),
        onBytes: (direction, n) => {
          const meter = direction === 'in' ? this.meters.bytesIn : this.meters.bytesOut;
          meter.add(this.now(), n);
        },
      },
      this.options.WebSocketImpl,
      conditioner,
    );
    this.connection = connection;
    this.session.phase = Phase.Connecting;
    this.setState(ConnState.Connecting);
  }

  opened(connection) {
    if (connection !== this.connection) return;
    this.session.phase = Phase.Handshaking;
    this.send({
      type: 'Hello',
      protocol_version: PROTOCOL_VERSION,
      name: this.options.name,
      resume_token: this.resuming ? this.session.sessionToken : null,
    });
    this.changed();
  }

  closed(connection, info) {
    if (connection !== this.connection) return; // an old connection, replaced on purpose
    this.connection = null;
    this.stopTimers();
    this.session.phase = Phase.Closed;
    const last = this.lastConnectionError;
    this.lastConnectionError = null;
    const error = last && this.now() - last.at < CLOSE_REASON_WINDOW_MS ? last : null;
    const codeText = closeCodeText(info.code);
    let text = describeClose(info);
    if (error) text += ` — ${error.message}`;
    this.closeInfo = { ...info, codeText, text, error };
    if (info.code === CloseCode.VERSION_MISMATCH || error?.code === ErrorCode.VersionMismatch) this.versionMismatch = true;
    if (this.session.lobby) {
      const l = this.session.lobby;
      this.lostLobby = { id: l.id, name: l.name, code: l.code };
    }
    const again = this.options.autoReconnect && shouldReconnect(info.code) && !this.versionMismatch;
    // After a final close (kicked, a client fault...) the button starts over: it resumes
    // if the session still stands, but does not walk back into the lobby on its own.
    if (!again) this.lostLobby = null;
    if (again) {
      const delayMs = this.backoff.next();
      this.reconnect = { at: this.now() + delayMs, attempt: this.backoff.attempt, delayMs };
      this.setTimer_('reconnect', delayMs, () => {
        this.reconnect = null;
        this.open(this.session.sessionToken !== null);
      });
      this.setState(ConnState.Reconnecting);
    } else {
      this.reconnect = null;
      this.setState(ConnState.Disconnected);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  /** Sends a client message; false when not connected. */
  send(message) {
    return this.connection ? this.connection.send(message) : false;
  }

  received(m) {
    const now = this.now();
    if (m.type === 'Snapshot') {
      this.onSnapshot(m, now);
      return; // 30 times a second: no onChange (the frame loop reads the state)
    }
    if (m.type === 'SnapshotDelta') {
      this.onSnapshotDelta(m, now);
      return;
    }
    const wasInLobby = this.session.lobby !== null;
    this.session.apply(m);
    switch (m.type) {
      case 'Welcome':
        this.onWelcome(m, now);
        break;
      case 'LobbyList':
        break;
      case 'Joined':
        if (this.leaveOnResume) {
          this.leaveOnResume = false;
          this.session.clearLobby();
          this.session.phase = Phase.Lobbyless;
          this.send({ type: 'LeaveLobby' });
          break;
        }
        this.onJoined(m, now);
        break;
      case 'Left':
        this.stopInputs();
        if (m.reason !== LeftReason.Requested) {
          const why = {
            [LeftReason.LobbyClosed]: 'The lobby closed.',
            [LeftReason.LobbyCrashed]: 'The lobby crashed and is gone.',
            [LeftReason.Kicked]: 'You were removed from the lobby.',
          };
          this.emit('left', why[m.reason] ?? `You left the lobby (${this.session.lastLeft.name}).`);
        }
        if (wasInLobby) this.listLobbiesSoon(true);
        break;
      case 'Pong':
        this.onPong(m, now);
        break;
      case 'Error':
        this.onError(m);
        break;
      case 'Notice':
        this.emit('notice', m.text);
        break;
      default:
        break;
    }
    this.changed();
  }

  onWelcome(m, now) {
    this.setState(ConnState.Online, false);
    this.backoff.reset();
    // Each connection starts with full snapshots; deltas are asked for per connection.
    this.deltasOn = this.options.deltaSnapshots && this.send({ type: 'Options', delta_snapshots: true });
    this.welcomedName = this.options.name;
    if (this.clock.tickRate !== m.tick_rate) this.clock.setTickRate(m.tick_rate);
    this.startPings();
    const lost = this.lostLobby;
    this.lostLobby = null;
    if (this.resuming && !this.resumeFailed) {
      // Same player: if it was in a lobby, the server sends a fresh Joined for it.
      if (lost && this.session.lobby) {
        this.setTimer_('resume-join', RESUME_JOIN_WAIT_MS, () => {
          if (this.session.lobby && this.session.lobby.id === lost.id && this.inputs === null) {
            this.session.clearLobby();
            this.session.phase = Phase.Lobbyless;
            this.emit('error', `Your place in ${lost.name} was lost.`);
            this.listLobbiesSoon(true);
            this.changed();
          }
        });
      }
    } else {
      // A new player: whatever lobby the old session was in is not ours any more.
      this.leaveOnResume = false;
      this.session.clearLobby();
      this.session.phase = Phase.Lobbyless;
      if (lost) {
        this.emit('info', `Session expired; rejoining ${lost.name}…`);
        this.request('rejoin', {
          type: 'JoinLobby',
          target: lost.code ? { type: 'Code', value: lost.code } : { type: 'Id', value: lost.id },
        });
      }
    }
    const after = this.afterWelcome;
    this.afterWelcome = null;
    if (after && !this.session.lobby && !this.pendingOp) after();
    if (!this.session.lobby && !this.pendingOp) this.listLobbiesSoon(true);
  }

  onJoined(m, now) {
    this.pendingOp = null;
    this.cancelTimer('resume-join');
    this.cancelTimer('list');
    this.resetNetcode(this.tickRate, { width: m.world_width, height: m.world_height });
    this.startInputs(now);
    this.ping();
  }

  onError(m) {
    const known = nameOf(ErrorCode, m.code);
    this.lastConnectionError = { code: m.code, name: known ?? 'Unknown', message: m.message, at: this.now() };
    switch (m.code) {
      case ErrorCode.ResumeFailed:
        this.resumeFailed = true;
        return; // a Welcome as a new player follows; onWelcome says what happens next
      case ErrorCode.VersionMismatch:
        this.versionMismatch = true;
        return; // the close that follows shows it
      case ErrorCode.LobbyNotFound:
      case ErrorCode.LobbyFull:
      case ErrorCode.InvalidName:
      case ErrorCode.InvalidArgument:
      case ErrorCode.ServerFull:
        if (this.pendingOp) {
          const rejoin = this.pendingOp.kind === 'rejoin';
          this.pendingOp = null;
          this.emit('error', rejoin ? `Could not rejoin: ${m.message}` : capitalize(m.message));
          if (!this.session.lobby) this.listLobbiesSoon(true);
          return;
        }
        break;
      case ErrorCode.LobbyClosed:
        if (this.session.lobby) return; // the Left that follows says it
        break;
      default:
        if (FATAL_ERRORS.has(m.code)) return; // the close that follows shows it
        break;
    }
    this.emit('error', `${known ?? `Error ${m.code}`}: ${m.message}`);
  }

  // ---------------------------------------------------------------------------------------
  // Lobby requests. Only one at a time: a second QuickJoin sent before the first is
  // answered would arrive in a lobby and be a protocol violation (the server closes).

  /** True while a lobby request waits for its answer. */
  get busy() {
    return this.pendingOp !== null;
  }

  quickJoin() {
    return this.lobbyRequest('quick', { type: 'QuickJoin' });
  }

  createLobby({ name, maxPlayers, private: priv }) {
    return this.lobbyRequest('create', {
      type: 'CreateLobby',
      name,
      max_players: maxPlayers,
      private: Boolean(priv),
    });
  }

  joinLobby(id) {
    return this.lobbyRequest('join', { type: 'JoinLobby', target: { type: 'Id', value: id } });
  }

  joinCode(code) {
    return this.lobbyRequest('join', { type: 'JoinLobby', target: { type: 'Code', value: code } });
  }

  leaveLobby() {
    if (!this.session.lobby) return false;
    this.stopInputs();
    this.cancelTimer('resume-join');
    const sent = this.online && this.send({ type: 'LeaveLobby' });
    if (!sent) {
      // Not connected: the server still holds the seat for a resume, which will bring a
      // Joined for it; leave it then.
      this.lostLobby = null;
      this.leaveOnResume = true;
    }
    this.session.clearLobby();
    this.session.phase = this.online ? Phase.Lobbyless : this.session.phase;
    this.listLobbiesSoon(true);
    this.changed();
    return true;
  }

  /**
   * Sends a lobby request now, or, when the name changed since Welcome (the server takes
   * the name from Hello) or the connection is down, after the next Welcome.
   */
  lobbyRequest(kind, message) {
    if (this.pendingOp || this.session.lobby) return false;
    const run = () => this.request(kind, message);
    if (this.online && this.welcomedName === this.options.name) return run();
    if (this.online) {
      this.connect(this.options.name); // a new name is a new session
    } else if (this.state === ConnState.Idle) {
      this.connect(this.options.name);
    } else if (this.state === ConnState.Disconnected) {
      this.reconnectNow();
    } // else connecting or reconnecting: the request waits for the Welcome
    this.afterWelcome = run;
    this.changed();
    return true;
  }

  request(kind, message) {
    if (!this.send(message)) return false;
    this.pendingOp = { kind, at: this.now() };
    this.cancelTimer('list');
    this.setTimer_('lobby-op', LOBBY_OP_TIMEOUT_MS, () => {
      if (this.pendingOp?.kind === kind) {
        this.pendingOp = null;
        this.emit('error', 'The server did not answer; try again.');
        this.changed();
      }
    });
    this.changed();
    return true;
  }

  /**
   * Asks for the lobby list now if the last request is old enough, else when it is, and
   * keeps it fresh every LOBBY_REFRESH_MS while not in a lobby.
   */
  listLobbiesSoon(keepRefreshing = true) {
    if (!this.online || this.session.lobby) return;
    const wait = Math.max(0, this.lastListAt + LOBBY_REFRESH_MS - this.now());
    this.setTimer_('list', wait, () => {
      if (!this.online || this.session.lobby) return;
      if (!this.pendingOp && this.send({ type: 'ListLobbies' })) this.lastListAt = this.now();
      if (keepRefreshing) this.listLobbiesSoon(true);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Pings

  startPings() {
    this.ping();
    const interval = () => PING_INTERVAL_MS + (this.random() - 0.5) * PING_SPREAD_MS;
    const loop = () => {
      this.ping();
      this.setTimer_('ping', interval(), loop);
    };
    this.setTimer_('ping', interval(), loop);
  }

  ping() {
    if (!this.connected) return;
    const now = this.now();
    const clientTime = Math.floor(now) % U32;
    this.pings.set(clientTime, now);
    if (this.pings.size > 16) this.pings.delete(this.pings.keys().next().value);
    this.send({ type: 'Ping', client_time: clientTime });
  }

  onPong(m, now) {
    const sent = this.pings.get(m.client_time) ?? now - (((Math.floor(now) - m.client_time) % U32) + U32) % U32;
    this.pings.delete(m.client_time);
    this.session.rttMs = Math.round(now - sent);
    if (m.server_tick > 0 && !this.session.lobby) return; // from a lobby just left
    this.clock.onPong(sent, now, this.session.lobby ? m.server_tick : 0);
  }

  // ---------------------------------------------------------------------------------------
  // Netcode: inputs, snapshots, frames

  resetNetcode(tickRate, world) {
    const worldRule = {
      width: world.width ?? world.SIZE ?? Arena.SIZE,
      height: world.height ?? world.SIZE ?? Arena.SIZE,
      SPEED: Arena.SPEED,
      RADIUS: Arena.RADIUS,
    };
    const step = (state, input, dt) => arenaStep(state, input, dt, worldRule);
    this.world = worldRule;
    this.dt = tickSeconds(tickRate);
    this.predictor = new Predictor({ step, dt: this.dt });
    this.smoother = new Smoother({ step, tickSeconds: this.dt });
    const r = Arena.RADIUS;
    this.buffer = new SnapshotBuffer({
      clamp: (x, y) => ({
        x: Math.min(Math.max(x, r), worldRule.width - r),
        y: Math.min(Math.max(y, r), worldRule.height - r),
      }),
    });
    this.clock.resetArrivals();
    for (const meter of [this.meters.snapshots, this.meters.corrections, this.meters.deltas]) meter.reset();
    this.snapshotGaps = 0;
    this.lastCorrection = null;
    this.lastSnapshotTick = null;
    this.inputSeq = 0;
    this.inputs = null;
  }

  startInputs(now) {
    this.stopInputs();
    this.inputs = { started: now };
    this.nextInputAt = now;
    this.sendInput();
    this.scheduleInput();
  }

  stopInputs() {
    this.cancelTimer('input');
    this.inputs = null;
  }

  // One input per tick. The timer also nudges its phase (by at most a tenth of a tick per
  // input) so that inputs reach the server mid-tick, as far as possible from the tick
  // edges where a little jitter makes an input miss its tick.
  scheduleInput() {
    const period = 1000 / this.tickRate;
    const now = this.now();
    let next = this.nextInputAt + period;
    if (next < now - period / 2) next = now; // throttled (background tab): no burst
    const error = this.clock.inputPhaseError(next);
    if (error !== null) next -= Math.max(-MAX_PHASE_NUDGE, Math.min(MAX_PHASE_NUDGE, error)) * period;
    this.nextInputAt = next;
    this.setTimer_('input', Math.max(0, next - now), () => {
      this.sendInput();
      this.scheduleInput();
    });
  }

  /** Samples the direction and sends the next Input; applies it to the prediction. */
  sendInput() {
    if (!this.inputs || !this.connected || !this.session.lobby) return;
    const d = this.options.direction?.() ?? { x: 0, y: 0 };
    const seq = this.inputSeq >= U32 - 1 ? 1 : this.inputSeq + 1;
    const input = { type: 'Input', seq, dir_x: Math.fround(d.x), dir_y: Math.fround(d.y), buttons: 0 };
    if (!this.send(input)) return;
    this.inputSeq = seq;
    const before = this.predictor.state;
    this.predictor.applyInput(seq, input);
    this.smoother.input(before);
  }

  // A delta against the previous snapshot this connection received (over TCP, always the
  // one before it): rebuilt into a full snapshot. One that does not fit means the two
  // sides disagree about the baseline; full snapshots from then on are the safe way out.
  onSnapshotDelta(m, now) {
    if (!this.session.lobby) return;
    const base = this.session.snapshot;
    let entities = null;
    if (base && base.tick === m.baseline) {
      try {
        entities = applyDelta(base.entities, m);
      } catch {
        entities = null;
      }
    }
    if (!entities) {
      if (this.deltasOn) {
        this.deltasOn = false;
        this.send({ type: 'Options', delta_snapshots: false });
        this.emit('error', `A delta snapshot did not fit (baseline ${m.baseline}); back to full snapshots.`);
      }
      return;
    }
    this.meters.deltas.add(now);
    this.onSnapshot({ type: 'Snapshot', ack_seq: m.ack_seq, tick: m.tick, baseline: 0, entities }, now);
  }

  onSnapshot(m, now) {
    const lobby = this.session.lobby;
    if (!lobby) return; // in flight when we left
    this.session.apply(m);
    this.meters.snapshots.add(now);
    if (this.lastSnapshotTick !== null && m.tick > this.lastSnapshotTick + 1) {
      this.snapshotGaps += m.tick - this.lastSnapshotTick - 1;
    }
    this.lastSnapshotTick = m.tick;
    this.clock.onSnapshot(m.tick, now);
    const entities = worldEntities(m, lobby);
    this.buffer.push(m.tick, entities);
    const mine = entities.find((e) => e.id === this.session.myEntity);
    if (!mine || !this.inputs) return;
    const result = this.predictor.reconcile(m.tick, m.ack_seq, mine);
    if (!result.delta) {
      this.smoother.correct(0, 0, result.state);
    } else if (result.delta.size > 0) {
      this.smoother.correct(result.delta.dx, result.delta.dy);
    }
    if (result.correction) {
      this.meters.corrections.add(now, result.correction.size);
      this.lastCorrection = result.correction.size;
    }
  }

  /**
   * Computes what to draw at `now` (call once per animation frame). Returns and keeps in
   * `this.view`: {
   *   renderTick, mode ('interpolate' | 'extrapolate' | 'hold' | 'early' | 'empty'),
   *   entities: [{id, name, x, y, flags, it, me}] in world units (own entity predicted),
   *   me: {x, y} drawn, predicted: {x, y} after the newest input, server: {x, y} last
   *   authoritative, or null each,
   * }
   */
  frame(now = this.now()) {
    this.frameCount++;
    const frameMs = this.lastFrameAt === null ? 0 : Math.min(Math.max(now - this.lastFrameAt, 0), 250);
    this.lastFrameAt = now;
    const session = this.session;
    if (!session.lobby) {
      this.view = emptyView();
      return this.view;
    }
    const renderTick = this.clock.renderTick(now, this.buffer.newestTick);
    const sample = renderTick === null ? { mode: 'empty', entities: [] } : this.buffer.sample(renderTick, this.dt);
    if (renderTick !== null) this.buffer.discardBefore(renderTick - 1);
    // The own entity moves with the held keys only while inputs flow (not while reconnecting).
    const held = this.inputs && this.connected ? (this.options.heldDirection ?? this.options.direction)?.() : null;
    const me = this.smoother.frame(frameMs, held);
    const myId = session.myEntity;
    const entities = [];
    let mine = null;
    for (const e of sample.entities) {
      if (e.id === myId) mine = e;
      else entities.push(decorate(session, e, false));
    }
    mine ??= this.buffer.newest?.entities.get(myId) ?? null;
    if (mine) {
      // Predicted where the prediction has started; interpolated until then.
      const at = me ?? mine;
      entities.push(decorate(session, { id: myId, x: at.x, y: at.y, flags: mine.flags }, true));
    }
    const predicted = this.predictor.state;
    const server = this.predictor.server;
    this.view = {
      renderTick,
      mode: sample.mode,
      entities,
      me: me ? { x: me.x, y: me.y } : null,
      predicted: predicted ? { x: predicted.x, y: predicted.y } : null,
      server: server ? { x: server.x, y: server.y } : null,
    };
    return this.view;
  }

  /** Net stats for the overlay (all numbers; null when unknown). */
  stats(now = this.now()) {
    const clock = this.clock;
    const period = 1000 / this.tickRate;
    const newest = this.buffer.newestTick;
    const renderTick = this.view.renderTick;
    const serverTick = clock.serverTick(now);
    return {
      rttMs: this.session.rttMs,
      minRttMs: clock.minRttMs(),
      snapshotsPerSec: this.meters.snapshots.eventRate(now),
      deltaShare: this.meters.snapshots.count(now) ? this.meters.deltas.count(now) / this.meters.snapshots.count(now) : null,
      snapshotGaps: this.snapshotGaps,
      kbInPerSec: this.meters.bytesIn.rate(now) / 1000,
      kbOutPerSec: this.meters.bytesOut.rate(now) / 1000,
      correctionsPerSec: this.meters.corrections.eventRate(now),
      correctionAvg: this.meters.corrections.mean(now),
      correctionMax: this.meters.corrections.max(now),
      lastCorrection: this.lastCorrection,
      snaps: this.smoother.snaps,
      interpDelayMs: newest !== null && renderTick !== null ? (newest - renderTick) * period : null,
      interpTargetMs: clock.delay() * period,
      underruns: clock.stats.underruns,
      jitterMs: clock.stats.spreadTicks * period,
      renderMode: this.view.mode,
      serverTick: serverTick === null ? null : Math.floor(serverTick),
      snapshotTick: newest,
      renderTick,
      downMs: clock.latencyMs(now),
      pendingInputs: this.predictor.pending.length,
      inputLagTicks: this.predictor.lag,
      inputSeq: this.inputSeq,
      ackSeq: this.predictor.ackSeq,
      tickRate: this.tickRate,
      conditioner: this.options.conditioner ?? null,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Plumbing

  setState(state, notify = true) {
    this.state = state;
    if (notify) this.changed();
  }

  setTimer_(name, ms, fn) {
    this.cancelTimer(name);
    const id = this.setTimer(() => {
      if (this.timers.get(name) === id) this.timers.delete(name);
      fn();
    }, ms);
    this.timers.set(name, id);
  }

  cancelTimer(name) {
    const id = this.timers.get(name);
    if (id !== undefined) this.clearTimer(id);
    this.timers.delete(name);
  }

  stopTimers() {
    for (const name of [...this.timers.keys()]) if (name !== 'reconnect') this.cancelTimer(name);
    this.inputs = null;
  }

  emit(kind, text) {
    this.options.onEvent?.({ kind, text });
  }

  changed() {
    this.options.onChange?.();
  }
}

function emptyView() {
  return { renderTick: null, mode: 'empty', entities: [], me: null, predicted: null, server: null };
}

function decorate(session, e, me) {
  return {
    id: e.id,
    name: session.nameOf(e.id),
    x: e.x,
    y: e.y,
    flags: e.flags,
    it: (e.flags & FLAG_IT) !== 0,
    me,
  };
}

function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
