/**
 * The graceful stop (drain.ts, stop-control.ts) on a fake clock with fake tunnels under a real
 * supervisor: GO_AWAY on every tunnel, then the wait for the open streams — ended by the last stream's
 * end (no time needs to pass), by the grace period, or by a second signal — and the exit codes.
 */
import { expect, test } from "bun:test";
import { drainTunnels, type DrainOutcome } from "../../src/daemon/drain.ts";
import { StopControl } from "../../src/daemon/stop-control.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { Gateway } from "../../src/supervisor/supervisor-types.ts";
import { FakeClock, flushQueued } from "../support/fake-clock.ts";
import { FakeTunnel } from "../supervisor/fake-tunnel.ts";
import { recordingLog } from "./daemon-fakes.ts";

const gateways: Gateway[] = ["a", "b"].map((id) => ({ id, url: `wss://${id}.invalid/v1/tunnel` }));

async function supervised() {
  const clock = new FakeClock();
  const { log, lines } = recordingLog();
  const tunnels: FakeTunnel[] = [];
  const supervisor = new Supervisor<FakeTunnel>({
    gateways,
    tunnels: 2,
    clock,
    onEvent: () => {},
    random: () => 0.5,
    connect: async (gateway) => {
      const tunnel = new FakeTunnel(gateway);
      tunnels.push(tunnel);
      return tunnel;
    },
  });
  supervisor.start();
  await clock.advance(0);
  return { clock, log, lines, tunnels, supervisor };
}

function drain(s: Awaited<ReturnType<typeof supervised>>, graceMs: number, cut?: AbortSignal) {
  const order: string[] = [];
  let outcome: DrainOutcome | undefined;
  void drainTunnels({
    tunnels: s.supervisor,
    graceMs,
    clock: s.clock,
    log: s.log,
    reason: "SIGTERM",
    ...(cut ? { cut } : {}),
    afterGoAway: () => void order.push(`after GO_AWAY: drained ${s.tunnels.filter((t) => t.drained).length}`),
  }).then((o) => (outcome = o));
  return { order, outcome: () => outcome };
}

test("GO_AWAY on every tunnel first; the wait ends when the last stream ends, with no time passing", async () => {
  const s = await supervised();
  const [a, b] = s.tunnels;
  a!.streams = 2;
  b!.streams = 1;
  const d = drain(s, 30_000);
  expect(d.order).toEqual(["after GO_AWAY: drained 2"]);
  expect(s.lines).toEqual(['info draining: 3 streams open {"openStreams":3,"gracePeriodSeconds":30}']);
  await s.clock.advance(10_000);
  a!.streams = 0;
  await s.clock.advance(0);
  expect(d.outcome()).toBeUndefined(); // b still has one
  b!.streams = 0;
  await flushQueued();
  expect(d.outcome()).toBe("finished");
  expect(s.lines.at(-1)).toStartWith("info all streams finished");
  // Draining stops reconnects: a tunnel that closes now is not replaced.
  a!.peerClose("gateway gone");
  await s.clock.advance(60_000);
  expect(s.tunnels).toHaveLength(2);
});

test("a tunnel the gateway closes during the drain ends its streams; the others are still waited for", async () => {
  const s = await supervised();
  const [a, b] = s.tunnels;
  a!.streams = 1;
  b!.streams = 1;
  const d = drain(s, 30_000);
  a!.peerClose("network");
  await s.clock.advance(0);
  expect(d.outcome()).toBeUndefined();
  b!.streams = 0;
  await s.clock.advance(0);
  expect(d.outcome()).toBe("finished");
});

test("the grace period ends the wait; what is left is reported (the caller's shutdown closes it)", async () => {
  const s = await supervised();
  s.tunnels[0]!.streams = 4;
  const d = drain(s, 30_000);
  await s.clock.advance(29_999);
  expect(d.outcome()).toBeUndefined();
  await s.clock.advance(1);
  expect(d.outcome()).toBe("grace-over");
  expect(s.lines.at(-1)).toStartWith("warn grace period over: closing remaining streams");
  expect(s.lines.at(-1)).toContain('"openStreams":4');
  expect(s.tunnels[0]!.session.isClosed).toBe(false);
  expect(s.clock.pendingTimers).toBe(0); // nothing left ticking
});

test("a second signal (cut) ends the wait at once", async () => {
  const s = await supervised();
  s.tunnels[0]!.streams = 1;
  const cut = new AbortController();
  const d = drain(s, 30_000, cut.signal);
  await s.clock.advance(1_000);
  cut.abort();
  await flushQueued();
  expect(d.outcome()).toBe("cut");
});

test("no supervisor (still starting, or revoked): nothing to wait for; a hand-over still lets go of the lock", async () => {
  const clock = new FakeClock();
  const { log, lines } = recordingLog();
  let released = false;
  const outcome = await drainTunnels({
    tunnels: undefined,
    graceMs: 30_000,
    clock,
    log,
    reason: "hand-over",
    afterGoAway: () => void (released = true),
  });
  expect(outcome).toBe("no-tunnels");
  expect(released).toBe(true);
  expect(lines).toEqual([]);
});

/** A StopControl whose drain the test finishes by hand. */
function stopControl() {
  const { log, lines } = recordingLog();
  const drains: { reason: string; cut: AbortSignal; afterGoAway?: () => void; finish: () => void }[] = [];
  const cancelled: string[] = [];
  const stop = new StopControl({
    log,
    graceMs: 30_000,
    cancelSuccessor: (why) => void cancelled.push(why),
    drain: (reason, cut, afterGoAway) =>
      new Promise<void>((finish) => drains.push({ reason, cut, finish, ...(afterGoAway ? { afterGoAway } : {}) })),
  });
  let code: number | undefined;
  void stop.exitCode.then((c) => (code = c));
  return { stop, lines, drains, cancelled, code: () => code };
}

test("first signal: stopping begins, a successor not ready is cancelled, the drain runs; exit 0 once it is done", async () => {
  const s = stopControl();
  s.stop.signal("SIGTERM");
  expect(s.stop.stopping.aborted).toBe(true);
  expect(s.cancelled).toEqual(["stopping on SIGTERM"]);
  expect(s.drains.map((d) => d.reason)).toEqual(["SIGTERM"]);
  expect(s.lines).toEqual(['info stopping {"signal":"SIGTERM","gracePeriodSeconds":30}']);
  await flushQueued();
  expect(s.code()).toBeUndefined();
  s.drains[0]!.finish();
  await flushQueued();
  expect(s.code()).toBe(0);
});

test("second signal: exit 128 + its number at once, and the drain's wait is cut", async () => {
  for (const [second, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    const s = stopControl();
    s.stop.signal("SIGTERM");
    s.stop.signal(second);
    await flushQueued();
    expect(s.code()).toBe(code);
    expect(s.drains[0]!.cut.aborted).toBe(true);
    expect(s.drains).toHaveLength(1);
    expect(s.lines.some((l) => l.startsWith("warn second signal: stopping now"))).toBe(true);
  }
});

test("handed over: the drain lets go of the lock after the GO_AWAYs; a signal then starts no second drain", async () => {
  const s = stopControl();
  let released = 0;
  s.stop.handOver(() => void released++);
  expect(s.stop.handedOver).toBe(true);
  expect(s.stop.stopping.aborted).toBe(true);
  expect(s.drains.map((d) => d.reason)).toEqual(["hand-over"]);
  expect(s.lines).toEqual(['info stopping {"reason":"hand-over","gracePeriodSeconds":30}']);
  s.drains[0]!.afterGoAway?.();
  expect(released).toBe(1);
  s.stop.signal("SIGTERM");
  expect(s.drains).toHaveLength(1);
  expect(s.lines.some((l) => l.includes("already draining after the hand-over"))).toBe(true);
  s.drains[0]!.finish();
  await flushQueued();
  expect(s.code()).toBe(0);
});
