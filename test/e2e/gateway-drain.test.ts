/**
 * A gateway that stops gracefully sends GO_AWAY (PROTOCOL §5.7): the connector opens a replacement tunnel on
 * another gateway at once, so capacity does not shrink while the gateway drains. Both tunnels then
 * share one gateway: status says redundancy is lost (degraded) until the drained gateway is back and
 * a tunnel has moved to it again.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
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
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

test("GO_AWAY from a stopping gateway: the tunnel moves to the other gateway and users keep working", async () => {
  const [leaving, staying] = cloud.gateways;
  await cloud.stopGateway(leaving!.id, 1_000);
  const moved = await daemon.waitFor(
    "both tunnels on the remaining gateway",
    (s) => s.tunnels.length === 2 && s.tunnels.every((t) => t.state === "up" && t.gateway === staying!.url),
    60_000,
  );
  expect(moved.tunnels).toHaveLength(2);
  expect(daemon.output()).toContain("gateway is draining this tunnel");
  expect(
    new TextDecoder().decode(await roundTrip(cloud.apps.echo!.listen!, new TextEncoder().encode("after drain"))),
  ).toBe("after drain");
  // Every tunnel is up, but one gateway failure would now cut them all: status does not say "connected".
  expect(moved.state).toBe("degraded");
  expect(moved.redundancy).toEqual({ distinctGateways: 1, tunnels: 2, gatewaysKnown: 2 });
  expect((await daemon.status()).exitCode).toBe(40);
}, 90_000);

test("after the drained gateway restarts, a tunnel moves back to it and status shows redundancy restored", async () => {
  const [leaving] = cloud.gateways;
  const restartedAt = performance.now();
  await cloud.restartGateway(leaving!.id);
  const restored = await daemon.waitFor(
    "tunnels on distinct gateways again",
    (s) => s.state === "connected" && s.redundancy?.distinctGateways === 2,
    90_000,
  );
  console.log(
    `redundancy restored ${((performance.now() - restartedAt) / 1000).toFixed(1)} s after the gateway restart`,
  );
  expect(restored.tunnels.map((t) => t.gateway).sort()).toEqual(cloud.gateways.map((g) => g.url).sort());
  expect(restored.redundancy).toEqual({ distinctGateways: 2, tunnels: 2, gatewaysKnown: 2 });
  expect((await daemon.status()).exitCode).toBe(0);
  expect(daemon.output()).toContain("tunnel moved back to a distinct gateway");
  // Users still get through (the doubled tunnel was drained, not cut).
  expect(
    new TextDecoder().decode(await roundTrip(cloud.apps.echo!.listen!, new TextEncoder().encode("restored"))),
  ).toBe("restored");
}, 150_000);
