// The client's view of the protocol state: what the server has told it so far. Pure (no
// DOM, no socket, no clock), so it runs under `node --test`; client.js builds prediction
// and interpolation on top of it.
//
// Protocol 2: `Joined` carries the lobby's schema; the session decodes it, compiles it
// for the lobby's player cap (state/codec.js), picks the game module by the schema's
// name (games/index.js) and keeps a ClientState (state/client-state.js) that each
// snapshot frame updates. Players are known by seat.

import { ErrorCode, LeftReason, ServerFrameTag, nameOf } from './codec.js';
import { resolveGame } from './game.js';
import { gameModule } from './games/index.js';
import { ClientState } from './state/client-state.js';
import { Codec } from './state/codec.js';
import { decodeEvent } from './state/io.js';
import { decodeSchema, fnv1a64, hashFromBytes } from './state/schema.js';

/** Lifecycle of a session, as far as the protocol goes. */
export const Phase = Object.freeze({
  /** No connection yet. */
  Idle: 'idle',
  /** The WebSocket is opening. */
  Connecting: 'connecting',
  /** Hello sent, waiting for Welcome. */
  Handshaking: 'handshaking',
  /** Welcomed, not in a lobby. */
  Lobbyless: 'lobbyless',
  /** In a lobby. */
  InLobby: 'in-lobby',
  /** The connection is gone. */
  Closed: 'closed',
});

/** Events kept for the feed. */
const MAX_EVENTS = 20;

export class Session {
  constructor() {
    this.reset();
  }

  /** Forgets everything (a new connection as a new player). */
  reset() {
    this.phase = Phase.Idle;
    /** From Welcome. */
    this.playerId = null;
    this.sessionToken = null;
    this.tickRate = null;
    this.serverProtocolVersion = null;
    this.clearLobby();
    /** The last Error: {code, name, message}. */
    this.lastError = null;
    /** The last Left: {reason, name}. */
    this.lastLeft = null;
    /** The last Notice text. */
    this.lastNotice = null;
    /** The last MatchEnded: {summary, results: [{seat, name, score, place}]}. */
    this.matchEnded = null;
    /** The last LobbyList (for a lobby browser). */
    this.lobbies = [];
    /** Round-trip time from the last Pong, in ms. */
    this.rttMs = null;
  }

  clearLobby() {
    /** {id, name, code, maxPlayers, seat, joinedTick, game, schemaHash} */
    this.lobby = null;
    /** This player's seat in the lobby. */
    this.seat = null;
    /** seat -> {seat, playerId, name} */
    this.players = new Map();
    /** The lobby's schema compiled (state/codec.js Codec), the game, the state. */
    this.codec = null;
    this.game = null;
    this.state = null;
    /** Why the lobby's schema could not be used (then nothing of the game decodes). */
    this.schemaError = null;
    /** The last applied snapshot: {tick, full, ackSeq, created, changed, removed}. */
    this.applied = null;
    /** Recent game events, newest last: [{tick, type, values, text}]. */
    this.events = [];
  }

  /** Updates the state with one decoded control message (frames: applySnapshot / applyEvent). */
  apply(m) {
    switch (m.type) {
      case 'Welcome':
        this.playerId = m.player_id;
        this.sessionToken = m.session_token;
        this.tickRate = m.tick_rate;
        this.serverProtocolVersion = m.protocol_version;
        this.phase = this.lobby ? Phase.InLobby : Phase.Lobbyless;
        break;
      case 'LobbyList':
        this.lobbies = m.lobbies;
        break;
      case 'Joined':
        this.join(m);
        break;
      case 'PlayerJoined':
        this.addPlayer(m);
        break;
      case 'PlayerLeft':
        this.players.delete(m.seat);
        break;
      case 'Pong':
        break;
      case 'Error':
        this.lastError = { code: m.code, name: nameOf(ErrorCode, m.code) ?? 'Unknown', message: m.message };
        break;
      case 'Left':
        this.lastLeft = { reason: m.reason, name: nameOf(LeftReason, m.reason) ?? 'Unknown' };
        this.clearLobby();
        if (this.phase === Phase.InLobby) this.phase = Phase.Lobbyless;
        break;
      case 'Notice':
        this.lastNotice = m.text;
        break;
      case 'MatchEnded':
        this.matchEnded = { summary: m.summary, results: m.results.map((r) => ({ ...r })) };
        break;
      default:
        break;
    }
  }

  join(m) {
    this.clearLobby();
    this.matchEnded = null;
    let schema = null;
    try {
      const hash = hashFromBytes(m.schema_hash);
      if (fnv1a64(m.schema) !== hash) throw new Error(`the schema's hash is ${fnv1a64(m.schema)}, Joined says ${hash}`);
      schema = decodeSchema(m.schema);
      this.codec = new Codec(schema, m.max_players);
      this.game = resolveGame(gameModule(schema.game), this.codec);
      this.state = new ClientState(this.codec, m.seat, ServerFrameTag.Snapshot);
    } catch (e) {
      this.schemaError = e.message;
      this.codec = null;
      this.game = null;
      this.state = null;
    }
    this.lobby = {
      id: m.lobby_id,
      name: m.name,
      code: m.code,
      maxPlayers: m.max_players,
      seat: m.seat,
      joinedTick: m.tick,
      game: schema?.game ?? null,
      schemaHash: hashFromBytes(m.schema_hash),
    };
    this.seat = m.seat;
    for (const p of m.players) this.addPlayer(p);
    this.phase = Phase.InLobby;
  }

  /**
   * Applies a snapshot frame's bytes to the lobby's state. Returns what it did ({tick,
   * full, ackSeq, created, changed, removed}); throws StateDecodeError (the state is
   * then unchanged), or Error when the lobby has no usable schema.
   */
  applySnapshot(bytes) {
    if (!this.state) throw new Error(this.schemaError ?? 'not in a lobby');
    this.applied = this.state.apply(bytes);
    return this.applied;
  }

  /** Decodes an event frame and keeps it for the feed. Returns {tick, type, values, text}. */
  applyEvent(bytes) {
    if (!this.codec) throw new Error(this.schemaError ?? 'not in a lobby');
    const e = decodeEvent(this.codec, ServerFrameTag.Event, bytes);
    const text = this.game.describeEvent(e, (seat) => this.nameOf(seat));
    const event = { tick: e.tick, type: e.type, values: e.values, text };
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.shift();
    return event;
  }

  addPlayer(p) {
    this.players.set(p.seat, { seat: p.seat, playerId: p.player_id, name: p.name });
  }

  /** A player's display name by seat. */
  nameOf(seat) {
    return this.players.get(seat)?.name ?? (seat ? `#${seat}` : 'nobody');
  }

  /** The entity this player controls (of the game's controlled kind), or null. */
  myEntity() {
    if (!this.state) return null;
    for (const e of this.state.entities.values()) {
      if (e.controlledBy === this.seat && (this.game.controlled < 0 || e.kind === this.game.controlled)) return e;
    }
    return null;
  }

  /** The lobby state as {field: value} (empty outside a lobby). */
  lobbyValues() {
    return this.state ? this.state.lobbyValues() : {};
  }

  /** This player's private state as {field: value}. */
  privateValues() {
    return this.state ? this.state.privateValues() : {};
  }

  /**
   * The scoreboard, best first: [{seat, name, score, me}], from the game's score field
   * of the entities players control; every player in the lobby has a row.
   */
  scoreboard() {
    if (!this.state || !this.game?.score) return [];
    const scores = new Map();
    for (const e of this.state.entities.values()) {
      if (!e.controlledBy) continue;
      const row = this.codec.kinds[e.kind];
      const i = row.index.get(this.game.score);
      if (i === undefined) continue;
      scores.set(e.controlledBy, row.fieldValue(i, e.row));
    }
    return [...this.players.values()]
      .map((p) => ({ seat: p.seat, name: p.name, score: scores.get(p.seat) ?? 0, me: p.seat === this.seat }))
      .sort((a, b) => b.score - a.score || a.seat - b.seat);
  }
}
