import { describe, expect, test } from "bun:test";
import { percentile, rateIn, summarize, toGbits } from "./stats.ts";
import { medianOutcome } from "./scenario.ts";

describe("percentile (nearest rank)", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100

  test("p50 and p99 of 1..100 are 50 and 99", () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
  });

  test("a reported percentile is always an observed sample, never an interpolation", () => {
    const sorted = [10, 20, 30, 40];
    expect(percentile(sorted, 50)).toBe(20);
    expect(percentile(sorted, 51)).toBe(30);
    expect(percentile(sorted, 99)).toBe(40);
  });

  test("p99 of fewer than 100 samples is the maximum", () => {
    expect(percentile([1, 2, 3, 1000], 99)).toBe(1000);
  });

  test("one sample is every percentile", () => {
    expect(percentile([7], 1)).toBe(7);
    expect(percentile([7], 100)).toBe(7);
  });

  test("an empty sample or a percentile outside (0, 100] is refused", () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe("summarize", () => {
  test("sorts unsorted samples numerically (not as strings) before taking percentiles", () => {
    const s = summarize([100, 9, 80, 7, 1000, 5, 60, 4, 3, 2]);
    expect(s).toEqual({ count: 10, p50: 7, p99: 1000, max: 1000 });
  });

  test("does not reorder the caller's array", () => {
    const samples = [3, 1, 2];
    summarize(samples);
    expect(samples).toEqual([3, 1, 2]);
  });
});

describe("rateIn", () => {
  const reports = [
    { atMs: 0, bytes: 0 },
    { atMs: 500, bytes: 100 }, // warm-up, slow
    { atMs: 1000, bytes: 1_000 },
    { atMs: 2000, bytes: 3_000 },
    { atMs: 3000, bytes: 5_000 },
  ];

  test("measures from the first report at or after the window start to the last report", () => {
    expect(rateIn(reports, 1000)).toBe(2_000); // (5000 - 1000) B over 2 s
  });

  test("ignores reports after the window end", () => {
    expect(rateIn(reports, 1000, 2000)).toBe(2_000);
    expect(rateIn(reports, 500, 1000)).toBe(1_800);
  });

  test("is undefined when fewer than two reports fall in the window", () => {
    expect(rateIn(reports, 2500)).toBeUndefined();
    expect(rateIn([], 0)).toBeUndefined();
  });
});

test("toGbits converts bytes per second to decimal gigabits per second", () => {
  expect(toGbits(125_000_000)).toBe(1);
});

describe("medianOutcome (repeated scenarios)", () => {
  test("keeps the middle value of the measured rounds, the mean of the middle two for an even count", () => {
    expect(medianOutcome([{ value: 9 }, { value: 6 }, { value: 7 }])).toEqual({ value: 7 });
    expect(medianOutcome([{ value: 9 }, { skipped: "failed: timeout" }, { value: 7 }])).toEqual({ value: 8 });
  });

  test("is the first round's reason when no round measured anything", () => {
    expect(medianOutcome([{ skipped: "ssh not installed" }, { skipped: "other" }])).toEqual({
      skipped: "ssh not installed",
    });
  });
});
