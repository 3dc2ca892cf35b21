// PROTOCOL.md quotes the golden vectors: every example hex and every byte-by-byte table
// must still match protocol/golden/vectors.json (regenerated when the encoding changes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { decodeClient, decodeServer } from '../src/codec.js';

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

test('the documented snapshot example decodes as described', () => {
  assert.ok(doc.includes('`0505630001020100802c017fff`'));
  assert.deepEqual(decodeServer(Uint8Array.from([5, 5, 0x63, 0, 1, 2, 1, 0, 0x80, 0x2c, 1, 0x7f, 0xff])), {
    type: 'Snapshot',
    ack_seq: 5,
    tick: 99,
    baseline: 0,
    entities: [{ id: 2, flags: 1, x: 32768, y: 300, vx: 127, vy: -1 }],
  });
  // "a name claiming 4 GiB, `00 01 fc ff ff ff ff`, must fail at once"
  assert.ok(doc.includes('`00 01 fc ff ff ff ff`'));
  assert.throws(() => decodeClient(Uint8Array.of(0, 1, 0xfc, 0xff, 0xff, 0xff, 0xff)));
});
