import { expect, test } from "bun:test";
import { HealthMonitor } from "../../src/apps/health.ts";
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
  const health = new HealthMonitor({
    clock,
    onChange: (r) => reports.push(r),
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
  return { clock, reports, health };
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
