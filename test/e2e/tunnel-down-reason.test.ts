/**
 * Why is it down? A gateway killed under a running connector: the tunnel's reason is read from
 * `status --json` (a stable code, whether the dial failed or the tunnel was up, when it retries), from
 * the human status block and from /metrics; once the gateway is back, the tunnel is up again and the
 * reconnect is counted.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { freeLoopbackPort } from "../support/ports.ts";
import { runConnector } from "../support/binary.ts";
import type { CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, type DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { STATUS_EXIT } from "../../src/status/schema.ts";

let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;
let metricsUrl: string;

beforeAll(async () => {
  const metrics = `127.0.0.1:${freeLoopbackPort()}`;
  metricsUrl = `http://${metrics}`;
  stack = await startStack({ gateways: 1, daemons: [{ tunnels: 1, extraArgs: ["--metrics", metrics] }] });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

test("a killed gateway: status and metrics say why the tunnel is down and when it retries; back up, a reconnect", async () => {
  const gateway = cloud.gateways[0]!;
  await cloud.killGateway(gateway.id);
  // The tunnel went down (the connection broke), then every redial is refused: nothing listens there.
  const down = await daemon.waitFor(
    "a down tunnel with the reason TUNNEL_REFUSED and a retry time",
    (s) =>
      s.tunnels[0]?.state === "down" && s.tunnels[0].lastError?.code === "TUNNEL_REFUSED" && !!s.tunnels[0].retryAt,
  );
  const tunnel = down.tunnels[0]!;
  expect(tunnel.lastError?.after).toBe("connect");
  expect(tunnel.lastError?.message).toContain("refused");
  expect(tunnel.failures).toBeGreaterThanOrEqual(1);
  expect(Date.parse(tunnel.retryAt!)).toBeGreaterThan(Date.parse(tunnel.lastError!.at) - 1);
  expect(down.tunnelCounters?.connectFailures.TUNNEL_REFUSED).toBeGreaterThanOrEqual(1);
  // The tunnel that was up: its gateway's process died without a WebSocket close.
  const lost = down.tunnelCounters!.disconnects;
  expect((lost.TUNNEL_LOST ?? 0) + (lost.TUNNEL_DEAD ?? 0)).toBe(1);
  expect(down).toMatchObject({ schemaVersion: 1, state: "disconnected" });
  expect(down.uptimeSeconds).toBeGreaterThanOrEqual(0);

  const human = await runConnector(["status", "--state-dir", daemon.stateDir], { timeoutMs: 30_000 });
  expect(human.exitCode).toBe(STATUS_EXIT.disconnected);
  expect(human.stdout).toMatch(/#0 wss:\/\/\S+ {2}down \d+ (s|min): TUNNEL_REFUSED \(dial failed\) .*; retry (in|\d)/);
  expect(human.stdout).toMatch(
    /since start {4}0 reconnects; dials failed: TUNNEL_REFUSED \d+; went down: TUNNEL_(LOST|DEAD) 1/,
  );

  const metrics = await (await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const refused = metrics.match(/^connector_tunnel_connect_failures_total\{reason="TUNNEL_REFUSED"\} (\d+)$/m);
  expect(Number(refused?.[1])).toBeGreaterThanOrEqual(1);
  expect(metrics).toMatch(/^connector_tunnel_connect_failures_total\{reason="TUNNEL_DNS"\} 0$/m);

  await cloud.restartGateway(gateway.id);
  const back = await daemon.waitFor("the tunnel up again", allTunnelsUp(1));
  expect(back.tunnels[0]?.lastError).toBeUndefined();
  expect(back.tunnelCounters?.reconnects).toBe(1);
});
