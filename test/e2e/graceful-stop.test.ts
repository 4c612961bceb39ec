/**
 * Graceful stop: on SIGTERM the connector sends GO_AWAY, the gateway routes no new streams to it,
 * streams open at that moment complete, then it exits 0.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { createHash } from "node:crypto";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { roundTrip, splitAddress } from "../support/apps.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { until } from "../support/wait.ts";

let stack: Stack;
let cloud: CloudProcess;
let a: DaemonProcess;
let _b: DaemonProcess; // the second daemon of the pair: started, never stopped by hand

beforeAll(async () => {
  // A grace period far longer than the test needs: the streams must finish by the test's doing, never
  // be cut because a loaded machine took long over the checks made while A drains.
  stack = await startStack({ daemons: [{ tunnels: 1, gracePeriodSeconds: 300 }, { tunnels: 1 }] });
  ({ cloud } = stack);
  [a, _b] = stack.daemons as [DaemonProcess, DaemonProcess];
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

/**
 * A user session that sends a line every 100 ms until `finish` fires, then half-closes; resolves with
 * whether the echo matched. It ends on the test's word (an event), not after a fixed time, so it is
 * surely open when the connector gets SIGTERM however slow the machine.
 */
function slowSession(listen: string, finish: Promise<void>): Promise<boolean> {
  const { hostname, port } = splitAddress(listen);
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let sentBytes = 0;
  let gotBytes = 0;
  return new Promise((resolve) => {
    Bun.connect<undefined>({
      hostname,
      port,
      allowHalfOpen: true,
      socket: {
        open(socket) {
          let i = 0;
          const timer = setInterval(() => {
            const line = new TextEncoder().encode(`line ${i++}\n`);
            sent.update(line);
            sentBytes += line.byteLength;
            socket.write(line);
          }, 100);
          void finish.then(() => {
            clearInterval(timer);
            socket.shutdown();
          });
        },
        data(_s, chunk) {
          got.update(chunk);
          gotBytes += chunk.byteLength;
        },
        close() {
          resolve(gotBytes === sentBytes && sentBytes > 0 && got.digest("hex") === sent.digest("hex"));
        },
        error() {
          resolve(false);
        },
      },
    }).catch(() => resolve(false));
  });
}

test("streams open at SIGTERM complete, no new stream goes to the draining connector, exit 0", async () => {
  const listen = cloud.apps.echo!.listen!;
  let finish = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const sessions = Array.from({ length: 8 }, () => slowSession(listen, finished));
  const busy = await a.waitFor("carrying streams", (s) => s.streams.active > 0, 60_000);
  const drainingId = busy.connectorId;
  a.proc.kill("SIGTERM");
  await until(
    "the gateway to see the connector's GO_AWAY",
    async () =>
      (await cloud.gatewayStatus()).some((g) => g.tunnels.some((t) => t.connectorId === drainingId && t.draining))
        ? true
        : undefined,
    60_000,
    () => cloud.gatewayStatus(),
  );
  // Counted only now: the other sessions may still have opened on A until the gateway saw GO_AWAY.
  const createdAtStop = (await a.status()).snapshot!.streams.created;
  // While A drains, new users all get through (via B) and A opens nothing new.
  for (let i = 0; i < 10; i++)
    expect(new TextDecoder().decode(await roundTrip(listen, new TextEncoder().encode(`new ${i}`)))).toBe(`new ${i}`);
  const draining = (await a.status()).snapshot;
  expect(draining?.streams.created).toBe(createdAtStop);
  expect(draining?.streams.active).toBeGreaterThan(0); // the sessions it carried are still open
  finish();
  expect((await Promise.all(sessions)).every(Boolean)).toBe(true);
  const code = await a.proc.exited;
  expect(code).toBe(0);
  expect(a.output()).toContain("all streams finished");
}, 180_000);
