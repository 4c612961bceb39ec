/**
 * The daemon's view of its tunnels: `LiveTunnels` (at most one supervisor, none while revoked; its
 * events heard across a restart), the event-driven wait, and what supervisor events do to status
 * (tunnel-events.ts) — a retired tunnel's counters count until it closes, so totals never go back.
 */
import { expect, test } from "bun:test";
import { untilTrue } from "../../src/daemon/event-wait.ts";
import { LiveTunnels } from "../../src/daemon/live-tunnels.ts";
import { StatusModel } from "../../src/daemon/status-model.ts";
import { tunnelEventsToStatus } from "../../src/daemon/tunnel-events.ts";
import { logEvents } from "../../src/daemon/event-log.ts";
import { DaemonEvents } from "../../src/daemon/events.ts";
import type { Tunnel } from "../../src/supervisor/connection.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { Gateway } from "../../src/supervisor/supervisor-types.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { FakeTunnel } from "../supervisor/fake-tunnel.ts";
import { identityFor, recordingLog } from "./daemon-fakes.ts";

const gateways: Gateway[] = ["a", "b"].map((id) => ({ id, url: `wss://${id}.invalid/v1/tunnel` }));

function live(clock: FakeClock) {
  const dialled: FakeTunnel[] = [];
  let supervisors = 0;
  const tunnels = new LiveTunnels((onEvent) => {
    supervisors++;
    return new Supervisor<Tunnel>({
      gateways,
      tunnels: 2,
      clock,
      onEvent,
      random: () => 0.5,
      connect: async (gateway) => {
        const tunnel = new FakeTunnel(gateway);
        dialled.push(tunnel);
        return tunnel;
      },
    });
  });
  return { tunnels, dialled, supervisors: () => supervisors };
}

test("one supervisor at a time; a wait started before a stop hears the supervisor started after it", async () => {
  const clock = new FakeClock();
  const { tunnels, dialled, supervisors } = live(clock);
  expect(tunnels.upCount()).toBe(0);
  tunnels.start();
  tunnels.start();
  expect(supervisors()).toBe(1);
  await clock.advance(0);
  expect(tunnels.tunnels()).toEqual(dialled);
  tunnels.stop("connector revoked");
  expect(tunnels.running).toBe(false);
  expect(dialled.every((t) => t.closedBy === "connector revoked")).toBe(true);
  let up = false;
  void untilTrue(
    (l) => tunnels.subscribe(l),
    () => tunnels.upCount() === 2,
    { clock },
  ).then((r) => (up = r));
  await clock.advance(0);
  expect(up).toBe(false);
  tunnels.start(); // reinstated
  await clock.advance(0);
  expect(up).toBe(true);
  expect(supervisors()).toBe(2);
});

test("untilTrue: true when the condition holds at an event, false at the deadline or on abort; never left subscribed", async () => {
  const clock = new FakeClock();
  const listeners = new Set<() => void>();
  const subscribe = (l: () => void) => {
    listeners.add(l);
    return () => listeners.delete(l);
  };
  let value = 0;
  expect(await untilTrue(subscribe, () => true, { clock })).toBe(true);
  const timed = untilTrue(subscribe, () => value > 0, { clock, timeoutMs: 5_000 });
  await clock.advance(5_000);
  expect(await timed).toBe(false);
  const abort = new AbortController();
  const aborted = untilTrue(subscribe, () => value > 0, { clock, signal: abort.signal });
  abort.abort();
  expect(await aborted).toBe(false);
  const heard = untilTrue(subscribe, () => value > 0, { clock, timeoutMs: 5_000 });
  value = 1;
  for (const l of [...listeners]) l();
  expect(await heard).toBe(true);
  expect(listeners.size).toBe(0);
  expect(clock.pendingTimers).toBe(0);
});

test("status follows the supervisor's events: a retired tunnel counts until it closes, a closed one is folded in", async () => {
  const clock = new FakeClock();
  const { tunnels, dialled } = live(clock);
  const status = new StatusModel(identityFor(gateways));
  const { log, lines } = recordingLog();
  const events = new DaemonEvents();
  events.subscribe((e) => status.apply(e));
  events.subscribe(logEvents({ log, summary: () => status.summary() }));
  tunnels.subscribe(tunnelEventsToStatus({ status, events, clock, stopping: () => false }));
  tunnels.start();
  await clock.advance(10_000);
  expect(status.snapshot().tunnels.map((t) => t.state)).toEqual(["up", "up"]);
  const [a, b] = dialled;
  a!.streams = 3;
  b!.streams = 1;
  expect(status.snapshot().streams.active).toBe(4);
  a!.goAway(); // retired: its slot redials, its streams still count
  await clock.advance(0);
  expect(status.snapshot().streams.active).toBe(4);
  expect(status.snapshot().streams.created).toBe(4);
  a!.peerClose("done"); // closed: folded into the totals, no longer active
  b!.peerClose("network"); // closed in its slot: the same
  await clock.advance(0);
  const snap = status.snapshot();
  expect(snap.streams.created).toBe(4);
  expect(snap.tunnels.map((t) => t.state)).toContain("down");
  expect(lines.some((l) => l.startsWith("warn tunnel down"))).toBe(true);
});
