/**
 * Removing access ends access, end to end: a user connection open through the compiled connector is
 * cut soon after the cloud removes its destination from the app's catalog entry (the gateway's user
 * listener stays, so only the connector's re-check can end it); and an idle stream is cut after
 * `--stream-idle-timeout` while a busy one goes on; the same sweep turns TCP keepalive on for the app
 * connection of a stream that lives (seen with `ss`, as the kernel's keepalive timer).
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { splitAddress, type EchoServer } from "../support/apps.ts";
import { until } from "../support/wait.ts";

/** The `ss -o` lines of established TCP sockets whose remote port is `port` (the connector's app side). */
function socketsTo(port: number): string[] {
  const r = Bun.spawnSync(["ss", "-tnoH", "state", "established", `( dport = :${port} )`], { timeout: 10_000 });
  if (r.exitCode !== 0) throw new Error(`ss failed: ${r.stderr.toString()}`);
  return r.stdout
    .toString()
    .split("\n")
    .filter((l) => l.trim() !== "");
}

/** Short, so the test is quick; the first test's stream moves data within it. */
const IDLE_SECONDS = 3;

let stack: Stack;
let echo: EchoServer;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({
    gateways: 1,
    echoAliases: ["chat"],
    daemons: [{ tunnels: 1, extraArgs: ["--stream-idle-timeout", String(IDLE_SECONDS)] }],
  });
  ({ echo, cloud } = stack);
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

const logs = () => stack.logs();

test("a user connection is cut once its app's destination is removed from the catalog", async () => {
  const { hostname, port } = splitAddress(cloud.apps.echo!.listen!);
  let received = 0;
  let closedAt: number | undefined;
  const user = await Bun.connect<undefined>({
    hostname,
    port,
    socket: {
      data: (_s, chunk) => void (received += chunk.byteLength),
      close: () => void (closedAt = Date.now()),
      error() {},
    },
  });
  user.write("hello");
  await until(
    "the echo of hello",
    () => (received >= 5 ? true : undefined),
    30_000,
    () => ({ received }),
  );
  expect(received, logs()).toBe(5);
  // Keep the stream busy, so only the catalog change (not the 3 s idle timeout) can end it.
  const ticker = setInterval(() => closedAt === undefined && user.write("."), 300);

  const removedAt = Date.now();
  const response = await fetch(`${cloud.adminUrl}/admin/apps/echo`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ destinations: [{ host: "127.0.0.1", ports: "1" }], servers: [echo.address] }),
    signal: AbortSignal.timeout(30_000),
  });
  expect(response.status).toBe(200);
  // CONFIG_CHANGED reaches the connector at once; 60 s is a safety deadline, not an expectation.
  await until(
    "the user connection to be cut after the destination was removed",
    () => (closedAt === undefined ? undefined : true),
    60_000,
    async () => (await daemon.status()).snapshot?.streams,
  ).finally(() => clearInterval(ticker));
  console.log(`access removal: user connection cut ${closedAt! - removedAt} ms after the catalog change`);
  expect(daemon.output()).toContain("the catalog no longer allows their destination");
  const status = await daemon.status();
  expect(status.snapshot?.streams.active, logs()).toBe(0);
  expect(status.snapshot?.streams.ended?.notAllowed, logs()).toBe(1);
  expect(status.snapshot?.streams.ended?.idle ?? 0, logs()).toBe(0);
}, 120_000);

test("an idle user connection is cut after --stream-idle-timeout; one that keeps sending goes on", async () => {
  const { hostname, port } = splitAddress(cloud.apps.chat!.listen!);
  const connect = async () => {
    const state = { received: 0, closedAt: undefined as number | undefined };
    const socket = await Bun.connect<undefined>({
      hostname,
      port,
      socket: {
        data: (_s, chunk) => void (state.received += chunk.byteLength),
        close: () => void (state.closedAt = Date.now()),
        error() {},
      },
    });
    return { socket, state };
  };
  const idle = await connect();
  const busy = await connect();
  idle.socket.write("x");
  busy.socket.write("x");
  const openedAt = Date.now();
  const ticker = setInterval(() => busy.socket.write("."), 300);
  try {
    await until(
      "the idle connection to be cut",
      () => (idle.state.closedAt === undefined ? undefined : true),
      60_000,
      async () => (await daemon.status()).snapshot?.streams,
    );
    expect(idle.state.received).toBe(1);
    // The busy one outlives the idle one by another full timeout (a real-time window: the busy stream
    // writes every 300 ms, ten times within the 3 s it would need to be idle).
    await Bun.sleep((IDLE_SECONDS + 1) * 1000);
    expect(busy.state.closedAt, logs()).toBeUndefined();
    expect(busy.state.received).toBeGreaterThan(5);
    console.log(
      `idle timeout ${IDLE_SECONDS} s: idle connection cut ${idle.state.closedAt! - openedAt} ms after its last byte`,
    );
  } finally {
    clearInterval(ticker);
    busy.socket.end();
  }
  expect(daemon.output()).toContain("streams reset: idle timeout");
  expect((await daemon.status()).snapshot?.streams.ended?.idle).toBeGreaterThanOrEqual(1);
}, 120_000);

test("a stream that lives gets TCP keepalive on its app connection from the sweep", async () => {
  const { hostname, port } = splitAddress(cloud.apps.chat!.listen!);
  const localOf = (line: string) => line.trim().split(/\s+/)[2];
  const before = new Set(socketsTo(echo.port).map(localOf));
  const fresh = () => socketsTo(echo.port).filter((l) => !before.has(localOf(l)));
  let received = 0;
  const socket = await Bun.connect<undefined>({
    hostname,
    port,
    socket: { data: (_s, chunk) => void (received += chunk.byteLength), error() {} },
  });
  socket.write("x");
  // busy, so the 3 s idle timeout does not cut it first (the sweep runs every second with that timeout)
  const ticker = setInterval(() => socket.write("."), 300);
  try {
    await until("the echo to come back", () => (received > 0 ? true : undefined), 30_000);
    const line = await until(
      "the connector's app socket to have a keepalive timer",
      () => fresh().find((l) => l.includes("timer:(keepalive")),
      30_000,
      fresh,
    );
    console.log(`app socket after the sweep: ${line.trim()}`);
  } finally {
    clearInterval(ticker);
    socket.end();
  }
}, 120_000);
