/**
 * A gateway that stops gracefully sends GO_AWAY (§5.7): the connector opens a replacement tunnel on
 * another gateway at once, so capacity does not shrink while the gateway drains.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { roundTrip } from "../support/apps.ts";
import { startStack, type Stack } from "../support/stack.ts";

let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({ gateways: 2 });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
}, 60_000);

afterAll(() => stack?.stop(), 30_000);

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
