// Every protocol constant of the JavaScript client against the Rust protocol crate: the
// `constants` object of protocol/golden/vectors.json (written by protocol/tests/golden.rs)
// is the source; each JS table must hold exactly its entries, in its order, and codec.js
// may export no constant that the file does not check. A JS constant that drifts from
// Rust, or a new one on either side that nobody mapped, fails here.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as codec from '../src/codec.js';
import * as reconnect from '../src/reconnect.js';

const { constants } = JSON.parse(
  readFileSync(new URL('../../protocol/golden/vectors.json', import.meta.url), 'utf8'),
);

// A golden `[{name, value}]` list as the entries of a JS table.
const entries = (list) => list.map(({ name, value }) => [name, value]);

// Golden key -> [the codec.js exports it stands for, the check].
const table = (exportName) => [[exportName], (list) => {
  assert.deepEqual(Object.entries(codec[exportName]), entries(list), exportName);
  assert.ok(Object.isFrozen(codec[exportName]), `${exportName} is frozen`);
}];
const scalar = (exportName) => [[exportName], (value) => assert.equal(codec[exportName], value, exportName)];

const CHECKS = {
  protocol_version: scalar('PROTOCOL_VERSION'),
  client_tags: table('ClientTag'),
  server_tags: table('ServerTag'),
  first_frame_tag: scalar('FIRST_FRAME_TAG'),
  snapshot_tag: [['SNAPSHOT_TAG', 'ServerFrameTag'], (v) => {
    assert.equal(codec.SNAPSHOT_TAG, v);
    assert.equal(codec.ServerFrameTag.Snapshot, v);
  }],
  event_tag: [['EVENT_TAG'], (v) => {
    assert.equal(codec.EVENT_TAG, v);
    assert.equal(codec.ServerFrameTag.Event, v);
    assert.deepEqual(Object.keys(codec.ServerFrameTag), ['Snapshot', 'Event']);
  }],
  input_tag: [['INPUT_TAG', 'ClientFrameTag'], (v) => {
    assert.equal(codec.INPUT_TAG, v);
    assert.equal(codec.ClientFrameTag.Input, v);
  }],
  message_tag: [['MESSAGE_TAG'], (v) => {
    assert.equal(codec.MESSAGE_TAG, v);
    assert.equal(codec.ClientFrameTag.GameMessage, v);
    assert.deepEqual(Object.keys(codec.ClientFrameTag), ['Input', 'GameMessage']);
  }],
  join_target_tags: table('JoinTargetTag'),
  error_codes: table('ErrorCode'),
  left_reasons: table('LeftReason'),
  close_codes: table('CloseCode'),
  local_close_codes: table('LocalCloseCode'),
  final_close_codes: [['FINAL_CLOSE_CODES'], (codes) => {
    assert.deepEqual([...codec.FINAL_CLOSE_CODES], codes);
    assert.ok(Object.isFrozen(codec.FINAL_CLOSE_CODES));
  }],
  limits: [
    ['Limits', ...constants.limits.map((l) => l.name)],
    (list) => {
      assert.deepEqual(Object.entries(codec.Limits), entries(list), 'Limits');
      assert.ok(Object.isFrozen(codec.Limits));
      for (const { name, value } of list) assert.equal(codec[name], value, name);
    },
  ],
  token_bytes: scalar('TOKEN_BYTES'),
  schema_hash_bytes: scalar('SCHEMA_HASH_BYTES'),
  max_snapshot_entities: scalar('MAX_SNAPSHOT_ENTITIES'),
};

// Golden constants the JS client has no use for (the server normalizes typed join codes).
const NOT_IN_JS = new Set(['join_code_alphabet', 'join_code_symbols']);

describe('protocol constants (golden file vs codec.js)', () => {
  for (const [key, value] of Object.entries(constants)) {
    test(`${key}`, () => {
      if (NOT_IN_JS.has(key)) return;
      assert.ok(CHECKS[key], `golden constant ${key} has no JS counterpart: add one to codec.js and CHECKS, or to NOT_IN_JS`);
      CHECKS[key][1](value);
    });
  }

  test('every golden constant is either checked or deliberately left out', () => {
    for (const key of Object.keys(CHECKS)) assert.ok(key in constants, `CHECKS names ${key}, which the golden file lacks`);
    for (const key of NOT_IN_JS) assert.ok(key in constants, `NOT_IN_JS names ${key}, which the golden file lacks`);
    assert.equal(Object.keys(constants).length, Object.keys(CHECKS).length + NOT_IN_JS.size);
  });

  test('codec.js exports no constant the golden file does not check', () => {
    const checked = new Set(Object.values(CHECKS).flatMap(([names]) => names));
    const unchecked = Object.entries(codec)
      .filter(([, v]) => typeof v !== 'function')
      .map(([name]) => name)
      .filter((name) => !checked.has(name));
    assert.deepEqual(unchecked, [], 'constants of codec.js with no Rust counterpart in the golden file');
  });
});

describe('reconnect.js uses the codec constants', () => {
  test('it stops after exactly the final close codes', () => {
    assert.equal(reconnect.FINAL_CLOSE_CODES, codec.FINAL_CLOSE_CODES);
    const final = new Set(constants.final_close_codes);
    for (const { name, value } of [...constants.close_codes, ...constants.local_close_codes]) {
      assert.equal(reconnect.shouldReconnect(value), !final.has(value), `${name} ${value}`);
    }
  });

  test('every close code has its words', () => {
    for (const { name, value } of constants.close_codes) {
      assert.equal(reconnect.closeCodeText(value), name.toLowerCase().replaceAll('_', ' '));
    }
    for (const { value } of constants.local_close_codes) {
      assert.notEqual(reconnect.closeCodeText(value), 'closed', `${value}`);
    }
    assert.equal(reconnect.closeCodeText(4999), 'closed');
  });
});
