import { expect, test } from "bun:test";
import { Heartbeat } from "../../src/mux/heartbeat.ts";

/** Sends the due PING at `sentAt` and answers it at `sentAt + rtt`. */
function roundTrip(h: Heartbeat, sentAt: number, rtt: number, quiet: boolean): number | undefined {
  const opaque = h.pingDue(sentAt);
  if (!opaque) throw new Error(`no PING due at ${sentAt}`);
  return h.pong(opaque, sentAt + rtt, quiet);
}

test("only quiet round trips size the minimum; every answered PING sets the latest", () => {
  const h = new Heartbeat(0, 10_000, 3);
  expect(h.minRttMs).toBeUndefined();
  // Stream data moved while this PING was out: its round trip timed a queue.
  expect(roundTrip(h, 0, 0.4, false)).toBe(0.4);
  expect(h.rttMs).toBe(0.4);
  expect(h.minRttMs).toBeUndefined();
  roundTrip(h, 100, 3, true);
  expect(h.minRttMs).toBe(3);
  roundTrip(h, 1_000, 0.5, false);
  expect(h.minRttMs).toBe(3);
  roundTrip(h, 3_000, 2, true);
  expect(h.minRttMs).toBe(2);
  expect(h.rttMs).toBe(2);
});

test("the minimum covers the last 8 quiet samples, so a path that got longer is noticed", () => {
  const h = new Heartbeat(0, 10_000, 3);
  const at = [0, 100, 1_000, 3_000];
  for (let i = 0; i < 40; i++) at.push(13_000 + i * 10_000);
  roundTrip(h, at[0]!, 1, true);
  for (let i = 1; i < 8; i++) roundTrip(h, at[i]!, 50, true);
  expect(h.minRttMs).toBe(1);
  roundTrip(h, at[8]!, 50, true); // the 1 ms sample is now the ninth most recent
  expect(h.minRttMs).toBe(50);
});

test("a PONG that answers no outstanding PING changes nothing", () => {
  const h = new Heartbeat(0, 10_000, 3);
  const opaque = h.pingDue(0)!;
  expect(h.pong(opaque, 1, true)).toBe(1);
  expect(h.pong(opaque, 2, true)).toBeUndefined(); // answered already
  expect(h.minRttMs).toBe(1);
});
