/**
 * Pure statistics of the benchmark: percentiles (nearest-rank, so a reported p99 is a latency that was
 * actually observed), rates over a window of cumulative reports. No I/O, no clock.
 */

/**
 * The p-th percentile (0 < p ≤ 100) of `sorted` (ascending) by the nearest-rank method: the smallest value
 * such that at least p% of the samples are ≤ it. Throws on an empty sample: a percentile of nothing is a bug.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) throw new RangeError("percentile of an empty sample");
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Sorts a copy of `samples` and returns count, p50, p99 and max. */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

/** A cumulative byte count observed at a time (ms, any origin shared by all reports of one stream). */
export interface Report {
  atMs: number;
  bytes: number;
}

/**
 * Bytes per second between the first and the last cumulative report inside [fromMs, toMs], reports in time
 * order. Undefined when fewer than two reports fall in the window (nothing was measured).
 */
export function rateIn(
  reports: readonly Report[],
  fromMs: number,
  toMs = Number.POSITIVE_INFINITY,
): number | undefined {
  const window = reports.filter((r) => r.atMs >= fromMs && r.atMs <= toMs);
  const first = window[0];
  const last = window[window.length - 1];
  if (!first || !last || last.atMs <= first.atMs) return undefined;
  return ((last.bytes - first.bytes) * 1000) / (last.atMs - first.atMs);
}

/** Bytes per second to Gbit/s (decimal giga, as iperf3 reports). */
export function toGbits(bytesPerSecond: number): number {
  return (bytesPerSecond * 8) / 1e9;
}
