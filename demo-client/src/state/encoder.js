// The snapshot encoder (protocol/src/state/world.rs `Encoder`) in JavaScript: what a
// server writes. The demo client never sends snapshots; tests and tools use it to play
// server (the fake server of test/client.test.js), and it pins the decoder: the golden
// snapshots are re-encoded here byte for byte.
//
// A state: {tick, lobby: values, private: Map seat -> values, entities: [{id, kind
// (index or name), controlledBy (seat or 0), visibility, values}]}; visibility is
// 'everyone' (the default), 'nobody', {only: seat} or {seats: [seat, ...]}.

import { pushLeb128 } from '../codec.js';
import { BitWriter, varBits } from './bits.js';
import { maskOf } from './codec.js';
import { included } from './client-state.js';

/** A state's rows, quantized: what the encoder compares. */
export function buildState(codec, state) {
  const privateRows = new Map();
  for (const [seat, values] of state.private ?? new Map()) privateRows.set(seat, codec.private.fromValues(values));
  const entities = (state.entities ?? [])
    .map((e) => {
      const kind = typeof e.kind === 'number' ? e.kind : codec.kindIndex(e.kind);
      if (!codec.kinds[kind]) throw new Error(`no entity kind ${e.kind}`);
      return {
        id: e.id,
        kind,
        controlledBy: e.controlledBy ?? 0,
        visibility: e.visibility ?? 'everyone',
        row: codec.kinds[kind].fromValues(e.values),
      };
    })
    .sort((a, b) => a.id - b.id);
  for (let i = 1; i < entities.length; i++) {
    if (entities[i].id === entities[i - 1].id) throw new Error(`two entities have the id ${entities[i].id}`);
  }
  return { tick: state.tick, lobby: codec.lobby.fromValues(state.lobby), private: privateRows, entities };
}

function sees(visibility, seat) {
  if (visibility === 'everyone') return true;
  if (visibility === 'nobody') return false;
  if (visibility.only !== undefined) return seat !== 0 && visibility.only === seat;
  if (visibility.seats) return seat >= 1 && seat <= 64 && visibility.seats.includes(seat);
  return false;
}

// How an entity is carried in a view (0: shared, else the seat): null, or {partial, include}.
function membership(codec, e, view) {
  const row = codec.kinds[e.kind];
  const everyone = e.visibility === 'everyone';
  if (view === 0) return everyone ? { partial: false, include: included(row, 0, e.controlledBy, false) } : null;
  if (!everyone && sees(e.visibility, view)) return { partial: false, include: included(row, view, e.controlledBy, false) };
  if (everyone && e.controlledBy === view && row.ownerMask !== 0) return { partial: true, include: row.ownerMask };
  return null;
}

function members(codec, state, view) {
  const out = [];
  for (const e of state.entities) {
    const m = membership(codec, e, view);
    if (m) out.push({ e, ...m });
  }
  return out;
}

function writeMask(w, mask, include, fields) {
  if (include === maskOf(fields)) {
    w.write(mask, fields);
    return;
  }
  for (let i = 0; i < fields; i++) if ((include >>> i) & 1) w.bit((mask >>> i) & 1);
}

function zeros(w, n) {
  while (n >= 32) {
    w.write(0, 32);
    n -= 32;
  }
  w.write(0, n);
}

// One section of `view` (0: the shared body, else that seat's own part).
function section(codec, from, to, view, w) {
  const top = view === 0 ? codec.lobby : codec.private;
  const topOf = (s) => (view === 0 ? s.lobby : (s.private.get(view) ?? codec.private.zero()));
  if (from) {
    const mask = top.diff(top.allMask, topOf(from), topOf(to));
    w.write(mask, top.fields.length);
    top.writeWire(mask, topOf(to), w);
  } else {
    top.writeWire(top.allMask, topOf(to), w);
  }

  const a = from ? members(codec, from, view) : [];
  const b = members(codec, to, view);
  const removed = [];
  const changed = [];
  const created = [];
  let i = 0;
  let j = 0;
  let kept = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x && y && x.e.id === y.e.id) {
      if (x.e.kind === y.e.kind && x.e.controlledBy === y.e.controlledBy && x.partial === y.partial) {
        const mask = codec.kinds[y.e.kind].diff(y.include, x.e.row, y.e.row);
        if (mask !== 0) changed.push({ kept, m: y, mask });
        kept++;
      } else {
        removed.push(i);
        created.push(y);
      }
      i++;
      j++;
    } else if (x && (!y || x.e.id < y.e.id)) {
      removed.push(i++);
    } else {
      created.push(y);
      j++;
    }
  }

  w.var(removed.length);
  let next = 0;
  for (const r of removed) {
    w.var(r - next);
    next = r + 1;
  }

  let listBits = varBits(changed.length);
  next = 0;
  for (const c of changed) {
    listBits += varBits(c.kept - next);
    next = c.kept + 1;
  }
  if (listBits < kept) {
    w.bit(true);
    w.var(changed.length);
    next = 0;
    for (const c of changed) {
      w.var(c.kept - next);
      next = c.kept + 1;
    }
  } else {
    w.bit(false);
    next = 0;
    for (const c of changed) {
      zeros(w, c.kept - next);
      w.bit(true);
      next = c.kept + 1;
    }
    zeros(w, kept - next);
  }
  for (const c of changed) {
    const row = codec.kinds[c.m.e.kind];
    writeMask(w, c.mask, c.m.include, row.fields.length);
    row.writeWire(c.mask, c.m.e.row, w);
  }

  w.var(created.length);
  next = 0;
  for (const m of created) {
    w.var(m.e.id - next);
    next = m.e.id + 1;
    w.write(m.e.kind, codec.kindBits);
    w.write(m.e.controlledBy, codec.playerBits);
    if (view !== 0) w.bit(m.partial);
    codec.kinds[m.e.kind].writeWire(m.include, m.e.row, w);
  }
}

/**
 * A whole snapshot message for `seat`: `to` as changes from `from` (a built state the
 * client holds) or in full (`from` null or not earlier). States come from buildState.
 */
export function encodeSnapshot(codec, tag, from, to, seat, ackSeq) {
  const base = from && from.tick < to.tick ? from : null;
  const own = new BitWriter();
  section(codec, base, to, seat, own);
  let personal = own.finish();
  let end = personal.length;
  while (end > 0 && personal[end - 1] === 0) end--;
  personal = personal.subarray(0, end);
  const body = new BitWriter();
  body.write(to.tick, 32);
  body.var(base ? to.tick - base.tick : 0);
  section(codec, base, to, 0, body);
  const shared = body.finish();
  const head = pushLeb128(personal.length, pushLeb128(ackSeq >>> 0, [tag]));
  const out = new Uint8Array(head.length + personal.length + shared.length);
  out.set(head, 0);
  out.set(personal, head.length);
  out.set(shared, head.length + personal.length);
  return out;
}
