/**
 * Redundancy: two connectors of one group, each with a tunnel to each of two gateways. Kill -9
 * one connector and one gateway mid-transfer: new users get through again (how soon is printed; speed is
 * the benchmark's business, a deadline here would only measure how busy the machine is), streams on
 * surviving tunnels finish intact, and the restarted gateway gets its tunnels back within the backoff.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import type { CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, type DaemonProcess } from "../support/daemon-process.ts";
import { echoTransfer, roundTrip, type TransferResult } from "../support/apps.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { until, untilSucceeds } from "../support/wait.ts";

const MiB = 1024 * 1024;
let stack: Stack;
let cloud: CloudProcess;
let a: DaemonProcess;
let b: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({ gateways: 2, daemons: [{}, {}] });
  ({ cloud } = stack);
  [a, b] = stack.daemons as [DaemonProcess, DaemonProcess];
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

async function admin(method: string, path: string): Promise<unknown> {
  const response = await fetch(`${cloud.adminUrl}${path}`, { method, signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : response.json();
}

/** Open streams per connector id on the tunnels of the gateway `gatewayId` (or of every gateway). */
async function streamsByConnector(gatewayId?: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const g of await cloud.gatewayStatus())
    if (gatewayId === undefined || g.id === gatewayId)
      for (const t of g.tunnels) counts[t.connectorId] = (counts[t.connectorId] ?? 0) + t.streams;
  return counts;
}

test("kill -9 of a connector and a gateway: users keep working, survivors finish intact, the gateway gets its tunnels back", async () => {
  const listen = cloud.apps.echo!.listen!;
  const [victimGateway, survivingGateway] = cloud.gateways as [
    CloudProcess["gateways"][number],
    CloudProcess["gateways"][number],
  ];
  const aId = (await a.status()).snapshot!.connectorId!;
  const bId = (await b.status()).snapshot!.connectorId!;
  // Long transfers spread over both gateways and both connectors. Their deadline is a safety net: on a
  // loaded machine they are slow, and a transfer that is cut or times out only counts as not intact.
  const transfers = Array.from({ length: 24 }, () =>
    echoTransfer(listen, 48 * MiB, { timeoutMs: 240_000 }).then(
      (r): TransferResult | undefined => r,
      () => undefined,
    ),
  );
  // Kill mid-transfer: once the victim carries streams and B carries some through the surviving gateway.
  await until(
    "transfers in flight on connector A and on B's tunnel to the surviving gateway",
    async () => {
      const [all, surviving] = [await streamsByConnector(), await streamsByConnector(survivingGateway.id)];
      return (all[aId] ?? 0) > 0 && (surviving[bId] ?? 0) > 0 ? true : undefined;
    },
    60_000,
    () => cloud.gatewayStatus(),
  );
  await a.kill9();
  process.kill(victimGateway.pid!, "SIGKILL");
  const killedAt = performance.now();

  // New user connections succeed again (60 s is a safety deadline; how soon is printed, not asserted).
  await untilSucceeds(
    "a user connection echoed through after the kills",
    async () => {
      const answer = new TextDecoder().decode(await roundTrip(listen, new TextEncoder().encode("ping"), 5_000));
      if (answer !== "ping") throw new Error(`echo answered ${JSON.stringify(answer)}`);
    },
    60_000,
  );
  console.log(`first user connection after the kills succeeded after ${(performance.now() - killedAt).toFixed(0)} ms`);
  for (let i = 0; i < 10; i++)
    expect(new TextDecoder().decode(await roundTrip(listen, new TextEncoder().encode(`n${i}`)))).toBe(`n${i}`);

  // Streams either finish intact (surviving tunnels) or fail; none is silently corrupted.
  const results = await Promise.all(transfers);
  const intact = results.filter((r) => r && r.receivedBytes === 48 * MiB && r.receivedSha256 === r.sentSha256).length;
  const corrupted = results.filter(
    (r) => r && r.receivedBytes === 48 * MiB && r.receivedSha256 !== r.sentSha256,
  ).length;
  console.log(`transfers: ${intact} intact, ${results.length - intact} cut by the kills`);
  expect(corrupted).toBe(0);
  expect(intact).toBeGreaterThan(0);

  // The restarted gateway gets B's tunnel back within the backoff (B retried it since the kill).
  const downSince = performance.now();
  await admin("POST", `/admin/gateways/${encodeURIComponent(victimGateway.id)}/restart`);
  const status = await b.waitFor("reconnected to the restarted gateway", allTunnelsUp(2), 70_000);
  console.log(`tunnel back ${((performance.now() - downSince) / 1000).toFixed(1)} s after the restart`);
  expect(status.tunnels.map((t) => t.gateway).sort()).toEqual(cloud.gateways.map((g) => g.url).sort());
}, 420_000);
