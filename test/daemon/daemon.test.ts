/**
 * A whole `Daemon` on fakes (daemon-fakes.ts) and a fake clock: no socket, no real time. It starts,
 * serves on two tunnels, and stops the way `connector run` does: SIGTERM → GO_AWAY on every tunnel →
 * open streams finish within the grace period → exit 0; grace expiry closes the rest; a second signal
 * stops at once.
 */
import { afterEach, expect, test } from "bun:test";
import { fstatSync } from "node:fs";
import { Daemon } from "../../src/daemon/daemon.ts";
import { createLogger } from "../../src/log.ts";
import { FakeClock, flushQueued, untilQueued } from "../support/fake-clock.ts";
import { daemonWorld, type DaemonWorld } from "./daemon-fakes.ts";

const worlds: DaemonWorld[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.cleanup();
});

/** A daemon serving on two tunnels (one per gateway), and its exit code to come. */
async function serving(flags: Record<string, string> = {}) {
  const clock = new FakeClock();
  const world = daemonWorld(clock, { flags: { tunnels: "2", "grace-period": "30", ...flags } });
  worlds.push(world);
  let exitCode: number | undefined;
  const exit = new Daemon(world.options, world.deps).run().then((code) => (exitCode = code));
  await untilQueued(() => world.gateways.open().length === 2, "two tunnels up");
  await untilQueued(() => world.snapshot().state === "connected", "status connected");
  return { clock, world, exit, exitCode: () => exitCode };
}

test("serves on one tunnel per gateway, with an access token, and says so in status", async () => {
  const { world } = await serving();
  expect(
    world.gateways
      .open()
      .map((d) => d.tunnel.gateway.id)
      .sort(),
  ).toEqual(["gw-a", "gw-b"]);
  expect(world.control.tokenRequests).toBe(1);
  expect(world.snapshot().tunnels.map((t) => t.state)).toEqual(["up", "up"]);
  expect(world.happened).toEqual(["admin"]);
  world.signals.send("SIGTERM");
});

test("SIGTERM: GO_AWAY on every tunnel, the open stream finishes, then exit 0 and everything closed", async () => {
  const { clock, world, exit, exitCode } = await serving({ metrics: "127.0.0.1:9100", health: "127.0.0.1:9101" });
  const [first, second] = world.gateways.open();
  first!.tunnel.streams = 1;
  world.signals.send("SIGTERM");
  await clock.advance(0);
  expect([first!.tunnel.drained, second!.tunnel.drained]).toEqual([true, true]);
  await clock.advance(20_000); // within the grace period: still waiting for the stream
  expect(exitCode()).toBeUndefined();
  expect(first!.tunnel.closedBy).toBeUndefined();
  first!.tunnel.streams = 0; // the user's stream ends: that is what ends the wait, not a timer
  await clock.advance(0);
  await exit;
  expect(exitCode()).toBe(0);
  expect(world.gateways.open()).toEqual([]);
  expect(world.happened).toEqual([
    "admin",
    "metrics 127.0.0.1:9100",
    "health 127.0.0.1:9101",
    "admin stopped",
    "metrics stopped",
    "health stopped",
    "lock released",
  ]);
  expect(world.lines.some((l) => l.includes("all streams finished"))).toBe(true);
  expect(world.signals.listening).toBe(false);
});

test("a stop is logged in the order it happens; every line after the identity names the connector", async () => {
  const clock = new FakeClock();
  const world = daemonWorld(clock, { flags: { tunnels: "2", "grace-period": "30" } });
  worlds.push(world);
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", format: "json", write: (l) => void lines.push(JSON.parse(l)) });
  const exit = new Daemon({ ...world.options, log }, world.deps).run();
  await untilQueued(() => world.gateways.open().length === 2, "two tunnels up");
  const [first] = world.gateways.open();
  first!.tunnel.streams = 2;
  const from = lines.length;
  world.signals.send("SIGTERM");
  await clock.advance(1_000);
  first!.tunnel.streams = 0;
  await clock.advance(0);
  expect(await exit).toBe(0);
  expect(lines.slice(from).map((l) => `${l.level} ${l.msg}`)).toEqual([
    "info stopping",
    "info draining: 2 streams open",
    "info all streams finished",
    "info tunnel down",
    "info tunnel down",
    "info tunnels closed",
    "info stopped",
  ]);
  expect(lines[from]).toMatchObject({ signal: "SIGTERM", gracePeriodSeconds: 30 });
  expect(lines.at(-1)).toMatchObject({ exitCode: 0 });
  const named = lines.findIndex((l) => l.msg === "starting");
  expect(named).toBeGreaterThanOrEqual(0);
  expect(lines.slice(named).every((l) => l.connectorId === "conn-1")).toBe(true);
});

test("under systemd (JOURNAL_STREAM names stderr) every line starts with its priority", async () => {
  const clock = new FakeClock();
  const world = daemonWorld(clock);
  worlds.push(world);
  const { dev, ino } = fstatSync(2, { bigint: true });
  const lines: string[] = [];
  const log = createLogger({ level: "info", format: "json", write: (l) => void lines.push(l) });
  const env = { ...world.options.env, JOURNAL_STREAM: `${dev}:${ino}` };
  const exit = new Daemon({ ...world.options, env, log }, world.deps).run();
  await untilQueued(() => world.gateways.open().length === 2, "two tunnels up");
  world.signals.send("SIGTERM");
  expect(await exit).toBe(0);
  expect(lines.length).toBeGreaterThan(5);
  expect(lines.filter((l) => !/^<[3-7]>\{/.test(l))).toEqual([]);
  expect(lines.at(-1)).toStartWith('<6>{"time"');
});

test("the grace period runs out: the remaining streams are closed and the exit is still 0", async () => {
  const { clock, world, exit, exitCode } = await serving({ "grace-period": "30" });
  const [first] = world.gateways.open();
  first!.tunnel.streams = 2;
  world.signals.send("SIGTERM");
  await clock.advance(29_999);
  expect(exitCode()).toBeUndefined();
  await clock.advance(1);
  await exit;
  expect(exitCode()).toBe(0);
  expect(first!.tunnel.closedBy).toBe("connector stopping");
  expect(world.lines.some((l) => l.startsWith("warn grace period over") && l.includes('"openStreams":2'))).toBe(true);
});

test("a second signal stops at once with 128 + its number", async () => {
  const { clock, world, exit, exitCode } = await serving();
  world.gateways.open()[0]!.tunnel.streams = 1;
  world.signals.send("SIGTERM");
  await clock.advance(1_000);
  expect(exitCode()).toBeUndefined();
  world.signals.send("SIGINT");
  await exit;
  expect(exitCode()).toBe(130);
  expect(world.gateways.open()).toEqual([]);
});

test("a signal during start-up (no catalog yet) stops without waiting for the control plane", async () => {
  const clock = new FakeClock();
  const world = daemonWorld(clock);
  worlds.push(world);
  world.control.revoked = true; // the first catalog fetch is refused: it retries slowly
  const exit = new Daemon(world.options, world.deps).run();
  await untilQueued(() => world.control.catalogRequests === 1, "the first catalog request");
  expect(world.snapshot().state).toBe("revoked");
  world.signals.send("SIGTERM");
  expect(await exit).toBe(0);
  expect(world.gateways.dialled).toEqual([]);
});

test("renewal: at two thirds of the certificate's life it renews, then new requests and every tunnel use the new one", async () => {
  const { clock, world } = await serving();
  const old = world.gateways.open();
  const oldCertificate = old[0]!.certificate;
  // A 3 h certificate: due at 2 h plus up to 5 % of its life of jitter (random 0.5: 4.5 min).
  await clock.advance(2 * 60 * 60_000 + 4.5 * 60_000 - 1);
  expect(world.renewals).toHaveLength(0);
  await clock.advance(1);
  await flushQueued();
  expect(world.renewals).toHaveLength(1);
  const renewed = world.renewals[0]!.certificate;
  await clock.advance(1_000);
  const up = world.gateways.open().filter((d) => !d.tunnel.drained);
  expect(up.map((d) => d.certificate)).toEqual([renewed, renewed]);
  expect(old.every((d) => d.tunnel.drained && d.certificate === oldCertificate)).toBe(true);
  expect(world.snapshot().certificate.notAfter).toBe(new Date(Date.parse("2026-01-01T05:04:30.000Z")).toISOString());
  world.control.certificates.length = 0;
  await clock.advance(5 * 60_000); // the catalog poll
  expect(world.control.certificates.length).toBeGreaterThan(0);
  expect(world.control.certificates.every((c) => c === renewed)).toBe(true);
  world.signals.send("SIGTERM");
});
