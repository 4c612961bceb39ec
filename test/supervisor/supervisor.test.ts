import { expect, test } from "bun:test";
import { Supervisor, type SupervisorEvent, type TunnelHandle } from "../../src/supervisor/supervisor.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { StreamCount } from "./fake-tunnel.ts";
import type { Gateway } from "../../src/control/api.ts";

const gw = (id: string): Gateway => ({ id, url: `wss://127.0.0.1:1/${id}` });

/** A fake tunnel world: which gateways accept, and a handle per live tunnel that the test can kill. */
function world() {
  const down = new Set<string>();
  const live: {
    gateway: string;
    kill: (reason: string) => void;
    /** The gateway sends GO_AWAY on this tunnel. */
    goAway: () => void;
    drained: boolean;
    closedBy?: string;
    streams: number;
    handle?: TunnelHandle;
  }[] = [];
  /** Every tunnel ever opened, closed ones included. */
  const all: (typeof live)[number][] = [];
  /** Gateways that send GO_AWAY on every tunnel right after the upgrade. */
  const hostile = new Set<string>();
  const attempts: string[] = [];
  const connect = async (gateway: Gateway): Promise<TunnelHandle> => {
    attempts.push(gateway.id);
    if (down.has(gateway.id)) throw new Error(`refused by ${gateway.id}`);
    let kill!: (reason: string) => void;
    const closed = new Promise<{ reason: string }>((resolve) => (kill = (reason) => resolve({ reason })));
    const peerDraining = Promise.withResolvers<void>();
    const count = new StreamCount();
    const entry: (typeof live)[number] = {
      gateway: gateway.id,
      kill: (reason) => {
        count.end();
        kill(reason);
      },
      goAway: () => peerDraining.resolve(),
      drained: false,
      get streams() {
        return count.value;
      },
      set streams(n) {
        count.value = n;
      },
    };
    live.push(entry);
    all.push(entry);
    closed.then(() => live.splice(live.indexOf(entry), 1));
    entry.handle = {
      closed,
      drain: () => void (entry.drained = true),
      activeStreams: () => entry.streams,
      idle: () => count.idle(),
      close: (reason) => {
        entry.closedBy ??= reason;
        entry.kill(reason);
      },
      peerDraining: peerDraining.promise,
    };
    // GO_AWAY in the same read as the 101: it arrives before the supervisor holds the tunnel.
    if (hostile.has(gateway.id)) entry.goAway();
    return entry.handle;
  };
  return { down, live, all, hostile, attempts, connect };
}

function setup(gateways: Gateway[], tunnels = 2, extra: Partial<ConstructorParameters<typeof Supervisor>[0]> = {}) {
  const clock = new FakeClock();
  const w = world();
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor({
    gateways,
    tunnels,
    connect: w.connect,
    clock,
    onEvent: (e) => events.push(e),
    random: () => 0.5,
    ...extra,
  });
  return { clock, w, events, supervisor };
}

test("two tunnels go to two distinct gateways", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(0);
  expect(w.live.map((t) => t.gateway).sort()).toEqual(["a", "b"]);
  expect(supervisor.upCount()).toBe(2);
});

test("a dead gateway is retried with backoff and gets its tunnel back when it returns", async () => {
  const { clock, w, supervisor, events } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(0);
  w.down.add("b");
  w.live.find((t) => t.gateway === "b")!.kill("gateway gone");
  await clock.advance(0);
  // The slot does not double up on "a": it keeps retrying "b" with growing, jittered delays.
  await clock.advance(10_000);
  const retries = w.attempts.slice(2);
  expect(retries.length).toBeGreaterThanOrEqual(3);
  expect(new Set(retries)).toEqual(new Set(["b"]));
  const delays = events.flatMap((e) => (e.type === "slot" && e.retryInMs !== undefined ? [e.retryInMs] : []));
  expect(delays.slice(0, 3)).toEqual([500, 1000, 2000]);
  w.down.delete("b");
  await clock.advance(8_000);
  expect(w.live.map((t) => t.gateway).sort()).toEqual(["a", "b"]);
});

test("with a spare gateway, a failed tunnel moves to it at once", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b"), gw("c")]);
  supervisor.start();
  await clock.advance(0);
  const before = w.live.map((t) => t.gateway);
  expect(new Set(before).size).toBe(2);
  const victim = before[1]!;
  const spare = ["a", "b", "c"].find((g) => !before.includes(g))!;
  w.down.add(victim);
  w.live.find((t) => t.gateway === victim)!.kill("gateway gone");
  await clock.advance(1_000);
  expect(w.live.map((t) => t.gateway).sort()).toEqual([before[0]!, spare].sort());
});

test("a single gateway carries all tunnels", async () => {
  const { clock, w, supervisor } = setup([gw("only")], 3);
  supervisor.start();
  await clock.advance(0);
  expect(w.live.map((t) => t.gateway)).toEqual(["only", "only", "only"]);
});

test("drain sends GO_AWAY on every tunnel and stops reconnecting", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(0);
  supervisor.drain();
  expect(w.live.every((t) => t.drained)).toBe(true);
  w.live[0]!.kill("closed after drain");
  await clock.advance(120_000);
  expect(w.attempts.length).toBe(2);
  expect(supervisor.upCount()).toBe(1);
});

test("state changes are reported as events with the gateway", async () => {
  const { clock, supervisor, events } = setup([gw("a")], 1);
  supervisor.start();
  await clock.advance(0);
  const states = events.flatMap((e) => (e.type === "slot" ? [`${e.slot}:${e.state}:${e.gateway.id}`] : []));
  expect(states).toEqual(["0:connecting:a", "0:up:a"]);
});

test("a GO_AWAY on a stable tunnel moves its slot to another gateway at once; the old tunnel keeps its streams", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(10_000); // stable
  const onA = w.live.find((t) => t.gateway === "a")!;
  onA.streams = 3;
  onA.goAway();
  await clock.advance(0);
  // A replacement went to the other gateway right away, without waiting for a backoff.
  expect(w.attempts.slice(2)).toEqual(["b"]);
  expect(supervisor.upCount()).toBe(2);
  // The retired tunnel still counts for a graceful stop while its streams run.
  expect(supervisor.activeStreams()).toBe(3);
  onA.kill("gateway closed after its streams finished");
  await clock.advance(0);
  expect(supervisor.activeStreams()).toBe(0);
  // Its close does not take the slot down again.
  expect(supervisor.upCount()).toBe(2);
  expect(w.attempts.length).toBe(3);
});

test("replace (new credentials): the slot dials again now; the old tunnel drains and closes once its streams end", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(0);
  const old = w.live.find((t) => t.gateway === "a")!;
  const slot = old === w.live[0] ? 0 : 1;
  old.streams = 2;
  expect(supervisor.replace(slot, old.handle!, 60_000)).toBe(true);
  expect(old.drained).toBe(true);
  await clock.advance(0);
  expect(supervisor.isUp(slot)).toBe(true); // the replacement is up while the old tunnel still serves
  expect(w.live).toHaveLength(3);
  await clock.advance(10_000);
  expect(w.live).toContain(old); // streams still open: kept
  old.streams = 0;
  await clock.advance(1_000);
  expect(w.live).not.toContain(old);
  expect(supervisor.upCount()).toBe(2);
  expect(supervisor.replace(slot, old.handle!, 60_000)).toBe(false); // no longer the slot's tunnel
});

test("replace closes the old tunnel at the grace deadline even with streams still open", async () => {
  const { clock, w, supervisor } = setup([gw("a")], 1);
  supervisor.start();
  await clock.advance(0);
  const old = w.live[0]!;
  old.streams = 1;
  supervisor.replace(0, old.handle!, 5_000);
  await clock.advance(4_000);
  expect(w.live).toContain(old);
  await clock.advance(1_000);
  expect(w.live).not.toContain(old);
  expect(supervisor.upCount()).toBe(1);
});

test("setGateways: later dials choose from the new list", async () => {
  const { clock, w, supervisor } = setup([gw("a")], 1);
  supervisor.start();
  await clock.advance(0);
  supervisor.setGateways([gw("z")]);
  supervisor.replace(0, w.live[0]!.handle!, 0);
  await clock.advance(1_000);
  expect(w.attempts).toEqual(["a", "z"]);
});

test("a gateway that sends GO_AWAY right after every upgrade: dials are spaced by the backoff and we close the drained tunnels", async () => {
  const { clock, w, supervisor, events } = setup([gw("evil")], 2);
  w.hostile.add("evil");
  supervisor.start();
  let maxOpen = 0;
  for (let t = 0; t < 60_000; t += 100) {
    await clock.advance(100);
    maxOpen = Math.max(maxOpen, w.live.length);
  }
  // Per slot the delays (random 0.5) are 0.5, 1, 2, 4, 8, 16, 30 s: 7 dials in the first minute, not thousands.
  expect(w.attempts.length).toBe(14);
  const delays = events.flatMap((e) =>
    e.type === "slot" && e.slot === 0 && e.retryInMs !== undefined ? [e.retryInMs] : [],
  );
  expect(delays.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
  // The connector itself closed every drained tunnel (no streams), about a second after its GO_AWAY.
  const closedByUs = w.all.filter((t) => t.closedBy === "gateway drained this tunnel");
  expect(closedByUs.length).toBeGreaterThanOrEqual(12);
  expect(maxOpen).toBeLessThanOrEqual(4);
  expect(supervisor.upCount()).toBe(0);
});

test("retiring tunnels are capped at twice the tunnel count: past it the idlest is closed", async () => {
  const { clock, w, supervisor } = setup([gw("evil")], 2);
  w.hostile.add("evil");
  supervisor.start();
  let maxRetiring = 0;
  // Every drained tunnel keeps one stream that never ends, so only the cap (or the 10 min bound) closes it.
  for (let t = 0; t < 5 * 60_000; t += 100) {
    for (const tunnel of w.live) tunnel.streams = 1;
    await clock.advance(100);
    maxRetiring = Math.max(maxRetiring, supervisor.retiringCount(), w.live.length - supervisor.upCount());
  }
  expect(w.attempts.length).toBeGreaterThan(6);
  expect(maxRetiring).toBe(4);
  expect(w.all.filter((t) => t.closedBy?.startsWith("too many draining tunnels")).length).toBe(w.attempts.length - 4);
});

test("a drained tunnel is closed by us once its streams end, after a short wait for OPENs in flight, or at the bound", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")], 2, { drainedGraceMs: 120_000 });
  supervisor.start();
  await clock.advance(10_000);
  const [first, second] = w.live as [(typeof w.live)[number], (typeof w.live)[number]];
  second.streams = 1;
  first.goAway();
  second.goAway();
  await clock.advance(999);
  expect(first.closedBy).toBeUndefined(); // an OPEN sent before the GO_AWAY may still be on its way
  await clock.advance(1);
  expect(first.closedBy).toBe("gateway drained this tunnel");
  await clock.advance(60_000);
  expect(second.closedBy).toBeUndefined(); // its stream still runs
  await clock.advance(60_000);
  expect(second.closedBy).toBe("gateway drained this tunnel");
  expect(supervisor.retiringCount()).toBe(0);
  expect(supervisor.upCount()).toBe(2);
});

test("a GO_AWAY that comes with the upgrade (before the supervisor holds the tunnel) still retires it", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")], 2);
  w.hostile.add("b");
  supervisor.start();
  await clock.advance(0);
  expect(supervisor.isUp(0)).toBe(true);
  expect(supervisor.isUp(1)).toBe(false); // not "up" on a gateway that routes nothing to it
  await clock.advance(1_000);
  expect(w.all.find((t) => t.gateway === "b")!.closedBy).toBe("gateway drained this tunnel");
  // The replacement went to "a" (the only other gateway) after the backoff.
  expect(w.attempts.slice(0, 3).sort()).toEqual(["a", "a", "b"]);
  expect(supervisor.upCount()).toBe(2);
});

test("redundancy: after gateway b drains both slots sit on a; when b is back a slot moves to it, make-before-break", async () => {
  const { clock, w, supervisor, events } = setup([gw("a"), gw("b")], 2);
  supervisor.start();
  await clock.advance(10_000);
  const onB = w.live.find((t) => t.gateway === "b")!;
  w.down.add("b"); // restarting
  onB.goAway();
  await clock.advance(0);
  expect(w.live.filter((t) => t !== onB).map((t) => t.gateway)).toEqual(["a", "a"]);
  // While b is away, attempts to move back are spaced by a growing, jittered backoff (5 s, 10 s, 20 s ceilings).
  await clock.advance(30_000);
  const scheduled = events.flatMap((e) => (e.type === "rebalance" && e.phase === "scheduled" ? [e.inMs] : []));
  expect(scheduled.slice(0, 3)).toEqual([2_500, 5_000, 10_000]);
  expect(w.attempts.filter((g) => g === "b").length).toBe(1 + 3);
  w.down.delete("b");
  await clock.advance(60_000);
  const open = w.live.filter((t) => t.closedBy === undefined);
  expect(open.map((t) => t.gateway).sort()).toEqual(["a", "b"]);
  expect(supervisor.upCount()).toBe(2);
  // The doubled tunnel was drained by us (GO_AWAY) and closed once idle, after the new one was up.
  const moved = w.all.filter((t) => t.gateway === "a" && t.drained);
  expect(moved).toHaveLength(1);
  expect(moved[0]!.closedBy).toBe("moved to a distinct gateway");
  // Balanced: no more attempts.
  const attempts = w.attempts.length;
  await clock.advance(10 * 60_000);
  expect(w.attempts.length).toBe(attempts);
});

test("redundancy: with as many gateways as tunnels in use, nothing moves", async () => {
  const { clock, w, supervisor, events } = setup([gw("a")], 3);
  supervisor.start();
  await clock.advance(10 * 60_000);
  expect(w.attempts).toEqual(["a", "a", "a"]);
  expect(events.some((e) => e.type === "rebalance")).toBe(false);
});

test("redundancy: a gateway that drains the new tunnel at once never costs the slot its tunnel, and is tried rarely", async () => {
  const { clock, w, supervisor, events } = setup([gw("a"), gw("b")], 2);
  supervisor.start();
  await clock.advance(10_000);
  const onB = w.live.find((t) => t.gateway === "b")!;
  w.hostile.add("b"); // from now on b drains every tunnel right after the upgrade
  onB.goAway();
  await clock.advance(10 * 60_000);
  // Both slots stayed on their tunnels to "a" the whole time: never drained by a move.
  const onA = w.all.filter((t) => t.gateway === "a");
  expect(onA.filter((t) => t.drained || t.closedBy !== undefined)).toEqual([]);
  expect(supervisor.upCount()).toBe(2);
  // Moves to "b" were tried, each failed in probation, spaced by the 5 s → 2 min backoff: with random
  // 0.5 the waits are 2.5, 5, 10, 20, 40 s, then 60 s each: 13 tries in 10 minutes.
  const failed = events.filter((e) => e.type === "rebalance" && e.phase === "failed");
  expect(failed.length).toBe(13);
  expect(events.some((e) => e.type === "rebalance" && e.phase === "moved")).toBe(false);
  // Every probation tunnel to "b" was closed by us.
  expect(w.all.filter((t) => t.gateway === "b" && t !== onB && t.closedBy === undefined)).toEqual([]);
});

/** Both slots on "a" after "b" drained and came back; returns the first probation tunnel to "b". */
async function probationToB(extra: Partial<ConstructorParameters<typeof Supervisor>[0]> = {}) {
  const s = setup([gw("a"), gw("b")], 2, extra);
  s.supervisor.start();
  await s.clock.advance(10_000);
  const onB = s.w.live.find((t) => t.gateway === "b")!;
  onB.goAway(); // b restarts gracefully and is back at once
  await s.clock.advance(0);
  // The first move is scheduled at 2.5 s (random 0.5 of the 5 s ceiling); the new tunnel is then on probation.
  await s.clock.advance(2_500);
  const probation = s.w.live.find((t) => t.gateway === "b" && t !== onB)!;
  expect(probation).toBeDefined();
  return { ...s, probation };
}

test("redundancy: a tunnel on probation the gateway drains keeps its users: drained and retired, closed once idle", async () => {
  const { clock, w, supervisor, probation } = await probationToB();
  probation.streams = 2; // the gateway already sent users there
  expect(supervisor.activeStreams()).toBe(2);
  probation.goAway();
  await clock.advance(5_000);
  expect(probation.closedBy).toBeUndefined(); // not cut: its streams go on
  expect(probation.drained).toBe(true);
  probation.streams = 0;
  await clock.advance(2_000);
  expect(probation.closedBy).toBeDefined();
  expect(w.live.filter((t) => t.gateway === "a")).toHaveLength(2); // the slots never moved
});

test("redundancy: a certificate renewal during the probation keeps the old-credential tunnel out of the slot", async () => {
  const { clock, w, supervisor, probation, events } = await probationToB();
  const slot1 = w.live.find((t) => t.gateway === "a" && t !== probation)!;
  const up = events.find((e) => e.type === "slot" && e.tunnel === slot1.handle);
  expect(supervisor.replace((up as { slot: number }).slot, slot1.handle!, 60_000)).toBe(true);
  await clock.advance(30_000); // well past the probation
  // The probation tunnel (dialled with the old credentials) never took a slot: it was drained.
  expect(probation.drained).toBe(true);
  expect(events.filter((e) => e.type === "slot" && e.tunnel === probation.handle)).toEqual([]);
});

test("redundancy: a graceful stop during the probation waits for that tunnel's streams too", async () => {
  const { supervisor, probation } = await probationToB();
  probation.streams = 1;
  supervisor.drain();
  expect(probation.drained).toBe(true);
  expect(probation.closedBy).toBeUndefined();
  expect(supervisor.activeStreams()).toBe(1);
  supervisor.stop();
  expect(probation.closedBy).toBeDefined();
});

test("the supervisor answers which tunnel serves which slot; a replaced or closed tunnel is no longer listed", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(0);
  const byGateway = (id: string) => w.live.find((t) => t.gateway === id)!;
  const slotOfA = supervisor.tunnel(0) === byGateway("a").handle ? 0 : 1;
  expect(new Set(supervisor.tunnels().values())).toEqual(new Set([w.live[0]!.handle!, w.live[1]!.handle!]));
  const old = byGateway("a");
  supervisor.replace(slotOfA, old.handle!, 60_000);
  expect(supervisor.tunnel(slotOfA)).toBeUndefined(); // retiring: not the slot's any more
  await clock.advance(0);
  expect(supervisor.tunnel(slotOfA)).not.toBe(old.handle);
  expect(supervisor.tunnel(slotOfA)).toBeDefined();
  const current = supervisor.tunnel(slotOfA)!;
  w.live.find((t) => t.handle === current)!.kill("network");
  await clock.advance(0);
  expect(supervisor.tunnels().has(slotOfA)).toBe(false);
});

test("idle(): resolves once every tunnel held (slots and retiring) has no stream, without any timer", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(10_000);
  const [first, second] = w.live as [(typeof w.live)[number], (typeof w.live)[number]];
  first.streams = 2;
  second.streams = 1;
  first.goAway(); // retiring, streams still open
  await clock.advance(0);
  supervisor.drain();
  expect(supervisor.stopping).toBe(true);
  let idle = false;
  void supervisor.idle().then(() => (idle = true));
  second.streams = 0;
  await clock.advance(0);
  expect(idle).toBe(false); // the retiring tunnel still carries two
  first.streams = 0;
  await clock.advance(0); // no time passes: the streams' end is what resolves it
  expect(idle).toBe(true);
});

test("a down slot says why as a stable code, and whether the dial failed or the tunnel was up", async () => {
  const { clock, w, supervisor, events } = setup([gw("a")], 1);
  supervisor.start();
  await clock.advance(0);
  w.down.add("a");
  w.live[0]!.kill("gateway gone");
  await clock.advance(0);
  await clock.advance(600);
  const downs = events.flatMap((e) => (e.type === "slot" && e.state === "down" ? [e] : []));
  // The tunnel that was up closed (the fake gives no code: OTHER); the next dial threw a plain Error.
  expect(downs.slice(0, 2).map((e) => [e.after, e.code, e.error])).toEqual([
    ["up", "OTHER", "gateway gone"],
    ["connect", "OTHER", "refused by a"],
  ]);
  expect(downs.every((e) => e.retryInMs !== undefined)).toBe(true);
});
