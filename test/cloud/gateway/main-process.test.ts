/**
 * The gateways as the CLI contract shows them (`bun test/cloud/main.ts`, through the shared launcher
 * test/support/cloud-process.ts): cloud.json carries user ports and gateway pids and is rewritten
 * when a pid changes; the admin helpers kill, restart and stop gateways; SIGTERM leaves no gateway
 * process behind.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { roundTrip } from "../../support/apps.ts";
import { startCloud, type CloudJson, type CloudProcess } from "../../support/cloud-process.ts";
import { until } from "./test-connector.ts";

let cloud: CloudProcess;

const readCloudJson = (): CloudJson => JSON.parse(readFileSync(join(cloud.dir, "cloud.json"), "utf8")) as CloudJson;
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  cloud = await startCloud({ gateways: 2, apps: ["echo=127.0.0.1:9"] });
});

afterAll(async () => {
  await cloud?.stop();
});

test("cloud.json lists both gateway processes and a user port per app; the admin API agrees", async () => {
  expect(cloud.apps.echo?.listen).toMatch(/^127\.0\.0\.1:\d+$/);
  const status = await cloud.gatewayStatus();
  expect(status.map((g) => [g.id, g.pid, g.running])).toEqual(cloud.gateways.map((g) => [g.id, g.pid ?? null, true]));
  expect(status.every((g) => g.tunnels.length === 0 && g.counters !== null)).toBe(true);
});

test("without any tunnel a user is accepted and closed with a FIN, and counted", async () => {
  expect((await roundTrip(cloud.apps.echo!.listen!, new TextEncoder().encode("hi"))).byteLength).toBe(0);
  const status = await cloud.gatewayStatus();
  expect(status.reduce((n, g) => n + (g.counters?.noTunnel ?? 0), 0)).toBe(1);
});

test("a killed gateway is restarted on its URL; cloud.json follows its pid; a stopped one has none", async () => {
  const [gw1] = cloud.gateways;
  await cloud.killGateway("gw-1");
  // The user port survives the process that held it.
  expect((await roundTrip(cloud.apps.echo!.listen!, new TextEncoder().encode("hi"))).byteLength).toBe(0);
  const restarted = await cloud.restartGateway("gw-1");
  expect(restarted).toMatchObject({ id: "gw-1", url: gw1!.url, running: true });
  await until("cloud.json with gw-1's new pid", () =>
    readCloudJson().gateways[0]?.pid === restarted.pid ? true : undefined,
  );

  const stopped = await cloud.stopGateway("gw-2", 0);
  expect(stopped).toMatchObject({ running: false, pid: null });
  expect(isAlive(cloud.gateways[1]!.pid!)).toBe(false);
  await until("cloud.json without gw-2's pid", () =>
    readCloudJson().gateways[1]?.pid === undefined ? true : undefined,
  );
});

test("SIGTERM stops the cloud and every gateway process", async () => {
  const pids = (await cloud.gatewayStatus()).flatMap((g) => (g.pid === null ? [] : [g.pid]));
  expect(pids).toHaveLength(1);
  await cloud.stop();
  await until("the gateway processes to exit", () => (pids.every((pid) => !isAlive(pid)) ? true : undefined));
});
