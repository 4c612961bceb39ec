/**
 * Running short of file descriptors, end to end: the compiled daemon's fd limit is lowered (prlimit
 * --pid) to what it holds now plus ~150, then 200 users connect at once. Users beyond what the fds
 * allow get BUSY (not REFUSED), the app stays healthy, and `connector status` still answers over the
 * admin socket, because the connector keeps a reserve of fds free and confirms "refused" dials.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { readdirSync } from "node:fs";
import type { Socket } from "bun";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { splitAddress } from "../support/apps.ts";
import { until } from "../support/wait.ts";

const USERS = 200;
/** fds above what the daemon holds when the limit is lowered: the reserve (128) and a few streams. */
const ROOM = 150;

let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({ gateways: 1, daemons: [{ tunnels: 1 }] });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
  await daemon.waitFor("the app healthy", (s) =>
    s.apps.some((a) => a.name === "echo" && a.servers.length > 0 && a.servers.every((v) => v.healthy)),
  );
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

const logs = () => stack.logs();

test(`${USERS} users against a daemon with fds for ~20 streams: BUSY, not REFUSED; app healthy; status answers`, async () => {
  const pid = daemon.proc.pid;
  const limit = readdirSync(`/proc/${pid}/fd`).length + ROOM;
  const prlimit = Bun.spawnSync(["prlimit", "--pid", String(pid), `--nofile=${limit}:${limit}`]);
  expect(prlimit.exitCode, prlimit.stderr.toString()).toBe(0);

  const { hostname, port } = splitAddress(cloud.apps.echo!.listen!);
  const users: { socket: Socket<undefined>; closed: () => boolean; echoed: () => boolean }[] = [];
  try {
    for (let i = 0; i < USERS; i++) {
      let closed = false;
      let got = 0;
      const socket = await Bun.connect<undefined>({
        hostname,
        port,
        socket: { data: (_s, c) => void (got += c.byteLength), close: () => void (closed = true), error() {} },
      });
      socket.write("hi");
      users.push({ socket, closed: () => closed, echoed: () => got >= 2 });
    }
    // Every user is either served (echo back) or turned away (closed); 90 s is a safety deadline.
    const undecided = () => users.filter((u) => !u.echoed() && !u.closed()).length;
    await until(
      "every user served or turned away",
      () => (undecided() === 0 ? true : undefined),
      90_000,
      () => ({
        undecided: undecided(),
      }),
    );
    const served = users.filter((u) => u.echoed() && !u.closed()).length;
    const refused = users.filter((u) => u.closed()).length;
    console.log(`fd limit ${limit}: ${served} users served, ${refused} turned away`);

    const status = await daemon.status();
    expect(status.exitCode, logs()).toBe(0);
    const snapshot = status.snapshot!;
    expect(snapshot.streams.failures?.REFUSED ?? 0, logs()).toBe(0);
    expect(snapshot.streams.failures?.BUSY ?? 0, logs()).toBeGreaterThan(0);
    expect(snapshot.streams.busy?.fds ?? 0, logs()).toBeGreaterThan(0);
    expect(served).toBeGreaterThan(0);
    expect(served + refused).toBe(USERS);
    expect(
      snapshot.apps.find((a) => a.name === "echo")?.servers.every((s) => s.healthy),
      logs(),
    ).toBe(true);
    // The limits were read through bun:ffi in the compiled binary (a number, not "unknown").
    expect(daemon.output()).toMatch(/"msg":"stream limits".*"fdLimit":\d+/);
  } finally {
    for (const u of users) u.socket.end(); // never left open in the shared test process
  }
}, 240_000);
