/**
 * A connector revoked in the cloud while it runs (§3): its tunnels are closed by the gateways, it
 * confirms with the control plane, stops its tunnels, and says so in status (exit 4) and logs.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { startEchoServer, type EchoServer } from "../support/apps.ts";

let echo: EchoServer;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  echo = startEchoServer();
  cloud = await startCloud({ gateways: 2, apps: [`echo=${echo.address}`] });
  daemon = await startDaemon({ key: cloud.provisioningKey });
  await daemon.waitFor("connected", allTunnelsUp(2));
}, 60_000);

afterAll(async () => {
  await daemon?.stop(5_000);
  await cloud?.stop();
  echo?.stop();
}, 30_000);

test("a connector revoked while running stops its tunnels and reports revoked (status exit 4)", async () => {
  const id = (await daemon.status()).snapshot!.connectorId!;
  const response = await fetch(`${cloud.adminUrl}/admin/connectors/${id}/revoke`, { method: "POST", signal: AbortSignal.timeout(5_000) });
  expect(response.ok).toBe(true);
  const revoked = await daemon.waitFor("revoked", (s) => s.state === "revoked", 15_000);
  expect(revoked.tunnels.every((t) => t.state !== "up")).toBe(true);
  expect((await daemon.status()).exitCode).toBe(4);
  expect(daemon.output()).toContain("has been revoked");
  // It retries only slowly: no reconnect storm against the gateways.
  const attemptsBefore = daemon.output().split("tunnel connecting").length;
  await Bun.sleep(3_000);
  expect(daemon.output().split("tunnel connecting").length).toBe(attemptsBefore);
  expect(daemon.proc.exitCode).toBeNull();
}, 40_000);
