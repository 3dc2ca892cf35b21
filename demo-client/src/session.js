// The client's view of the protocol state: what the server has told it so far. Pure (no
// DOM, no socket, no clock), so it runs under `node --test`; client.js builds prediction
// and interpolation on top of it.

import { ErrorCode, LeftReason, nameOf, positionValue, velocityValue } from './codec.js';

/** Entity flag of the arena game: this player is "it". */
export const FLAG_IT = 1;

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

/** A snapshot's entities in world units, with the scales of `lobby` (from Joined). */
export function worldEntities(snapshot, lobby) {
  return snapshot.entities.map((e) => ({
    id: e.id,
    x: positionValue(e.x, lobby.worldWidth),
    y: positionValue(e.y, lobby.worldHeight),
    vx: velocityValue(e.vx, lobby.maxSpeed),
    vy: velocityValue(e.vy, lobby.maxSpeed),
    flags: e.flags,
  }));
}

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
    /** The last LobbyList (for a lobby browser). */
    this.lobbies = [];
    /** Round-trip time from the last Pong, in ms. */
    this.rttMs = null;
  }

  clearLobby() {
    /** {id, name, code, maxPlayers, worldWidth, worldHeight, maxSpeed, joinedTick} */
    this.lobby = null;
    this.myEntity = null;
    /** entity -> {entity, playerId, name} */
    this.players = new Map();
    /** entity -> score */
    this.scores = new Map();
    /** The latest Snapshot message, as decoded. */
    this.snapshot = null;
  }

  /** Updates the state with one decoded server message. */
  apply(m) {
    switch (m.type) {
      case 'Snapshot':
        // WebSocket delivers in order; keep the newest tick all the same.
        if (!this.snapshot || m.tick >= this.snapshot.tick) this.snapshot = m;
        break;
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
        this.clearLobby();
        this.lobby = {
          id: m.lobby_id,
          name: m.name,
          code: m.code,
          maxPlayers: m.max_players,
          worldWidth: m.world_width,
          worldHeight: m.world_height,
          maxSpeed: m.max_speed,
          joinedTick: m.tick,
        };
        this.myEntity = m.your_entity;
        for (const p of m.players) this.addPlayer(p);
        this.phase = Phase.InLobby;
        break;
      case 'PlayerJoined':
        this.addPlayer(m);
        break;
      case 'PlayerLeft':
        this.players.delete(m.entity);
        this.scores.delete(m.entity);
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
      case 'Scoreboard':
        this.scores = new Map(m.entries.map((e) => [e.entity, e.score]));
        break;
      case 'Notice':
        this.lastNotice = m.text;
        break;
      default:
        break;
    }
  }

  addPlayer(p) {
    this.players.set(p.entity, { entity: p.entity, playerId: p.player_id, name: p.name });
  }

  /** A player's display name by entity. */
  nameOf(entity) {
    return this.players.get(entity)?.name ?? `#${entity}`;
  }

  /**
   * The entities of the latest snapshot in world units:
   * [{id, name, x, y, vx, vy, flags, it, me}].
   */
  entities() {
    const s = this.snapshot;
    const l = this.lobby;
    if (!s || !l) return [];
    return worldEntities(s, l).map((e) => ({
      ...e,
      name: this.nameOf(e.id),
      it: (e.flags & FLAG_IT) !== 0,
      me: e.id === this.myEntity,
    }));
  }

  /** The scoreboard, best first: [{entity, name, score, me}]. */
  scoreboard() {
    return [...this.scores]
      .map(([entity, score]) => ({ entity, name: this.nameOf(entity), score, me: entity === this.myEntity }))
      .sort((a, b) => b.score - a.score || a.entity - b.entity);
  }
}
