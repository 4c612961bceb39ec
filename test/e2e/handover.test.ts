/**
 * Hand-over (an upgraded binary takes over from the running daemon): the compiled connector sees a new
 * "swapped" upgrade result, starts `connector run` again as its successor, keeps serving until the
 * successor's tunnels are up, then sends GO_AWAY, lets go of the lock and exits 0 once its streams end.
 * Users must not notice: a steady load of new connections sees no failure, and a long-lived stream on
 * the old process keeps echoing until it is closed. A successor that cannot bring a tunnel up within
 * --upgrade-health-timeout is stopped and the old process carries on.
 */
import { afterAll, afterEach, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { roundTrip, splitAddress } from "../support/apps.ts";
import { startEchoServer, type EchoServer } from "../support/apps.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { startConnectProxy } from "../support/connect-proxy.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { until } from "../support/wait.ts";

let echo: EchoServer;
let cloud: CloudProcess;
let daemon: DaemonProcess | undefined;
const successors: number[] = [];

beforeAll(async () => {
  echo = startEchoServer();
  cloud = await startCloud({ gateways: 2, apps: [`echo=${echo.address}`] });
}, 120_000);

afterEach(async () => {
  await daemon?.stop(10_000);
  daemon = undefined;
  for (const pid of successors.splice(0)) await stopPid(pid);
}, 150_000);

afterAll(async () => {
  await cloud?.stop();
  echo?.stop();
}, 30_000);

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopPid(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  await until(`process ${pid} to exit`, () => (alive(pid) ? undefined : true), 60_000).catch(() =>
    process.kill(pid, "SIGKILL"),
  );
}

/** What the upgrade flow writes after a swap; the daemon polls for it. */
function writeSwapResult(stateDir: string, id: string): void {
  const dir = join(stateDir, "upgrade");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const result = {
    schema: 1,
    id,
    action: "apply",
    result: "swapped",
    from: "0.0.0",
    to: "0.0.0-handover-test",
    at: new Date().toISOString(),
  };
  writeFileSync(join(dir, "result.json.tmp"), JSON.stringify(result), { mode: 0o600 });
  renameSync(join(dir, "result.json.tmp"), join(dir, "result.json"));
}

/** The pid a daemon logged for its successor. */
function successorPid(output: string): number | undefined {
  for (const line of output.split("\n")) {
    if (!line.includes("hand-over: new process started")) continue;
    const pid = (JSON.parse(line) as { pid?: number }).pid;
    if (typeof pid === "number") return pid;
  }
  return undefined;
}

/** A new user connection every `everyMs`: each sends a line, half-closes, and must get the line back. */
function steadyLoad(listen: string, everyMs: number) {
  const failures: string[] = [];
  const samples: { at: number; ms: number }[] = [];
  const pending = new Set<Promise<void>>();
  let n = 0;
  const timer = setInterval(() => {
    const i = n++;
    const started = performance.now();
    const p = roundTrip(listen, enc(`request ${i}\n`), 60_000).then(
      (got) => {
        if (dec(got) === `request ${i}\n`) samples.push({ at: started, ms: performance.now() - started });
        else failures.push(`request ${i}: echoed ${JSON.stringify(dec(got))}`);
      },
      (err: unknown) => void failures.push(`request ${i}: ${String(err)}`),
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }, everyMs);
  return {
    failures,
    samples,
    count: () => samples.length + failures.length,
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
    },
  };
}

/** One user connection kept open: `echo(text)` resolves once `text` came back. */
async function longLivedStream(listen: string) {
  const { hostname, port } = splitAddress(listen);
  let received = "";
  let closed = false;
  const socket = await Bun.connect<undefined>({
    hostname,
    port,
    socket: {
      data(_s, chunk) {
        received += dec(chunk);
      },
      close() {
        closed = true;
      },
      error() {
        closed = true;
      },
    },
  });
  return {
    async echo(text: string) {
      const from = received.length;
      socket.write(enc(text));
      await until(
        `"${text}" echoed on the long-lived stream`,
        () =>
          received.indexOf(text, from) >= 0
            ? true
            : closed
              ? Promise.reject(new Error("long-lived stream closed"))
              : undefined,
        30_000,
      );
    },
    close: () => socket.end(),
  };
}

const maxMs = (samples: { ms: number }[]) => samples.reduce((m, s) => Math.max(m, s.ms), 0);

test("hand-over: the successor takes over with no failed user connection; the old process drains and exits 0", async () => {
  const d = (daemon = await startDaemon({ key: cloud.provisioningKey, tunnels: 2, gracePeriodSeconds: 60 }));
  await d.waitFor("connected", allTunnelsUp(2), 60_000);
  const listen = cloud.apps.echo!.listen!;
  const logs = () =>
    `--- connector (old and new) ---\n${d.output().slice(-6000)}\n--- cloud ---\n${cloud.output().slice(-3000)}`;
  const load = steadyLoad(listen, 20);
  try {
    await until("100 connections before the hand-over", () => (load.count() >= 100 ? true : undefined), 30_000);
    const before = [...load.samples];
    const stream = await longLivedStream(listen);
    await stream.echo("before the hand-over\n");

    const triggeredAt = performance.now();
    writeSwapResult(d.stateDir, "swap-1");
    const pid = await until("the successor to start", () => successorPid(d.output()), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    successors.push(pid);
    expect(pid).not.toBe(d.proc.pid);
    await until(
      "the old process to drain",
      () => (d.output().includes("this one drains and exits") ? true : undefined),
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    // The gateways know the old tunnels are draining: new users go to the successor's tunnels.
    const oldTunnelsDraining = async () =>
      (await cloud.gatewayStatus()).flatMap((g) => g.tunnels).filter((t) => t.draining).length;
    await until(
      "GO_AWAY seen by the gateways",
      async () => ((await oldTunnelsDraining()) >= 2 ? true : undefined),
      60_000,
    );
    const handedOverAt = performance.now();
    // The old process still carries the long-lived stream after its GO_AWAY.
    await stream.echo("after GO_AWAY\n");
    expect(d.proc.exitCode).toBeNull();
    // Status now comes from the successor (it took the admin socket over).
    await d.waitFor("the successor serving status", allTunnelsUp(2), 60_000);

    await until(
      "100 more connections after the hand-over",
      () => (load.samples.filter((s) => s.at > handedOverAt).length >= 100 ? true : undefined),
      60_000,
    );
    stream.close();
    const code = await Promise.race([d.proc.exited, Bun.sleep(60_000).then(() => "still running")]);
    expect(code).toBe(0);
    expect(d.output()).toContain("all streams finished");
    await load.stop();

    // The successor is the daemon now: it answers status, and the lock is its own.
    expect(alive(pid)).toBe(true);
    const after = await d.status();
    expect(after.exitCode).toBe(0);
    await until(
      "the successor to hold the lock",
      () => (d.output().includes("this process holds the daemon lock") ? true : undefined),
      60_000,
    );
    const during = load.samples.filter((s) => s.at >= triggeredAt && s.at <= handedOverAt + 2_000);
    console.log(
      `hand-over: ${load.samples.length} connections, ${load.failures.length} failed; longest connect+echo ${maxMs(before).toFixed(1)} ms before (${before.length}), ${maxMs(during).toFixed(1)} ms during (${during.length})`,
    );
    expect(load.failures).toEqual([]);
  } finally {
    await load.stop();
  }
}, 240_000);

test("a successor that gets no tunnel within the health timeout is stopped; the old process keeps serving", async () => {
  const d = (daemon = await startDaemon({
    key: cloud.provisioningKey,
    tunnels: 2,
    extraArgs: ["--upgrade-health-timeout", "3"],
  }));
  await d.waitFor("connected", allTunnelsUp(2), 60_000);
  const logs = () =>
    `--- connector (old and new) ---\n${d.output().slice(-6000)}\n--- cloud ---\n${cloud.output().slice(-3000)}`;
  // The gateways refuse new tunnels of this version: the old process keeps the ones it has, the
  // successor gets none and cannot become ready. (With no tunnel here either, the flow would wait.)
  const version = (await d.status()).snapshot!.version;
  await cloud.refuseVersion(version);
  writeSwapResult(d.stateDir, "swap-2");
  const pid = await until("the successor to start", () => successorPid(d.output()), 60_000);
  successors.push(pid);
  await until(
    "the health gate to fail",
    () => (d.output().includes("hand-over failed") ? true : undefined),
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  const failure = d
    .output()
    .split("\n")
    .find((line) => line.includes("hand-over failed"))!;
  expect(JSON.parse(failure)).toMatchObject({ code: "HEALTH_GATE_FAILED", reason: "not ready within 3 s" });
  await until("the successor to be gone", () => (alive(pid) ? undefined : true), 60_000);
  expect(d.proc.exitCode).toBeNull();
  await cloud.allowVersion(version);
  // The old process serves on: users get through, status answers.
  await d.waitFor("connected", allTunnelsUp(2), 90_000);
  expect(dec(await roundTrip(cloud.apps.echo!.listen!, enc("still here")))).toBe("still here");
  expect(d.output()).not.toContain("this one drains and exits");
}, 240_000);

test("SIGTERM during a hand-over stops both processes: the successor that is not ready yet, and the old one (exit 0)", async () => {
  const d = (daemon = await startDaemon({
    key: cloud.provisioningKey,
    tunnels: 2,
    extraArgs: ["--upgrade-health-timeout", "600"],
  }));
  await d.waitFor("connected", allTunnelsUp(2), 60_000);
  const version = (await d.status()).snapshot!.version;
  await cloud.refuseVersion(version);
  try {
    writeSwapResult(d.stateDir, "swap-3");
    const pid = await until("the successor to start", () => successorPid(d.output()), 60_000);
    successors.push(pid);
    // The successor is up far enough to have a signal handler (it logs "starting") but has no tunnel.
    await until("the successor to start up", () => (d.output().includes('"handover":true') ? true : undefined), 60_000);
    d.proc.kill("SIGTERM");
    const code = await Promise.race([d.proc.exited, Bun.sleep(60_000).then(() => "still running")]);
    expect(code).toBe(0);
    // run() waits for the successor: it is gone by the time the old process has exited.
    expect(alive(pid)).toBe(false);
    expect(d.output()).toContain("stopping on SIGTERM");
  } finally {
    await cloud.allowVersion(version);
  }
}, 240_000);

/** A datagram socket standing in for systemd's NOTIFY_SOCKET: every message it gets, as text. */
async function notifySocket(path: string) {
  // Python binds a datagram Unix socket portably; Bun's node:dgram has no Unix sockets.
  const listener = Bun.spawn(
    [
      "python3",
      "-c",
      `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    sys.stdout.write(repr(s.recv(4096).decode()) + "\\n"); sys.stdout.flush()
`,
      path,
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  let text = "";
  void (async () => {
    for await (const chunk of listener.stdout) text += new TextDecoder().decode(chunk);
  })();
  await until("the notify socket to be bound", () => (text.includes("bound") ? true : undefined), 30_000);
  return { messages: () => text, stop: () => listener.kill() };
}

test("the successor gets the proxy from the environment, never argv, and tells systemd it is the main process", async () => {
  const password = "handover-proxy-pass-3";
  const proxy = startConnectProxy({ auth: { username: "ops", password } });
  const scratch = mkdtempSync(join(tmpdir(), "handover-notify-"));
  const notify = await notifySocket(join(scratch, "notify.sock"));
  try {
    const d = (daemon = await startDaemon({
      key: cloud.provisioningKey,
      tunnels: 2,
      env: { HTTPS_PROXY: proxy.urlWithAuth(), NOTIFY_SOCKET: join(scratch, "notify.sock") },
    }));
    await d.waitFor("connected", allTunnelsUp(2), 60_000);
    await until(
      "READY=1 from the first process",
      () => (notify.messages().includes("READY=1\\n") ? true : undefined),
      60_000,
    );
    const tunnelsBefore = proxy.tunnels;
    writeSwapResult(d.stateDir, "swap-4");
    const pid = await until("the successor to start", () => successorPid(d.output()), 60_000);
    successors.push(pid);
    await until(
      "the successor's MAINPID",
      () => (notify.messages().includes(`'MAINPID=${pid}\\nREADY=1\\n'`) ? true : undefined),
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nnotify: ${notify.messages()}\n${d.output().slice(-4000)}`);
    });
    // Its tunnels went through the proxy, with the password: the setting reached it.
    expect(proxy.tunnels).toBeGreaterThanOrEqual(tunnelsBefore + 2);
    expect(readFileSync(`/proc/${pid}/cmdline`, "latin1")).not.toContain(password);
    expect(readFileSync(`/proc/${pid}/environ`, "latin1")).not.toContain(password);
    expect(d.output()).not.toContain(password);
    expect(await Promise.race([d.proc.exited, Bun.sleep(60_000).then(() => "still running")])).toBe(0);
  } finally {
    notify.stop();
    proxy.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}, 240_000);
