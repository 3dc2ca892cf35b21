// The monitor's derived series, without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Series, intervalQuantile } from '../series.js';

const bounds = [10, 25, 50, 100];

test('interval quantiles come from bucket deltas', () => {
  // Cumulative counts per bound, the last one is +Inf.
  const before = [0, 5, 5, 5, 5];
  const after = [0, 5, 95, 99, 100];
  // 95 new observations: 90 in (25, 50], 4 in (50, 100], 1 above.
  assert.equal(intervalQuantile(bounds, before, after, 0.5), 50);
  assert.equal(intervalQuantile(bounds, before, after, 0.98), 100);
  assert.equal(intervalQuantile(bounds, before, after, 0.99), Infinity, 'the one slow tick');
  assert.equal(intervalQuantile(bounds, before, after, 1), Infinity);
  assert.equal(intervalQuantile(bounds, after, after, 0.99), null, 'no new ticks');
  assert.equal(intervalQuantile(bounds, null, after, 0.99), null);
});

test('rates come from counter deltas over time', () => {
  const s = new Series(2);
  const overview = (out, inn, skipped, counts) => ({
    players: 3, bytes_out: out, bytes_in: inn, snapshots_skipped: skipped,
    tick_buckets_us: bounds, tick_counts: counts,
  });
  assert.equal(s.push(overview(0, 0, 0, [0, 0, 0, 0, 0]), 0), null, 'the first sample has no rate');
  const p = s.push(overview(5000, 1000, 30, [10, 30, 30, 30, 30]), 2000);
  assert.equal(p.outKBs, 2.5);
  assert.equal(p.inKBs, 0.5);
  assert.equal(p.skippedPerS, 15);
  assert.equal(p.tickP99, 25);
  s.push(overview(6000, 1000, 30, [10, 30, 30, 30, 30]), 3000);
  s.push(overview(7000, 1000, 30, [10, 30, 30, 30, 30]), 4000);
  assert.equal(s.points.length, 2, 'bounded history');
});
