/**
 * A gateway that stops gracefully sends GO_AWAY (§5.7): the connector opens a replacement tunnel on
 * another gateway at once, so capacity does not shrink while the gateway drains.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { roundTrip, startEchoServer, type EchoServer } from "../support/apps.ts";

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

test("GO_AWAY from a stopping gateway: the tunnel moves to the other gateway and users keep working", async () => {
  const [leaving, staying] = cloud.gateways;
  await cloud.stopGateway(leaving!.id, 1_000);
  const moved = await daemon.waitFor(
    "both tunnels on the remaining gateway",
    (s) => s.state === "connected" && s.tunnels.length === 2 && s.tunnels.every((t) => t.state === "up" && t.gateway === staying!.url),
    15_000,
  );
  expect(moved.tunnels).toHaveLength(2);
  expect(daemon.output()).toContain("gateway is draining this tunnel");
  expect(new TextDecoder().decode(await roundTrip(cloud.apps.echo!.listen!, new TextEncoder().encode("after drain")))).toBe("after drain");
}, 40_000);
