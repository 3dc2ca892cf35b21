// Time series derived from successive overviews: rates from counter deltas, and the
// tick-time p99 of each interval from the histogram's bucket deltas. No DOM: testable
// in Node.

/** Upper bound (µs) of quantile q of the observations between two cumulative histograms. */
export function intervalQuantile(bounds, before, after, q) {
  if (!before || !after || after.length !== before.length) return null;
  const deltas = after.map((c, i) => c - before[i]);
  const total = deltas[deltas.length - 1];
  if (!(total > 0)) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  const i = deltas.findIndex((c) => c >= rank);
  return i < bounds.length ? bounds[i] : Infinity;
}

export class Series {
  constructor(capacity = 300) {
    this.capacity = capacity;
    this.points = []; // { t, players, tickP99, outKBs, inKBs, skippedPerS }
    this.last = null;
  }

  /** Adds one overview taken at time t (ms). */
  push(overview, t) {
    const prev = this.last;
    this.last = { overview, t };
    if (!prev) return null;
    const dt = (t - prev.t) / 1000;
    if (dt <= 0) return null;
    const point = {
      t,
      players: overview.players,
      tickP99: intervalQuantile(overview.tick_buckets_us, prev.overview.tick_counts, overview.tick_counts, 0.99),
      outKBs: (overview.bytes_out - prev.overview.bytes_out) / dt / 1000,
      inKBs: (overview.bytes_in - prev.overview.bytes_in) / dt / 1000,
      skippedPerS: (overview.snapshots_skipped - prev.overview.snapshots_skipped) / dt,
    };
    this.points.push(point);
    if (this.points.length > this.capacity) this.points.shift();
    return point;
  }
}
