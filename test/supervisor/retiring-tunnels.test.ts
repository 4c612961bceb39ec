/**
 * `RetiringTunnels`: drained tunnels are closed by us once idle (after a settle wait, then as soon as
 * their last stream ends), at the latest at their grace deadline, and never more than `max` stay open:
 * the idlest, then the oldest, goes first.
 */
import { expect, test } from "bun:test";
import { RetiringTunnels } from "../../src/supervisor/retiring-tunnels.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { FakeTunnel } from "./fake-tunnel.ts";

function tunnel(name: string, streams = 0): FakeTunnel {
  const t = new FakeTunnel({ id: name, url: `wss://127.0.0.1:1/${name}` });
  t.streams = streams;
  return t;
}

test("an idle tunnel is closed after the settle wait; a busy one when its streams end or at its deadline", async () => {
  const clock = new FakeClock();
  const retiring = new RetiringTunnels({ clock, max: 10, settleMs: 1_000 });
  const idle = tunnel("idle");
  const busy = tunnel("busy", 2);
  const stuck = tunnel("stuck", 1);
  retiring.add(idle, 60_000, "drained");
  retiring.add(busy, 60_000, "drained");
  retiring.add(stuck, 30_000, "drained");
  await clock.advance(999);
  expect(idle.closedBy).toBeUndefined();
  await clock.advance(1);
  expect(idle.closedBy).toBe("drained");
  busy.streams = 0;
  await clock.advance(0);
  expect(busy.closedBy).toBe("drained"); // at once: its last stream's end is the event, no timer
  await clock.advance(28_999);
  expect(stuck.closedBy).toBeUndefined();
  await clock.advance(1);
  expect(stuck.closedBy).toBe("drained");
  expect(retiring.size).toBe(0);
});

test("past the cap the idlest is closed at once, the oldest among equals", () => {
  const clock = new FakeClock();
  const retiring = new RetiringTunnels({ clock, max: 2, settleMs: 1_000 });
  const first = tunnel("first", 1);
  const second = tunnel("second", 3);
  const third = tunnel("third", 1);
  retiring.add(first, 60_000, "drained");
  retiring.add(second, 60_000, "drained");
  expect(retiring.add(third, 60_000, "drained")).toEqual([first]);
  expect(first.closedBy).toStartWith("too many draining tunnels");
  expect(retiring.size).toBe(2);
  expect(retiring.activeStreams()).toBe(4);
});

test("a tunnel the gateway closes is forgotten; closeAll closes the rest", async () => {
  const clock = new FakeClock();
  const retiring = new RetiringTunnels({ clock, max: 5, settleMs: 1_000 });
  const a = tunnel("a", 1);
  const b = tunnel("b", 1);
  retiring.add(a, 60_000, "drained");
  retiring.add(b, 60_000, "drained");
  a.peerClose("peer closed");
  await clock.advance(0);
  expect(retiring.has(a)).toBe(false);
  retiring.closeAll("stopping");
  expect(b.closedBy).toBe("stopping");
  expect(retiring.size).toBe(0);
  expect(clock.pendingTimers).toBe(0);
});
