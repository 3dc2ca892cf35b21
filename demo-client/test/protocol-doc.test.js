// PROTOCOL.md quotes the golden vectors: every example hex and every byte-by-byte table
// must still match protocol/golden/vectors.json (regenerated when the encoding changes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { decodeClient } from '../src/codec.js';

const golden = JSON.parse(
  readFileSync(new URL('../../protocol/golden/vectors.json', import.meta.url), 'utf8'),
);
const doc = readFileSync(new URL('../../PROTOCOL.md', import.meta.url), 'utf8');
const byName = new Map(golden.vectors.map((v) => [v.name, v]));

test('every golden vector is quoted in PROTOCOL.md with its exact bytes', () => {
  const quoted = new Map();
  for (const [, name, len, hex] of doc.matchAll(/^- `(\w+)` \((\d+) bytes?\): `([0-9a-f]+)`$/gm)) {
    quoted.set(name, hex);
    assert.equal(Number(len), hex.length / 2, `${name}: length`);
  }
  for (const v of golden.vectors) {
    assert.equal(quoted.get(v.name), v.hex, `PROTOCOL.md example ${v.name}`);
  }
});

test('every byte-by-byte table adds up to its vector', () => {
  // A table follows "`name`, byte by byte:" or, for a message with one vector, "Byte by byte:".
  const sections = doc.split(/^#### /m).slice(1);
  let tables = 0;
  for (const section of sections) {
    const examples = [...section.matchAll(/^- `(\w+)` /gm)].map((m) => m[1]);
    for (const m of section.matchAll(/^(?:`(\w+)`, byte|Byte) by byte:\n\n((?:\|.*\n?)+)/gm)) {
      const name = m[1] ?? examples[0];
      const rows = m[2].trim().split('\n').slice(2);
      let offset = 0;
      let hex = '';
      for (const row of rows) {
        const cells = row.split('|').map((c) => c.trim());
        assert.equal(Number(cells[1]), offset, `${name}: offset of ${cells[3]}`);
        const bytes = cells[2].replace(/`/g, '').replace(/ /g, '');
        hex += bytes;
        offset += bytes.length / 2;
      }
      assert.equal(hex, byName.get(name).hex, `${name}: table bytes`);
      tables++;
    }
  }
  const types = new Set(golden.vectors.map((v) => `${v.direction}:${v.message.type}`));
  assert.ok(tables >= types.size, `${tables} tables for ${types.size} message types`);
});

test('the documented game-state examples are the golden ones, and decode as described', async () => {
  const { Codec } = await import('../src/state/codec.js');
  const { ClientState } = await import('../src/state/client-state.js');
  const { decodeSchema } = await import('../src/state/schema.js');
  const { SNAPSHOT_TAG } = await import('../src/codec.js');
  const state = JSON.parse(readFileSync(new URL('../../protocol/golden/state_vectors.json', import.meta.url), 'utf8'));
  // The worked examples: the arena's full snapshot and delta (hex, spaces allowed).
  const flat = doc.replace(/[\s`]/g, '');
  const arena = state.arena;
  for (const hex of [arena.full.hex, arena.delta.hex]) assert.ok(flat.includes(hex), `PROTOCOL.md quotes ${hex}`);
  const unhex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
  const client = new ClientState(new Codec(decodeSchema(unhex(arena.schema_hex)), arena.max_players), arena.seat, SNAPSHOT_TAG);
  assert.deepEqual(client.apply(unhex(arena.full.hex)).created, arena.full.state.created);
  assert.deepEqual(client.apply(unhex(arena.delta.hex)).changed, arena.delta.state.changed);
  // "a name claiming 4 GiB, `00 01 fc ff ff ff ff`, must fail at once"
  assert.ok(doc.includes('`00 01 fc ff ff ff ff`'));
  assert.throws(() => decodeClient(Uint8Array.of(0, 1, 0xfc, 0xff, 0xff, 0xff, 0xff)));
});

test('how a schema hash is written as text, and the Joined example\'s made-up hash, are as stated', async () => {
  const { fnv1a64, hashFromBytes } = await import('../src/state/schema.js');
  const { decodeServer } = await import('../src/codec.js');
  const state = JSON.parse(readFileSync(new URL('../../protocol/golden/state_vectors.json', import.meta.url), 'utf8'));
  const unhex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
  const flat = doc.replace(/\s+/g, ' ');
  // "The golden arena's hash `716523fbdc9ef739` is the bytes `39 f7 ... 71` in `Joined`."
  const m = flat.match(/The golden arena's hash `([0-9a-f]{16})` is the bytes `([0-9a-f ]+)` in `Joined`/);
  assert.ok(m, 'PROTOCOL.md gives the arena hash and its wire bytes');
  assert.equal(m[1], state.arena.schema_hash);
  assert.equal(fnv1a64(unhex(state.arena.schema_hex)), m[1]);
  assert.equal(hashFromBytes(unhex(m[2].replace(/ /g, ''))), m[1]);
  // The Joined example: a made-up hash beside the schema's real one.
  const joined = decodeServer(unhex(byName.get('joined').hex));
  const madeUp = hashFromBytes(joined.schema_hash);
  const real = fnv1a64(joined.schema);
  assert.notEqual(madeUp, real);
  assert.ok(flat.includes(`a made-up value (\`0x${madeUp}\`), not the schema's hash (which is \`${real}\`)`));
});
