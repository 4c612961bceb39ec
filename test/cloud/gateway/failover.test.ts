/**
 * Gateway processes dying and coming back: kill -9 of one gateway leaves users working through the
 * other; the admin API restarts it on the same tunnel URL and user port, and it takes users again
 * only once a tunnel is back; a graceful stop sends GO_AWAY on every tunnel first.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { roundTrip, splitAddress, startEchoServer, type EchoServer } from "../../support/apps.ts";
import { startCloud, type CloudHandle } from "../cloud.ts";
import { adminFetch, silentLog } from "../test-client.ts";
import type { GatewaySummary } from "./admin-types.ts";
import { MAX_STOP_GRACE_MS } from "./config.ts";
import { enrollTestConnector, until, untilGateways, type TestConnector, type TestTunnel } from "./test-connector.ts";

let echo: EchoServer;
let cloud: CloudHandle;
let connector: TestConnector;
let tunnels: TestTunnel[];
const text = (s: string) => new TextEncoder().encode(s);
const listen = () => cloud.apps.echo!.listen!;

/** `n` user round trips, all of which must echo. */
async function usersWork(n: number): Promise<void> {
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => roundTrip(listen(), text(`user ${i}`))));
  expect(answers.map((a) => new TextDecoder().decode(a))).toEqual(Array.from({ length: n }, (_, i) => `user ${i}`));
}

/** A user connection kept open, to echo a message on demand. */
async function openUser() {
  const { hostname, port } = splitAddress(listen());
  let received = "";
  const socket = await Bun.connect({
    hostname,
    port,
    socket: {
      data(_s, chunk) {
        received += new TextDecoder().decode(chunk);
      },
    },
  });
  const echo = (message: string) => {
    received = "";
    socket.write(message);
    return until(`the echo of ${message}`, () => (received.length >= message.length ? received : undefined));
  };
  return { socket, echo };
}

async function connectAndReport(index: number): Promise<void> {
  tunnels[index] = await connector.connect(connector.gateways[index]!);
  connector.reportHealth(tunnels[index], "echo", echo.address, true);
}

beforeAll(async () => {
  echo = startEchoServer();
  const app = {
    name: "echo",
    destinations: [{ host: "127.0.0.1", ports: String(echo.port) }],
    servers: [echo.address],
  };
  cloud = await startCloud({ log: silentLog, gateways: 2, apps: [app] });
  connector = await enrollTestConnector(cloud);
  tunnels = [];
  await Promise.all([connectAndReport(0), connectAndReport(1)]);
  await untilGateways(cloud, "both gateways routing echo", (gws) =>
    gws.every((g) => g.apps.echo?.listening && g.apps.echo.routable),
  );
}, 60_000);

afterAll(async () => {
  connector?.close();
  await cloud?.stop();
  echo?.stop();
});

describe("gateway failover", () => {
  test("kill -9 of a gateway leaves users working; restart keeps its URL and takes users once its tunnel is back", async () => {
    const before = cloud.gateways[0]!;
    process.kill(before.pid!, "SIGKILL");
    await tunnels[0]!.waitClosed();
    await usersWork(16);

    const response = await adminFetch(cloud, "POST", "/admin/gateways/gw-1/restart");
    expect(response.status).toBe(200);
    const restarted = (await response.json()) as GatewaySummary;
    expect(restarted).toMatchObject({ id: "gw-1", url: before.url, running: true });
    expect(restarted.pid).not.toBe(before.pid!);
    expect(cloud.gateways[0]!.pid).toBe(restarted.pid!);

    // Back, but without a tunnel: it must not take users it cannot route.
    const [gw1] = await untilGateways(cloud, "gw-1 answering", (g) => g[0]!.answering);
    expect(gw1!.apps.echo).toEqual({ routable: false, listening: false });
    await usersWork(16);

    await connectAndReport(0);
    const gws = await untilGateways(cloud, "gw-1 routing echo again", (g) => g[0]!.apps.echo?.listening === true);
    const routedBefore = gws[0]!.counters!.routed;
    await usersWork(24);
    const after = await cloud.gatewayAdmin!.describe();
    expect(after[0]!.counters!.routed).toBeGreaterThan(routedBefore); // 0 of 24 has probability 2^-24
  });

  test("a graceful stop sends GO_AWAY on every tunnel, closes them with 1001, and users go on through the other gateway", async () => {
    const response = await adminFetch(cloud, "POST", "/admin/gateways/gw-2/stop", { graceMs: 1_000 });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: "gw-2", running: false, pid: null });
    const closed = await tunnels[1]!.waitClosed();
    expect(tunnels[1]!.goAways).toEqual([0]);
    expect(closed.code).toBe(1001);
    expect(cloud.gateways[1]!.pid).toBeUndefined();
    await usersWork(16);

    const restarted = await adminFetch(cloud, "POST", "/admin/gateways/gw-2/restart");
    expect(restarted.status).toBe(200);
    await connectAndReport(1);
    await untilGateways(cloud, "gw-2 routing echo again", (g) => g[1]!.apps.echo?.listening === true);
    await usersWork(8);
  });

  test("a stopping gateway lets open streams go on until they finish, then exits before its grace is over", async () => {
    // The longest grace the admin API takes (60 s), twice the admin request's own deadline: the stop
    // answering at all proves the gateway left when its streams ended, not when the grace ran out. (A 5 s
    // grace against a 4 s bound measured how busy the machine was.)
    const GRACE_MS = MAX_STOP_GRACE_MS;
    const users = await Promise.all(Array.from({ length: 6 }, () => openUser()));
    await untilGateways(
      cloud,
      "the streams open",
      (g) => g.reduce((n, x) => n + (x.tunnels[0]?.streams ?? 0), 0) === 6,
    );
    const started = Date.now();
    const stopping = adminFetch(cloud, "POST", "/admin/gateways/gw-1/stop", { graceMs: GRACE_MS });
    await until("GO_AWAY on gw-1's tunnel", () => (tunnels[0]!.goAways.length > 0 ? true : undefined));
    // Draining: every open stream still carries bytes both ways.
    expect(await Promise.all(users.map((u) => u.echo("still here")))).toEqual(
      Array.from({ length: 6 }, () => "still here"),
    );
    for (const u of users) u.socket.end();
    expect((await stopping).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(GRACE_MS);
    expect(cloud.gateways[0]!.pid).toBeUndefined();
  }, 90_000);

  test("restarting or stopping a gateway that does not exist is 404", async () => {
    expect((await adminFetch(cloud, "POST", "/admin/gateways/gw-9/restart")).status).toBe(404);
    expect((await adminFetch(cloud, "POST", "/admin/gateways/gw-9/stop")).status).toBe(404);
    expect((await adminFetch(cloud, "POST", "/admin/gateways/gw-1/stop", { graceMs: -1 })).status).toBe(400);
  });
});
