/**
 * A connector revoked in the cloud while it runs: its tunnels are closed by the gateways, it
 * confirms with the control plane, stops its tunnels, and says so in status (exit 4) and logs.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { freeLoopbackPort } from "../support/ports.ts";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";

let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;
let metricsUrl: string;

beforeAll(async () => {
  const metrics = `127.0.0.1:${freeLoopbackPort()}`;
  metricsUrl = `http://${metrics}`;
  stack = await startStack({ gateways: 2, daemons: [{ extraArgs: ["--metrics", metrics] }] });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

test("metrics: Prometheus text with tunnels, streams and certificate expiry; ready while a tunnel is up", async () => {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  expect(text).toContain("connector_tunnels_up 2");
  expect(text).toMatch(/connector_build_info\{version="[^"]+",commit="[^"]+",target="[^"]+"\} 1/);
  expect(text).toMatch(/connector_certificate_expiry_timestamp_seconds \d{10}/);
  expect(text).toContain('connector_app_server_healthy{app="echo"');
  expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
  expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(200);
});

test("a connector revoked while running stops its tunnels and reports revoked (status exit 4)", async () => {
  const id = (await daemon.status()).snapshot!.connectorId!;
  const response = await fetch(`${cloud.adminUrl}/admin/connectors/${id}/revoke`, {
    method: "POST",
    signal: AbortSignal.timeout(30_000),
  });
  expect(response.ok).toBe(true);
  const revoked = await daemon.waitFor("revoked", (s) => s.state === "revoked", 60_000);
  expect(revoked.tunnels.every((t) => t.state !== "up")).toBe(true);
  expect((await daemon.status()).exitCode).toBe(45);
  expect(daemon.output()).toContain("has been revoked");
  // It retries only slowly (every 10 minutes), not with the tunnels' 1 s backoff.
  expect(daemon.output()).toContain('"checkAgainInMs":600000');
  expect(daemon.proc.exitCode).toBeNull();
  expect(await (await fetch(`${metricsUrl}/metrics`)).text()).toContain("connector_revoked 1");
  expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(503);
}, 90_000);
