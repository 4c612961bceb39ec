/**
 * `RetiringTunnels`: drained tunnels are closed by us once idle (after a settle wait), at the latest at
 * their grace deadline, and never more than `max` stay open: the idlest, then the oldest, goes first.
 */
import { expect, test } from "bun:test";
import { RetiringTunnels } from "../../src/supervisor/retiring-tunnels.ts";
import type { TunnelHandle } from "../../src/supervisor/supervisor.ts";
import { FakeClock } from "../support/fake-clock.ts";

function tunnel(name: string, streams = 0) {
  let resolve!: (v: { reason: string }) => void;
  const t = {
    name,
    streams,
    closedBy: undefined as string | undefined,
    peerClose: () => resolve({ reason: "peer closed" }),
    handle: undefined as unknown as TunnelHandle,
  };
  const closed = new Promise<{ reason: string }>((r) => (resolve = r));
  t.handle = {
    closed,
    drain: () => {},
    activeStreams: () => t.streams,
    close: (reason) => {
      t.closedBy ??= reason;
      resolve({ reason });
    },
  };
  return t;
}

test("an idle tunnel is closed after the settle wait; a busy one when its streams end or at its deadline", async () => {
  const clock = new FakeClock();
  const retiring = new RetiringTunnels({ clock, max: 10, settleMs: 1_000 });
  const idle = tunnel("idle");
  const busy = tunnel("busy", 2);
  const stuck = tunnel("stuck", 1);
  retiring.add(idle.handle, 60_000, "drained");
  retiring.add(busy.handle, 60_000, "drained");
  retiring.add(stuck.handle, 30_000, "drained");
  await clock.advance(999);
  expect(idle.closedBy).toBeUndefined();
  await clock.advance(1);
  expect(idle.closedBy).toBe("drained");
  busy.streams = 0;
  await clock.advance(1_000);
  expect(busy.closedBy).toBe("drained");
  await clock.advance(27_999);
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
  retiring.add(first.handle, 60_000, "drained");
  retiring.add(second.handle, 60_000, "drained");
  expect(retiring.add(third.handle, 60_000, "drained")).toEqual([first.handle]);
  expect(first.closedBy).toStartWith("too many draining tunnels");
  expect(retiring.size).toBe(2);
  expect(retiring.activeStreams()).toBe(4);
});

test("a tunnel the gateway closes is forgotten; closeAll closes the rest", async () => {
  const clock = new FakeClock();
  const retiring = new RetiringTunnels({ clock, max: 5, settleMs: 1_000 });
  const a = tunnel("a", 1);
  const b = tunnel("b", 1);
  retiring.add(a.handle, 60_000, "drained");
  retiring.add(b.handle, 60_000, "drained");
  a.peerClose();
  await clock.advance(0);
  expect(retiring.has(a.handle)).toBe(false);
  retiring.closeAll("stopping");
  expect(b.closedBy).toBe("stopping");
  expect(retiring.size).toBe(0);
  expect(clock.pendingTimers).toBe(0);
});
