import { expect, test } from "bun:test";
import { getEventListeners } from "node:events";
import { sleep } from "../src/clock.ts";
import { FakeClock } from "./support/fake-clock.ts";

test("sleep resolves when the time is up and leaves no abort listener behind", async () => {
  const clock = new FakeClock();
  const signal = new AbortController().signal;
  let woke = 0;
  for (let i = 0; i < 20; i++) void sleep(clock, 1_000, signal).then(() => woke++);
  await clock.advance(999);
  expect(woke).toBe(0);
  await clock.advance(1);
  expect(woke).toBe(20);
  expect(getEventListeners(signal, "abort")).toHaveLength(0);
});

test("sleep resolves at once on abort, and cancels its timer", async () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  const done = sleep(clock, 60_000, controller.signal);
  controller.abort();
  await done;
  expect(clock.pendingTimers).toBe(0);
  await sleep(clock, 60_000, controller.signal); // already aborted: no wait at all
});
