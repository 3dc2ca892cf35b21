// The client side of snapshots (protocol/src/state/client.rs `ClientState`): keeps the
// baseline and applies each snapshot message to it.
//
// A snapshot message: the tag, ack_seq (LEB128), the length of this player's own part
// (LEB128, at most 3 bytes), the own part (trailing zero bytes trimmed), then the shared
// body (tick u32, var4 ticks since the baseline, 0 for a full snapshot, then the
// section). Each section: the top row (the private state in the own part, the lobby
// state in the shared body; a changed-field mask first in a delta), then removals
// (positions in the baseline's list, as gaps), changes (a bitmap over the kept list or
// positions as gaps, then per changed entity its mask over the fields it carries and
// those fields), creations (id gaps, kind, controller, in the own part a partial bit,
// the fields it carries).

import { MAX_SNAPSHOT_ENTITIES, splitSnapshot } from '../codec.js';
import { BitReader, EndOfStream } from './bits.js';
import { WireError, hasBit, maskOf } from './codec.js';

export { MAX_SNAPSHOT_ENTITIES };

/** Why a snapshot could not be applied (the state is unchanged). */
export class StateDecodeError extends Error {
  /**
   * kind: 'NotASnapshot' | 'Wire' | 'BaselineMismatch' | 'UnknownKind' | 'BadPosition' |
   * 'DuplicateEntity' | 'TooManyEntities' | 'TrailingBytes'.
   */
  constructor(kind, message, extra = {}) {
    super(message);
    this.name = 'StateDecodeError';
    this.kind = kind;
    Object.assign(this, extra);
  }
}

const SHARED = 0;

/** The fields an entity carries in a view: `view` is 0 (shared) or the own seat. */
export function included(row, view, controlledBy, partial) {
  const all = row.allMask;
  const notOwner = (all & ~row.ownerMask) >>> 0;
  if (view === SHARED) return notOwner;
  if (partial) return row.ownerMask;
  if (controlledBy === view) return all;
  return notOwner;
}

function readMask(r, include, fields) {
  if (include === maskOf(fields)) return r.read(fields);
  let mask = 0;
  for (let i = 0; i < fields; i++) {
    if (hasBit(include, i) && r.bit()) mask |= 1 << i;
  }
  return mask >>> 0;
}

function wrap(e) {
  if (e instanceof StateDecodeError) return e;
  if (e instanceof EndOfStream) return new StateDecodeError('Wire', 'the bytes ended early', { wire: 'Truncated' });
  if (e instanceof WireError) return new StateDecodeError('Wire', e.message, { wire: e.kind });
  return e;
}

/**
 * A client's copy of the game state: the lobby state, its private state and every entity
 * it may see. `apply(bytes)` takes each snapshot message in order.
 *
 * entities: Map id -> {id, kind (index), controlledBy (seat), row (quantized slots)}.
 */
export class ClientState {
  /** `codec`: the lobby's Codec; `me`: this player's seat (1 and up). */
  constructor(codec, me, snapshotTag) {
    this.codec = codec;
    this.me = me;
    this.snapshotTag = snapshotTag;
    this.tick = null;
    this.ackSeq = 0;
    this.lobby = codec.lobby.zero();
    this.private = codec.private.zero();
    /** id -> {id, kind, controlledBy, row, inShared, inOwn (null | partial)} */
    this.entities = new Map();
    /** Ids in the shared body's list, ascending. */
    this.shared = [];
    /** Ids in this player's own list, ascending. */
    this.own = [];
  }

  /** The lobby state as {field: value}. */
  lobbyValues() {
    return this.codec.lobby.values(this.lobby);
  }

  /** This player's private state as {field: value}. */
  privateValues() {
    return this.codec.private.values(this.private);
  }

  /** An entity's fields as {field: value} (null if absent). */
  entityValues(id) {
    const e = this.entities.get(id);
    if (!e) return null;
    return this.codec.kinds[e.kind].values(e.row);
  }

  /** The entity kind's name of an entity. */
  kindName(e) {
    return this.codec.kinds[e.kind]?.name ?? '';
  }

  /**
   * Applies one snapshot message. A delta must be against the tick this state holds.
   * Returns {tick, full, ackSeq, created, changed, removed} (ids, ascending). Throws
   * StateDecodeError and then changes nothing.
   */
  apply(bytes) {
    if (bytes.length < 1 || bytes[0] !== this.snapshotTag) {
      throw new StateDecodeError('NotASnapshot', 'not a snapshot message');
    }
    const parts = splitSnapshot(bytes, this.snapshotTag);
    if (!parts) throw new StateDecodeError('Wire', 'the bytes ended early', { wire: 'Truncated' });
    const ackSeq = parts.ackSeq;
    let ops;
    let tick;
    let full;
    try {
      const ownBytes = parts.own;
      const body = parts.shared;
      const sharedR = new BitReader(body);
      tick = sharedR.read(32);
      const diff = sharedR.var();
      full = diff === 0;
      if (!full) {
        const baseline = tick - diff;
        if (baseline < 0 || baseline !== this.tick) {
          throw new StateDecodeError(
            'BaselineMismatch',
            `a delta against tick ${Math.max(0, baseline)}, but the client holds ${this.tick ?? 'none'}`,
            { baseline: Math.max(0, baseline), held: this.tick },
          );
        }
      }
      const ownR = new BitReader(ownBytes, true);
      const own = this.decodeSection(this.me, full, full ? [] : this.own, ownR);
      if (ownR.remaining() >= 8) throw new StateDecodeError('TrailingBytes', 'bytes after the end of the snapshot');
      const shared = this.decodeSection(SHARED, full, full ? [] : this.shared, sharedR);
      if (!sharedR.atPaddedEnd()) throw new StateDecodeError('TrailingBytes', 'bytes after the end of the snapshot');
      ops = [own, shared];
    } catch (e) {
      throw wrap(e);
    }

    // Everything decoded: apply.
    const touched = [];
    let seq = 0;
    const touch = (id, existed) => touched.push([id, seq++, existed]);
    if (full) {
      for (const e of this.entities.values()) {
        touch(e.id, true);
        e.inShared = false;
        e.inOwn = null;
      }
      this.shared = [];
      this.own = [];
    }
    this.applyTop(true, ops[0]);
    this.applyTop(false, ops[1]);
    for (const phase of ['remove', 'change', 'create']) {
      this.applyEntities(this.me, ops[0], touch, phase);
      this.applyEntities(SHARED, ops[1], touch, phase);
    }

    touched.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const created = [];
    const changed = [];
    const removed = [];
    for (let k = 0; k < touched.length; ) {
      const [id, , existed] = touched[k];
      let n = k;
      while (n < touched.length && touched[n][0] === id) n++;
      const e = this.entities.get(id);
      const exists = e !== undefined && (e.inShared || e.inOwn !== null);
      if (!existed && exists) created.push(id);
      else if (existed && exists) changed.push(id);
      else if (existed && !exists) {
        this.entities.delete(id);
        removed.push(id);
      } else {
        this.entities.delete(id);
      }
      k = n;
    }
    this.tick = tick;
    this.ackSeq = ackSeq;
    return { tick, full, ackSeq, created, changed, removed };
  }

  decodeSection(view, full, list, r) {
    const codec = this.codec;
    const top = view === SHARED ? codec.lobby : codec.private;
    const ops = { topMask: 0, top: top.zero(), removed: [], kept: [], changed: [], created: [] };
    ops.topMask = full ? top.allMask : r.read(top.fields.length);
    top.readWire(ops.topMask, r, ops.top);

    // Removed: positions in the baseline's list, as gaps.
    const count = r.var();
    if (count > list.length) throw new StateDecodeError('BadPosition', 'an entity position outside the baseline list');
    let next = 0;
    for (let i = 0; i < count; i++) {
      const at = next + r.var();
      if (at >= list.length) throw new StateDecodeError('BadPosition', 'an entity position outside the baseline list');
      ops.removed.push(at);
      next = at + 1;
    }
    let g = 0;
    for (let i = 0; i < list.length; i++) {
      if (g < ops.removed.length && ops.removed[g] === i) g++;
      else ops.kept.push(list[i]);
    }

    // Changed: a bitmap over the kept list, or positions as gaps.
    const positions = [];
    if (r.bit()) {
      const n = r.var();
      if (n > ops.kept.length) throw new StateDecodeError('BadPosition', 'an entity position outside the baseline list');
      let nx = 0;
      for (let i = 0; i < n; i++) {
        const at = nx + r.var();
        if (at >= ops.kept.length) throw new StateDecodeError('BadPosition', 'an entity position outside the baseline list');
        positions.push(at);
        nx = at + 1;
      }
    } else {
      for (let i = 0; i < ops.kept.length; i++) if (r.bit()) positions.push(i);
    }
    for (const at of positions) {
      const id = ops.kept[at];
      const e = this.entities.get(id);
      if (!e) throw new StateDecodeError('BadPosition', 'an entity position outside the baseline list');
      const row = codec.kinds[e.kind];
      if (!row) throw new StateDecodeError('UnknownKind', `unknown entity kind ${e.kind}`);
      const partial = view === SHARED ? false : (e.inOwn ?? false);
      const include = included(row, view, e.controlledBy, partial);
      const mask = readMask(r, include, row.fields.length);
      const values = row.zero();
      row.readWire(mask, r, values);
      ops.changed.push({ id, mask, row: values });
    }

    // Created.
    const created = r.var();
    if (created > MAX_SNAPSHOT_ENTITIES || ops.kept.length + created > MAX_SNAPSHOT_ENTITIES) {
      throw new StateDecodeError('TooManyEntities', 'too many entities');
    }
    let nextId = 0;
    let k = 0;
    for (let i = 0; i < created; i++) {
      const id = nextId + r.var();
      if (id > 0xffffffff) throw new StateDecodeError('BadPosition', 'an entity id over u32::MAX');
      nextId = id + 1;
      while (k < ops.kept.length && ops.kept[k] < id) k++;
      if (k < ops.kept.length && ops.kept[k] === id) {
        throw new StateDecodeError('DuplicateEntity', `entity ${id} created twice`, { id });
      }
      const kind = r.read(codec.kindBits);
      const row = codec.kinds[kind];
      if (!row) throw new StateDecodeError('UnknownKind', `unknown entity kind ${kind}`);
      const ctrl = r.read(codec.playerBits);
      const controlledBy = ctrl <= codec.maxPlayers ? ctrl : 0;
      const partial = view !== SHARED && r.bit();
      const include = included(row, view, controlledBy, partial);
      const values = row.zero();
      row.readWire(include, r, values);
      ops.created.push({ id, kind, controlledBy, partial, include, row: values });
      if (id === 0xffffffff && ops.created.length < created) {
        throw new StateDecodeError('BadPosition', 'an entity id over u32::MAX');
      }
    }
    return ops;
  }

  applyTop(own, ops) {
    const row = own ? this.codec.private : this.codec.lobby;
    if (ops.topMask !== 0) row.copyFields(ops.topMask, ops.top, own ? this.private : this.lobby);
  }

  applyEntities(view, ops, touch, phase) {
    const own = view !== SHARED;
    const list = own ? this.own : this.shared;
    if (phase === 'remove') {
      for (const at of ops.removed) {
        const id = list[at];
        const e = this.entities.get(id);
        if (!e) continue;
        touch(id, e.inShared || e.inOwn !== null);
        if (own) e.inOwn = null;
        else e.inShared = false;
      }
      return;
    }
    if (phase === 'change') {
      for (const c of ops.changed) {
        const e = this.entities.get(c.id);
        if (!e) continue;
        touch(c.id, true);
        this.codec.kinds[e.kind]?.copyFields(c.mask, c.row, e.row);
      }
      return;
    }
    for (const c of ops.created) {
      const row = this.codec.kinds[c.kind];
      let e = this.entities.get(c.id);
      if (!e) {
        e = { id: c.id, kind: c.kind, controlledBy: c.controlledBy, row: row.zero(), inShared: false, inOwn: null };
        this.entities.set(c.id, e);
      }
      touch(c.id, e.inShared || e.inOwn !== null);
      // A new entity for this client, unless the other list holds it (its fields there
      // stay): start from zero, so no field of an earlier life of the id survives.
      const inOther = own ? e.inShared : e.inOwn !== null;
      if (!inOther || e.kind !== c.kind) {
        e.kind = c.kind;
        e.row = row.zero();
      }
      e.controlledBy = c.controlledBy;
      if (own) e.inOwn = c.partial;
      else e.inShared = true;
      row.copyFields(c.include, c.row, e.row);
    }
    // The new list: the kept ids and the created ones, merged.
    const merged = [];
    let j = 0;
    for (const kept of ops.kept) {
      while (j < ops.created.length && ops.created[j].id < kept) merged.push(ops.created[j++].id);
      merged.push(kept);
    }
    while (j < ops.created.length) merged.push(ops.created[j++].id);
    if (own) this.own = merged;
    else this.shared = merged;
  }
}
