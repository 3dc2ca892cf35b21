// The game client without the page: the connection and its lifecycle (Hello, resume,
// reconnect with backoff), the lobby flow, one Input per tick, Pings, and the netcode
// that turns the snapshot stream into what to draw each frame (prediction for the local
// player, interpolation for the others). No DOM: the page supplies the controls, calls
// `frame(now)` from requestAnimationFrame and reacts to `onChange` / `onEvent`.
//
// The netcode knows no game (protocol 2): the lobby's schema (in Joined) says what the
// state, the input, the messages and the events are; the game module the schema names
// (games/*.js, resolved by game.js) supplies the prediction step of the controlled
// entity and how controls map to input fields; interpolation follows the declared field
// types.
// Timers, clock, randomness and the WebSocket class are injectable, so the whole flow
// runs in Node against a fake socket.

import { ClientFrameTag, CloseCode, ErrorCode, LeftReason, PROTOCOL_VERSION, nameOf } from './codec.js';
import { TickClock } from './clock.js';
import { LinkConditioner } from './conditioner.js';
import { Connection, resolveRedirectUrl } from './connection.js';
import { buildInput } from './game.js';
import { SnapshotBuffer, fieldMixer } from './interpolation.js';
import { Predictor, Smoother, tickSeconds } from './prediction.js';
import { Backoff, closeCodeText, describeClose, shouldReconnect } from './reconnect.js';
import { Phase, Session } from './session.js';
import { StateDecodeError } from './state/client-state.js';
import { encodeInput, encodeMessage } from './state/io.js';
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
/**
 * Redirects followed in a row without landing in a lobby (cluster mode): two nodes that
 * disagree about where a lobby or a session lives must not bounce a client forever.
 */
export const MAX_REDIRECTS = 3;
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

/** Controls that hold nothing (before the page supplies its own). */
const NO_CONTROLS = Object.freeze({
  sample: () => ({ x: 0, y: 0 }),
  direction: () => ({ x: 0, y: 0 }),
  button: () => ({ held: false, presses: 0 }),
});

/**
 * A ticksync client.
 *
 * options: {
 *   url,                        the WebSocket URL (see connection.js serverUrl): the home
 *                               node; a Redirect (cluster mode) moves the client to another
 *                               node's URL until an error sends it home
 *   pageOrigin,                 what a relative Redirect URL is resolved against (default:
 *                               the page's origin, else the home URL)
 *   name,                       the display name sent in Hello
 *   controls,                   {sample(), direction(), button(name)}: input.js Controls (the
 *                               direction to send once per tick, the one held now, and the
 *                               buttons with their press counters)
 *   aimAt() -> {x, y} | null,   the world point the player aims at (the pointer), or null
 *   conditioner,                {lagMs, jitterMs} for a LinkConditioner, or null
 *   deltaSnapshots = true,      delta snapshots (the default of protocol 2); false sends
 *                               Options asking for full snapshots after each Welcome
 *   autoReconnect = true,
 *   onChange(),                 the state changed (a message arrived, the connection moved on)
 *   onEvent({kind, text}),      something to tell the player: kind 'error' | 'notice' | 'info' |
 *                               'left' | 'game' (a game event's line) | 'match' (a match ended)
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
    /** The URL connected to now: options.url (home), or the node a Redirect sent us to. */
    this.url = options.url;
    /**
     * A Redirect being followed: {url, reservation} from the Redirect until the
     * Joined (or the error) that answers its JoinReserved on the new node.
     */
    this.redirecting = null;
    /** Redirects followed in a row without landing in a lobby (at most MAX_REDIRECTS). */
    this.redirectHops = 0;
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
    /** The aim angle sent last (kept while the pointer is away). */
    this.lastAim = 0;
    this.resetNetcode(30, null);
  }

  /** The seq of the newest input the server has applied (from the last snapshot). */
  get ackSeq() {
    return this.session.state?.ackSeq ?? 0;
  }

  /** The lobby's game (game.js resolveGame), or null outside a lobby. */
  get game() {
    return this.session.game;
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
    this.redirecting = null;
    this.redirectHops = 0;
    this.url = this.options.url;
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
    this.redirecting = null;
    this.redirectHops = 0;
    this.url = this.options.url;
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
      this.url,
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
    if (this.redirecting) {
      // The node a Redirect named is unreachable, refused us, or dropped us before the
      // JoinReserved was answered: the reservation cannot be trusted to still stand.
      const error = this.lastConnectionError;
      const why = error ? error.message : `${info.code} ${closeCodeText(info.code)}`;
      this.returnHome(`Could not reach the lobby's server (${why}); back to the lobby list.`);
      return;
    }
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
    if (m.type === 'Event') {
      this.onGameEvent(m);
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
            [LeftReason.MatchEnded]: 'The match is over; the lobby closed.',
          };
          this.emit('left', why[m.reason] ?? `You left the lobby (${this.session.lastLeft.name}).`);
        }
        if (wasInLobby) this.listLobbiesSoon(true);
        break;
      case 'Pong':
        this.onPong(m, now);
        break;
      case 'Redirect':
        this.onRedirect(m);
        return; // onRedirect has said what changed
      case 'Error':
        this.onError(m);
        break;
      case 'Notice':
        this.emit('notice', m.text);
        break;
      case 'MatchEnded': {
        const winner = m.results.find((r) => r.place === 1);
        this.emit('match', `${m.summary}${winner ? ` — ${winner.name} wins` : ''}`);
        break;
      }
      default:
        break;
    }
    this.changed();
  }

  onWelcome(m, now) {
    this.setState(ConnState.Online, false);
    this.backoff.reset();
    // Deltas are protocol 2's default on every connection; a page that wants full
    // snapshots asks per connection.
    this.deltasOn = this.options.deltaSnapshots;
    if (!this.deltasOn) this.send({ type: 'Options', delta_snapshots: false });
    this.welcomedName = this.options.name;
    if (this.clock.tickRate !== m.tick_rate) this.clock.setTickRate(m.tick_rate);
    this.startPings();
    const lost = this.lostLobby;
    this.lostLobby = null;
    if (this.redirecting) {
      // A new player on the lobby's node: redeem the seat reserved for us.
      this.afterWelcome = null;
      this.session.clearLobby();
      this.session.phase = Phase.Lobbyless;
      const { reservation } = this.redirecting;
      if (!this.request('redirect', { type: 'JoinReserved', reservation })) {
        this.returnHome("Could not reach the lobby's server; back to the lobby list.");
      }
      return;
    }
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
    // Landed: a drop from now on resumes here, on this node, with its token.
    this.redirecting = null;
    this.redirectHops = 0;
    this.cancelTimer('resume-join');
    this.cancelTimer('list');
    this.resetNetcode(this.tickRate, this.session.game);
    if (this.session.schemaError) {
      // Nothing of this lobby's game decodes: say so and leave it.
      this.emit('error', `This lobby's game cannot be played here: ${this.session.schemaError}`);
      this.leaveLobby();
      return;
    }
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
      case ErrorCode.JoinRefused:
      case ErrorCode.ClusterUnavailable:
      case ErrorCode.ReservationFailed:
        if (this.pendingOp?.kind === 'redirect') {
          // The lobby's node refused the reserved seat: the player goes back where it came from.
          this.returnHome(`Could not join the lobby on its server: ${m.message}. Back to the lobby list.`);
          return;
        }
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
  // Redirects (cluster mode). A join for a lobby on another node is answered `Redirect {url,
  // reservation}`: close this connection normally, connect to `url` as a new player there,
  // Hello, then `JoinReserved {reservation}`; the Joined lands in the lobby as a direct join
  // would, and from then on the client lives on that node (a drop resumes there, with that
  // node's session token). An empty reservation answers a resume sent to the wrong node:
  // resume at `url` with the same token. Any failure on the way goes back to the home node.

  onRedirect(m) {
    if (m.reservation === '' && this.resuming && this.session.phase === Phase.Handshaking) {
      this.followRedirect(m, true); // our resume token belongs to another node
    } else if (m.reservation !== '' && this.pendingOp) {
      this.followRedirect(m, false); // a join (or, misconfigured, a JoinReserved) sent on
    } else {
      this.emit('error', 'The server sent a redirect nobody asked for; ignored.');
      this.changed();
    }
  }

  followRedirect(m, resume) {
    const url = resolveRedirectUrl(m.url, this.pageOrigin(), this.url);
    if (url === null) {
      this.giveUpRedirect(`The server sent the client to an address it cannot use (${JSON.stringify(m.url)}).`);
      return;
    }
    if (this.redirectHops >= MAX_REDIRECTS) {
      this.giveUpRedirect(`Too many redirects in a row (${this.redirectHops}); the servers disagree about where the lobby is.`);
      return;
    }
    this.redirectHops++;
    this.closeQuietly(); // a normal close: this node frees the player at once
    this.url = url;
    if (resume) {
      // Same session, on the node that holds it.
      this.redirecting = null;
    } else {
      this.redirecting = { url, reservation: m.reservation };
      this.session.reset(); // a new player on the lobby's node
      this.lostLobby = null;
      this.leaveOnResume = false;
      this.afterWelcome = null;
      this.emit('info', 'The lobby is on another server; connecting…');
    }
    try {
      this.open(resume);
    } catch (e) {
      // The WebSocket constructor refused the URL (a page policy, a malformed address).
      this.returnHome(`Could not connect to the lobby's server (${e.message}); back to the lobby list.`);
    }
  }

  /** A redirect that cannot be followed: say why and stay on, or go back to, the home node. */
  giveUpRedirect(text) {
    if (this.url === this.options.url && this.connected && !this.redirecting) {
      this.pendingOp = null;
      this.cancelTimer('lobby-op');
      this.emit('error', `${text} Back to the lobby list.`);
      this.listLobbiesSoon(true);
      this.changed();
      return;
    }
    this.returnHome(`${text} Back to the lobby list.`);
  }

  /** Goes back to the home node as a new player, in its lobby list, after saying why. */
  returnHome(text) {
    this.emit('error', text);
    this.closeQuietly();
    this.redirecting = null;
    this.redirectHops = 0;
    this.session.reset();
    this.lostLobby = null;
    this.leaveOnResume = false;
    this.afterWelcome = null;
    this.url = this.options.url;
    this.open(false);
  }

  /** The origin a relative redirect URL is resolved against: the page's, if there is a page. */
  pageOrigin() {
    return this.options.pageOrigin ?? globalThis.location?.origin ?? null;
  }

  // ---------------------------------------------------------------------------------------
  // Lobby requests. Only one at a time: a second QuickJoin sent before the first is
  // answered would arrive in a lobby and be a protocol violation (the server closes).

  /** True while a lobby request waits for its answer. */
  get busy() {
    return this.pendingOp !== null;
  }

  /** Joins any lobby with room (or a new one); `options` [[key, value]] go to the game. */
  quickJoin(options = []) {
    return this.lobbyRequest('quick', { type: 'QuickJoin', options });
  }

  createLobby({ name, maxPlayers, private: priv, options = [] }) {
    return this.lobbyRequest('create', {
      type: 'CreateLobby',
      name,
      max_players: maxPlayers,
      private: Boolean(priv),
      options,
    });
  }

  joinLobby(id, options = []) {
    return this.lobbyRequest('join', { type: 'JoinLobby', target: { type: 'Id', value: id }, options });
  }

  joinCode(code, options = []) {
    return this.lobbyRequest('join', { type: 'JoinLobby', target: { type: 'Code', value: code }, options });
  }

  /**
   * Sends a game message of `type` (its name in the schema) with `values` by field name.
   * Returns false when not in a lobby, not connected, or the game has no such message.
   */
  sendGameMessage(type, values = {}) {
    const codec = this.session.codec;
    if (!codec || !this.session.lobby || codec.messageIndex(type) < 0) return false;
    return this.send({ type: 'GameMessage', bytes: encodeMessage(codec, ClientFrameTag.GameMessage, type, values) });
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
    if (this.pendingOp || this.session.lobby || this.redirecting) return false;
    this.redirectHops = 0; // the player's own request: a fresh count of redirects
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
        if (kind === 'redirect') {
          this.returnHome("The lobby's server did not answer; back to the lobby list.");
          return;
        }
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

  resetNetcode(tickRate, game) {
    this.dt = tickSeconds(tickRate);
    const codec = this.session.codec;
    const step = game?.predict ?? null;
    const position = game?.position;
    const withPosition = game?.withPosition;
    this.predicting = step !== null;
    const zeroInput = codec ? codec.input.values(codec.input.zero()) : {};
    this.predictor = new Predictor({ step, position, zeroInput, dt: this.dt });
    this.smoother = new Smoother({ step, position, withPosition, tickSeconds: this.dt });
    this.buffer = new SnapshotBuffer({
      mix: codec ? fieldMixer(codec) : undefined,
      extrapolate: game?.extrapolate ?? undefined,
    });
    this.clock.resetArrivals();
    for (const meter of [this.meters.snapshots, this.meters.corrections, this.meters.deltas]) meter.reset();
    this.snapshotGaps = 0;
    this.lastCorrection = null;
    this.lastSnapshotTick = null;
    this.inputSeq = 0;
    this.inputs = null;
    /** The id of the entity this player controls, once a snapshot showed it. */
    this.myEntityId = null;
    /** The last input sent, as the server will see it (quantized). */
    this.lastInput = zeroInput;
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

  // The aim angle: from the own entity (as drawn) to the point aimed at.
  aimAngle() {
    const target = this.options.aimAt?.() ?? null;
    const from = this.view.me ?? this.view.entities.find((e) => e.me) ?? null;
    if (!target || !from) return null;
    const dx = target.x - from.x;
    const dy = target.y - from.y;
    if (dx === 0 && dy === 0) return null;
    let a = Math.atan2(dy, dx);
    if (a < 0) a += 2 * Math.PI;
    return a;
  }

  /** The input values of the controls now (`held`: what is held, not the tick's sample). */
  inputValues(held) {
    const codec = this.session.codec;
    const game = this.session.game;
    if (!codec || !game) return {};
    const aim = game.aims ? this.aimAngle() : null;
    if (aim !== null && !held) this.lastAim = aim;
    return buildInput(codec.input, game.controls, this.options.controls ?? NO_CONTROLS, {
      held,
      aim,
      lastAim: this.lastAim,
    });
  }

  /** Samples the controls and sends the next Input; applies it to the prediction. */
  sendInput() {
    if (!this.inputs || !this.connected || !this.session.lobby || !this.session.codec) return;
    const codec = this.session.codec;
    const row = codec.input.fromValues(this.inputValues(false));
    const seq = this.inputSeq >= U32 - 1 ? 1 : this.inputSeq + 1;
    const serverTick = this.clock.serverTick(this.now());
    const clientTick = serverTick === null ? 0 : Math.max(0, Math.floor(serverTick)) % U32;
    const bytes = encodeInput(codec, ClientFrameTag.Input, seq, clientTick, row);
    if (!this.send({ type: 'Input', bytes })) return;
    this.inputSeq = seq;
    // What the server will see: the quantized values.
    const input = codec.input.values(row);
    this.lastInput = input;
    if (!this.predicting) return;
    const before = this.predictor.state;
    this.predictor.applyInput(seq, input);
    this.smoother.input(before);
  }

  // A snapshot frame: applied to the lobby's state (a delta against the previous snapshot
  // this connection received). One that does not fit means the two sides disagree about
  // the baseline; full snapshots from then on are the safe way out.
  onSnapshot(m, now) {
    const lobby = this.session.lobby;
    if (!lobby || !this.session.state) return; // in flight when we left
    let applied;
    try {
      applied = this.session.applySnapshot(m.bytes);
    } catch (e) {
      if (e instanceof StateDecodeError && e.kind === 'BaselineMismatch') {
        if (this.deltasOn) {
          this.deltasOn = false;
          this.send({ type: 'Options', delta_snapshots: false });
          this.emit('error', `A delta snapshot did not fit (${e.message}); back to full snapshots.`);
        }
      } else {
        this.emit('error', `An undecodable snapshot: ${e.message}`);
      }
      return;
    }
    this.meters.snapshots.add(now);
    if (!applied.full) this.meters.deltas.add(now);
    if (this.lastSnapshotTick !== null && applied.tick > this.lastSnapshotTick + 1) {
      this.snapshotGaps += applied.tick - this.lastSnapshotTick - 1;
    }
    this.lastSnapshotTick = applied.tick;
    this.clock.onSnapshot(applied.tick, now);
    const state = this.session.state;
    const codec = this.session.codec;
    const entities = [];
    for (const e of state.entities.values()) {
      entities.push({ id: e.id, kind: e.kind, controlledBy: e.controlledBy, values: codec.kinds[e.kind].values(e.row) });
    }
    this.buffer.push(applied.tick, entities);
    const mine = this.session.myEntity();
    if (mine && mine.id !== this.myEntityId) {
      // Another entity to control (a respawn as a new entity): the prediction starts
      // over from the server's state of it, keeping the inputs not yet acknowledged.
      if (this.myEntityId !== null) {
        this.predictor.state = null;
        this.smoother.reset();
      }
      this.myEntityId = mine.id;
    }
    if (!mine || !this.inputs || !this.predicting) return;
    const values = codec.kinds[mine.kind].values(mine.row);
    const result = this.predictor.reconcile(applied.tick, applied.ackSeq, values);
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

  onGameEvent(m) {
    if (!this.session.lobby || !this.session.codec) return;
    let event;
    try {
      event = this.session.applyEvent(m.bytes);
    } catch (e) {
      this.emit('error', `An undecodable game event: ${e.message}`);
      return;
    }
    if (event.text) this.emit('game', event.text);
    this.changed();
  }

  /**
   * Computes what to draw at `now` (call once per animation frame). Returns and keeps in
   * `this.view`: {
   *   renderTick, mode ('interpolate' | 'extrapolate' | 'hold' | 'early' | 'empty'),
   *   entities: [{id, kind, kindName, controlledBy, values, x, y, name, me, style}] (the own
   *   entity predicted, the others interpolated; x, y its position in world units),
   *   me: {x, y} drawn, predicted: {x, y} after the newest input, server: {x, y} last
   *   authoritative, or null each,
   * }
   */
  frame(now = this.now()) {
    this.frameCount++;
    const frameMs = this.lastFrameAt === null ? 0 : Math.min(Math.max(now - this.lastFrameAt, 0), 250);
    this.lastFrameAt = now;
    const session = this.session;
    const game = session.game;
    if (!session.lobby || !game) {
      this.view = emptyView();
      return this.view;
    }
    const renderTick = this.clock.renderTick(now, this.buffer.newestTick);
    const sample = renderTick === null ? { mode: 'empty', entities: [] } : this.buffer.sample(renderTick, this.dt);
    if (renderTick !== null) this.buffer.discardBefore(renderTick - 1);
    // The own entity moves with the held controls only while inputs flow (not while reconnecting).
    const playing = this.inputs && this.connected && this.predicting;
    const held = playing ? session.codec.input.values(session.codec.input.fromValues(this.inputValues(true))) : null;
    this.smoother.frame(frameMs, held);
    const drawn = this.predicting ? this.smoother.state : null;
    const myId = this.myEntityId;
    const entities = [];
    let mine = null;
    for (const e of sample.entities) {
      if (e.id === myId) mine = e;
      else entities.push(this.decorate(e, false));
    }
    mine ??= myId !== null ? (this.buffer.newest?.entities.get(myId) ?? null) : null;
    if (mine) {
      // Predicted where the prediction has started; interpolated until then.
      entities.push(this.decorate(drawn ? { ...mine, values: { ...mine.values, ...drawn } } : mine, true));
    }
    const predicted = this.predictor.state;
    const server = this.predictor.server;
    const pos = (s) => (s ? game.position(s) : null);
    const me = drawn ? game.position(drawn) : null;
    this.view = {
      renderTick,
      mode: sample.mode,
      entities,
      me: me ? { x: me.x, y: me.y } : null,
      predicted: predicted ? { ...pos(predicted) } : null,
      server: server ? { ...pos(server) } : null,
    };
    return this.view;
  }

  decorate(e, me) {
    const session = this.session;
    const game = session.game;
    const p = game.position(e.values);
    const row = session.codec.kinds[e.kind];
    const health = row?.index.has('health') ? row.fields[row.index.get('health')] : null;
    return {
      radius: game.radius(e.kind),
      healthMax: health?.type === 'Int' ? health.ty.max : null,
      id: e.id,
      kind: e.kind,
      kindName: session.codec.kinds[e.kind]?.name ?? '',
      controlledBy: e.controlledBy,
      values: e.values,
      x: p.x,
      y: p.y,
      name: e.controlledBy ? session.nameOf(e.controlledBy) : '',
      it: e.values.it === true,
      me,
      style: game.style(e),
    };
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
      ackSeq: this.ackSeq,
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

function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
