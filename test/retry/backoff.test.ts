import { expect, test } from "bun:test";
import { Backoff } from "../../src/retry/backoff.ts";

test("ceilings double from 1 s up to the 60 s cap", () => {
  const backoff = new Backoff(undefined, () => 0.999999);
  const ceilings: number[] = [];
  for (let i = 0; i < 9; i++) {
    ceilings.push(backoff.ceilingMs());
    backoff.nextDelayMs();
  }
  expect(ceilings).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

test("full jitter: delays are uniform in [0, ceiling]", () => {
  const backoff = new Backoff({ baseMs: 100, capMs: 1000 }, () => 0);
  expect(backoff.nextDelayMs()).toBe(0);
  const half = new Backoff({ baseMs: 100, capMs: 1000 }, () => 0.5);
  expect([half.nextDelayMs(), half.nextDelayMs(), half.nextDelayMs()]).toEqual([50, 100, 200]);
});

test("reset starts again from the base", () => {
  const backoff = new Backoff({ baseMs: 100, capMs: 1000 }, () => 0.5);
  backoff.nextDelayMs();
  backoff.nextDelayMs();
  backoff.reset();
  expect(backoff.attempts).toBe(0);
  expect(backoff.nextDelayMs()).toBe(50);
});

test("a huge number of failures never overflows the cap", () => {
  const backoff = new Backoff({ baseMs: 1000, capMs: 60000 }, () => 0.5);
  for (let i = 0; i < 10_000; i++) backoff.nextDelayMs();
  expect(backoff.ceilingMs()).toBe(60000);
});
