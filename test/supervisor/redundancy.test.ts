/**
 * `planMove`: which slot moves to which gateway when tunnels share a gateway while another is unused.
 * (The supervisor tests drive `Redundancy` end to end on a fake clock.)
 */
import { expect, test } from "bun:test";
import { planMove } from "../../src/supervisor/redundancy.ts";
import { Backoff } from "../../src/retry/backoff.ts";
import type { Slot, SlotState, TunnelHandle } from "../../src/supervisor/supervisor-types.ts";
import type { Gateway } from "../../src/control/api.ts";

const gw = (id: string): Gateway => ({ id, url: `wss://127.0.0.1:1/${id}` });
const handle = (streams: number): TunnelHandle => ({
  closed: new Promise(() => {}),
  drain() {},
  activeStreams: () => streams,
  idle: () => new Promise(() => {}),
  close() {},
});
const slot = (index: number, state: SlotState, gateway: string, streams = 0): Slot => ({
  index,
  state,
  gateway: gw(gateway),
  ...(state === "up" ? { tunnel: handle(streams) } : {}),
  backoff: new Backoff(),
});

test("two up slots on one gateway and an unused one: the idlest slot moves to it", () => {
  const plan = planMove([slot(0, "up", "a", 5), slot(1, "up", "a", 2)], [gw("a"), gw("b")], new Map());
  expect(plan?.slot.index).toBe(1);
  expect(plan?.gateway.id).toBe("b");
});

test("among unused gateways the one that failed longest ago (or never) is chosen", () => {
  const failedAt = new Map([
    ["b", 1_000],
    ["c", 500],
  ]);
  expect(planMove([slot(0, "up", "a"), slot(1, "up", "a")], [gw("a"), gw("b"), gw("c")], failedAt)?.gateway.id).toBe(
    "c",
  );
  expect(
    planMove([slot(0, "up", "a"), slot(1, "up", "a")], [gw("a"), gw("b"), gw("c"), gw("d")], failedAt)?.gateway.id,
  ).toBe("d");
});

test("nothing to do: distinct gateways, no unused gateway, or the other slot is already dialling it", () => {
  expect(planMove([slot(0, "up", "a"), slot(1, "up", "b")], [gw("a"), gw("b"), gw("c")], new Map())).toBeUndefined();
  expect(planMove([slot(0, "up", "a"), slot(1, "up", "a")], [gw("a")], new Map())).toBeUndefined();
  expect(planMove([slot(0, "up", "a"), slot(1, "connecting", "b")], [gw("a"), gw("b")], new Map())).toBeUndefined();
  // Three tunnels, two gateways, both in use: as spread as it gets.
  expect(
    planMove([slot(0, "up", "a"), slot(1, "up", "b"), slot(2, "up", "a")], [gw("a"), gw("b")], new Map()),
  ).toBeUndefined();
});
