import { expect, test } from "bun:test";
import { RepeatLimiter } from "../src/repeat-limiter.ts";
import { FakeClock } from "./support/fake-clock.ts";

test("the first occurrence of a key per window is logged; the next logged one counts those left out", async () => {
  const clock = new FakeClock();
  const limiter = new RepeatLimiter(clock, 10_000);
  expect(limiter.check("REFUSED wiki")).toEqual({ log: true, suppressed: 0, othersSuppressed: 0 });
  for (let i = 0; i < 500; i++) expect(limiter.check("REFUSED wiki").log).toBe(false);
  expect(limiter.check("TIMEOUT wiki")).toEqual({ log: true, suppressed: 0, othersSuppressed: 0 }); // another key: its own window
  await clock.advance(9_999);
  expect(limiter.check("REFUSED wiki").log).toBe(false);
  await clock.advance(1);
  expect(limiter.check("REFUSED wiki")).toEqual({ log: true, suppressed: 501, othersSuppressed: 0 });
  expect(limiter.check("REFUSED wiki").log).toBe(false);
});

test("keys are bounded: past the limit the oldest is forgotten and logs again when it recurs", () => {
  const limiter = new RepeatLimiter(new FakeClock(), 10_000, 2);
  limiter.check("a");
  limiter.check("b");
  limiter.check("c"); // "a" is dropped
  expect(limiter.check("a")).toEqual({ log: true, suppressed: 0, othersSuppressed: 0 });
  expect(limiter.check("c").log).toBe(false);
});

test("lines are bounded over all keys: 5,000 distinct keys in a window log the budget, and the next line counts the rest", async () => {
  const clock = new FakeClock();
  const limiter = new RepeatLimiter(clock, 10_000, 1_000, 20);
  let logged = 0;
  for (let i = 0; i < 5_000; i++) if (limiter.check(`NOT_ALLOWED app-${i}`).log) logged++;
  expect(logged).toBe(20);
  await clock.advance(10_000);
  expect(limiter.check("NOT_ALLOWED another")).toEqual({ log: true, suppressed: 0, othersSuppressed: 4_980 });
  expect(limiter.check("NOT_ALLOWED yet another")).toEqual({ log: true, suppressed: 0, othersSuppressed: 0 });
});
