import { expect, test } from "bun:test";
import { Supervisor, type SupervisorEvent, type TunnelHandle } from "../../src/tunnel/supervisor.ts";
import { FakeClock } from "../support/fake-clock.ts";
import type { Gateway } from "../../src/control/api.ts";

const gw = (id: string): Gateway => ({ id, url: `wss://127.0.0.1:1/${id}` });

/** A fake tunnel world: which gateways accept, and a handle per live tunnel that the test can kill. */
function world() {
  const down = new Set<string>();
  const live: { gateway: string; kill: (reason: string) => void; drained: boolean; streams: number; handle?: TunnelHandle }[] = [];
  const attempts: string[] = [];
  const connect = async (gateway: Gateway): Promise<TunnelHandle> => {
    attempts.push(gateway.id);
    if (down.has(gateway.id)) throw new Error(`refused by ${gateway.id}`);
    let kill!: (reason: string) => void;
    const closed = new Promise<{ reason: string }>((resolve) => (kill = (reason) => resolve({ reason })));
    const entry: (typeof live)[number] = { gateway: gateway.id, kill, drained: false, streams: 0 };
    live.push(entry);
    closed.then(() => live.splice(live.indexOf(entry), 1));
    entry.handle = {
      closed,
      drain: () => void (entry.drained = true),
      activeStreams: () => entry.streams,
      close: (reason) => kill(reason),
    };
    return entry.handle;
  };
  return { down, live, attempts, connect };
}

function setup(gateways: Gateway[], tunnels = 2) {
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


test("a gateway's GO_AWAY moves its slot to another gateway at once; the old tunnel keeps its streams", async () => {
  const { clock, w, supervisor } = setup([gw("a"), gw("b")]);
  supervisor.start();
  await clock.advance(0);
  const onA = w.live.find((t) => t.gateway === "a")!;
  onA.streams = 3;
  const slotOfA = w.attempts.indexOf("a");
  supervisor.retire(slotOfA, onA.handle!);
  await clock.advance(0);
  // A replacement went to the other gateway right away, without waiting for a backoff.
  expect(w.attempts.slice(2)).toEqual(["b"]);
  expect(supervisor.upCount()).toBe(2);
  // The retired tunnel still counts for a graceful stop until the gateway closes it.
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
