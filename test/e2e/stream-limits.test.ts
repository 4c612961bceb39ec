/**
 * The process-wide stream cap, end to end: with `--max-streams 3`, user connections beyond three open
 * streams are answered BUSY by the compiled connector (the gateway has no other connector, so the user
 * connection closes), counted in status by the bound they hit, and the three keep working.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import type { Socket } from "bun";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { splitAddress } from "../support/apps.ts";
import { until } from "../support/wait.ts";

let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({ gateways: 1, daemons: [{ tunnels: 1, extraArgs: ["--max-streams", "3"] }] });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

const logs = () => stack.logs();

interface User {
  socket: Socket<undefined>;
  received: () => number;
  closed: () => boolean;
}

async function connectUser(): Promise<User> {
  const { hostname, port } = splitAddress(cloud.apps.echo!.listen!);
  let received = 0;
  let closed = false;
  const socket = await Bun.connect<undefined>({
    hostname,
    port,
    socket: { data: (_s, chunk) => void (received += chunk.byteLength), close: () => void (closed = true), error() {} },
  });
  return { socket, received: () => received, closed: () => closed };
}

/** Sends 5 bytes; true once they are echoed, false once the connection ends without them. */
async function echoOnce(user: User): Promise<boolean> {
  const before = user.received();
  user.socket.write("hello");
  // Either outcome is an event; 60 s is only a safety deadline (it throws, so a hang never counts as BUSY).
  return until(
    "the echo of hello, or the connection's end",
    () => (user.received() >= before + 5 ? true : user.closed() ? false : undefined),
    60_000,
    () => ({ received: user.received() - before, closed: user.closed() }),
  );
}

test("streams beyond --max-streams are answered BUSY and counted; the admitted ones keep working", async () => {
  const admitted = [await connectUser(), await connectUser(), await connectUser()];
  for (const user of admitted) expect(await echoOnce(user), logs()).toBe(true);
  const extra = [await connectUser(), await connectUser()];
  for (const user of extra) expect(await echoOnce(user), logs()).toBe(false);
  const status = await daemon.status();
  expect(status.exitCode).toBe(0);
  expect(status.snapshot?.streams.failures?.BUSY, logs()).toBeGreaterThanOrEqual(2);
  expect(status.snapshot?.streams.busy?.streams, logs()).toBeGreaterThanOrEqual(2);
  expect(status.snapshot?.streams.active).toBe(3);
  for (const user of admitted) expect(await echoOnce(user), logs()).toBe(true);
  // One ends: a new user is admitted again.
  admitted[0]!.socket.end();
  await until(
    "the ended stream to be freed (2 active)",
    async () => ((await daemon.status()).snapshot?.streams.active === 2 ? true : undefined),
    60_000,
    async () => (await daemon.status()).snapshot?.streams,
  );
  const next = await connectUser();
  expect(await echoOnce(next), logs()).toBe(true);
  for (const user of [...admitted, ...extra, next]) user.socket.end();
}, 180_000);
