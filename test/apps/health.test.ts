import { expect, test } from "bun:test";
import { HealthMonitor, type HealthTransition, tcpCheck } from "../../src/apps/health.ts";
import type { HealthReport } from "../../src/mux/payloads.ts";
import { FakeClock } from "../support/fake-clock.ts";

const catalog = {
  version: "1",
  apps: [
    { name: "wiki", destinations: [{ host: "wiki.corp.example", ports: "443" }], servers: ["wiki.corp.example:443"] },
    { name: "db", destinations: [{ host: "10.0.0.5", ports: "5432" }], servers: ["10.0.0.5:5432"] },
  ],
};

function monitor(up: Set<string>) {
  const clock = new FakeClock();
  const reports: HealthReport[] = [];
  const transitions: HealthTransition[] = [];
  const health = new HealthMonitor({
    clock,
    onChange: (r) => reports.push(r),
    onTransition: (t) => void transitions.push(t),
    probe: async (host, port) => up.has(`${host}:${port}`),
    resolve: async (name) =>
      name === "wiki.corp.example"
        ? [
            { address: "10.0.0.1", family: 4 },
            { address: "10.0.0.2", family: 4 },
          ]
        : [],
    intervalMs: 30_000,
  });
  return { clock, reports, transitions, health };
}

test("each resolved address of each app is a server with its own health", async () => {
  const { health, reports } = monitor(new Set(["10.0.0.1:443"]));
  expect(health.ready).toBe(false);
  await health.setCatalog(catalog);
  expect(health.ready).toBe(true);
  expect(reports.at(-1)).toEqual({
    apps: [
      {
        name: "wiki",
        servers: [
          { address: "10.0.0.1:443", healthy: true },
          { address: "10.0.0.2:443", healthy: false },
        ],
      },
      { name: "db", servers: [{ address: "10.0.0.5:5432", healthy: false }] },
    ],
  });
});

test("a change found by the periodic check is reported; an unchanged one is not", async () => {
  const up = new Set(["10.0.0.1:443"]);
  const { health, reports, clock } = monitor(up);
  await health.setCatalog(catalog);
  health.start();
  const before = reports.length;
  await clock.advance(30_000);
  expect(reports.length).toBe(before);
  up.add("10.0.0.5:5432");
  await clock.advance(30_000);
  expect(reports.length).toBe(before + 1);
  expect(reports.at(-1)!.apps[1]!.servers[0]!.healthy).toBe(true);
  health.stop();
});

test("a failed stream dial marks the server unhealthy at once (passive health)", async () => {
  const { health, reports } = monitor(new Set(["10.0.0.1:443", "10.0.0.2:443"]));
  await health.setCatalog(catalog);
  const before = reports.length;
  health.observe("wiki", "10.0.0.2:443", false);
  expect(reports.length).toBe(before + 1);
  expect(reports.at(-1)!.apps[0]!.servers).toEqual([
    { address: "10.0.0.1:443", healthy: true },
    { address: "10.0.0.2:443", healthy: false },
  ]);
  health.observe("wiki", "10.0.0.2:443", false);
  expect(reports.length).toBe(before + 1);
});

test("an IP server written in another form is named as the dialler names it, so passive results find it", async () => {
  const { health, reports } = monitor(new Set(["10.0.0.9:80", "2001:db8::1:80"]));
  await health.setCatalog({
    version: "2",
    apps: [
      {
        name: "ops",
        destinations: [{ host: "10.0.0.0/8", ports: "80" }],
        servers: ["[::ffff:10.0.0.9]:80", "[2001:DB8::1]:80"],
      },
    ],
  });
  expect(reports.at(-1)!.apps[0]!.servers).toEqual([
    { address: "10.0.0.9:80", healthy: true },
    { address: "[2001:db8::1]:80", healthy: true },
  ]);
  health.observe("ops", "[2001:db8::1]:80", false); // the text dialDestination's onAttempt reports
  expect(reports.at(-1)!.apps[0]!.servers[1]).toEqual({ address: "[2001:db8::1]:80", healthy: false });
});

test("each server's first result is told once, then only its changes, never each check", async () => {
  const up = new Set(["10.0.0.1:443"]);
  const { health, transitions, clock } = monitor(up);
  await health.setCatalog(catalog);
  health.start();
  expect(transitions).toEqual([
    { app: "wiki", server: "10.0.0.1:443", healthy: true },
    { app: "wiki", server: "10.0.0.2:443", healthy: false, detail: "connect failed" },
    { app: "db", server: "10.0.0.5:5432", healthy: false, detail: "connect failed" },
  ]);
  transitions.length = 0;
  await clock.advance(90_000); // three checks, nothing changed
  expect(transitions).toEqual([]);
  up.delete("10.0.0.1:443");
  up.add("10.0.0.5:5432");
  await clock.advance(30_000);
  expect(transitions).toEqual([
    { app: "wiki", server: "10.0.0.1:443", healthy: false, detail: "connect failed" },
    { app: "db", server: "10.0.0.5:5432", healthy: true },
  ]);
  transitions.length = 0;
  // A failed stream flips routing at once, but is not a transition to tell: the next check decides.
  health.observe("db", "10.0.0.5:5432", false);
  await clock.advance(30_000);
  expect(transitions).toEqual([]);
  health.stop();
});

test("a server that leaves the catalog is forgotten: if it comes back, its first result is told again", async () => {
  const { health, transitions } = monitor(new Set(["10.0.0.5:5432"]));
  await health.setCatalog(catalog);
  await health.setCatalog({ version: "2", apps: [catalog.apps[0]!] });
  transitions.length = 0;
  await health.setCatalog(catalog);
  expect(transitions).toEqual([{ app: "db", server: "10.0.0.5:5432", healthy: true }]);
});

test("the TCP check says why a server is unhealthy", async () => {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  expect(await tcpCheck("127.0.0.1", port)).toBeUndefined();
  server.stop(true);
  expect(await tcpCheck("127.0.0.1", port)).toMatch(/refused/i);
});
