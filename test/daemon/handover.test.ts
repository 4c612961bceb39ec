import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../src/clock.ts";
import { spawnSuccessor, successorCommand, successorEnv, type Successor } from "../../src/daemon/handover.ts";
import { takeHandoverRequest, tunnelsWanted, waitForTunnels } from "../../src/daemon/handover-child.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { until } from "../support/wait.ts";

const FIXTURE = join(import.meta.dir, "..", "support", "handover-successor.ts");
const started: Successor[] = [];
const scratch = mkdtempSync(join(tmpdir(), "handover-"));
let armedFiles = 0;

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function start(
  mode: string,
  options: { timeoutMs?: number; clock?: FakeClock; killAfterMs?: number } = {},
): Successor & { armed(): Promise<void> } {
  const armedFile = join(scratch, `armed-${armedFiles++}`);
  const successor = spawnSuccessor({
    command: [process.execPath, FIXTURE],
    env: {
      PATH: process.env.PATH,
      SUCCESSOR_MODE: mode,
      ARMED_FILE: armedFile,
      ...successorEnv({ EXPECT_TUNNELS: "2" }, 2),
    },
    timeoutMs: options.timeoutMs ?? 60_000,
    clock: options.clock ?? systemClock,
    ...(options.killAfterMs === undefined ? {} : { killAfterMs: options.killAfterMs }),
  });
  started.push(successor);
  return {
    ...successor,
    armed: () =>
      until("the successor's signal handler", () => (existsSync(armedFile) ? true : undefined), 20_000).then(() => {}),
  };
}

describe("the old side: the successor's readiness pipe (fd 3)", () => {
  test("a successor that takes the request and writes ready is ready; it is still running", async () => {
    const successor = start("ready");
    expect(await successor.readiness).toEqual({ ready: true });
    const exited = await Promise.race([successor.exited, Bun.sleep(200).then(() => "running")]);
    expect(exited).toBe("running");
  });

  test("a successor that says nothing is not ready once the deadline passes", async () => {
    const clock = new FakeClock();
    const successor = start("silent", { clock, timeoutMs: 120_000 });
    let settled = false;
    void successor.readiness.then(() => (settled = true));
    await clock.advance(119_000);
    expect(settled).toBe(false);
    await clock.advance(1_000);
    expect(await successor.readiness).toEqual({ ready: false, reason: "not ready within 120 s" });
    await successor.armed();
    await successor.stop();
    expect(await successor.exited).toBe(0); // it got SIGTERM and stopped by itself
  });

  test("a successor that ignores SIGTERM is killed (SIGKILL) after killAfterMs", async () => {
    const clock = new FakeClock();
    const successor = start("stubborn", { clock, killAfterMs: 10_000 });
    await successor.armed();
    const stopped = successor.stop();
    let exited = false;
    void successor.exited.then(() => (exited = true));
    // SIGTERM alone does not end it: still running after a while of real time.
    expect(await Promise.race([successor.exited.then(() => "exited"), Bun.sleep(300).then(() => "running")])).toBe(
      "running",
    );
    await clock.advance(10_000);
    await stopped;
    expect(exited).toBe(true);
    expect(await successor.exited).toBeNull(); // killed by a signal
  });

  test("a successor that exits before it is ready is detected at once, with its exit code", async () => {
    const successor = start("exit");
    const result = await successor.readiness;
    expect(result).toEqual({ ready: false, reason: "the new process exited with code 7 before it was ready" });
  });

  test("a successor that writes something else than ready is not taken as ready", async () => {
    const successor = start("garbage");
    expect(await successor.readiness).toEqual({
      ready: false,
      reason: "the new process wrote something other than ready on its readiness pipe",
    });
  });

  test("cancel (the old process is stopping) settles readiness; stop asked twice sends one SIGTERM", async () => {
    const successor = start("count");
    await successor.armed();
    successor.cancel("stopping on SIGTERM");
    expect(await successor.readiness).toEqual({ ready: false, reason: "stopping on SIGTERM" });
    const first = successor.stop();
    await Bun.sleep(100); // a second signal sent at once could merge with the first in the kernel
    await Promise.all([first, successor.stop()]);
    expect(await successor.exited).toBe(1);
  });
});

describe("what the successor is given", () => {
  test("this process's arguments; the environment with secrets (never argv), without the provisioning key", () => {
    expect(
      successorCommand("/usr/local/bin/connector", ["bun", "/$bunfs/root/connector", "run", "--tunnels", "2"]),
    ).toEqual(["/usr/local/bin/connector", "run", "--tunnels", "2"]);
    const env = successorEnv(
      {
        HTTPS_PROXY: "http://user:secret@proxy:3128",
        CONNECTOR_PROVISIONING_KEY: "cpk_secret",
        CONNECTOR_HANDOVER: "9",
        UNSET: undefined,
      },
      2,
    );
    expect(env).toEqual({ HTTPS_PROXY: "http://user:secret@proxy:3128", CONNECTOR_HANDOVER: "2" });
  });
});

describe("the new side", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test("the request is removed from the environment; without an open pipe on fd 3 it is not acted on", () => {
    const processEnv: Record<string, string | undefined> = { CONNECTOR_HANDOVER: "2" };
    const env: Record<string, string | undefined> = { CONNECTOR_HANDOVER: "2" };
    expect(takeHandoverRequest(env, { processEnv, readinessFd: 987 }).problem).toContain("fd 987 is not open");
    expect(env.CONNECTOR_HANDOVER).toBeUndefined();
    expect(processEnv.CONNECTOR_HANDOVER).toBeUndefined();
    dir = mkdtempSync(join(tmpdir(), "handover-"));
    const fd = openSync(join(dir, "file"), "w");
    try {
      expect(takeHandoverRequest({ CONNECTOR_HANDOVER: "2" }, { processEnv: {}, readinessFd: fd }).problem).toContain(
        "is not a pipe",
      );
    } finally {
      closeSync(fd);
    }
    expect(takeHandoverRequest({ CONNECTOR_HANDOVER: "two" }, { processEnv: {} }).problem).toContain(
      "not a tunnel count",
    );
    expect(takeHandoverRequest({}, { processEnv: {} })).toEqual({});
  });

  test("ready with as many tunnels as the old process had, at most its own count, at least one", async () => {
    expect(tunnelsWanted({ previousTunnels: 2, readinessFd: 3 }, 4)).toBe(2);
    expect(tunnelsWanted({ previousTunnels: 4, readinessFd: 3 }, 2)).toBe(2);
    expect(tunnelsWanted({ previousTunnels: 0, readinessFd: 3 }, 2)).toBe(1);
    const clock = new FakeClock();
    const listeners = new Set<() => void>();
    const events = (listener: () => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };
    const tunnelChanged = () => {
      for (const listener of [...listeners]) listener();
    };
    let up = 0;
    let done: boolean | undefined;
    void waitForTunnels(() => up, 2, events, clock, new AbortController().signal).then((r) => (done = r));
    up = 1;
    tunnelChanged();
    await clock.advance(60_000);
    expect(done).toBeUndefined();
    up = 2;
    await clock.advance(60_000);
    expect(done).toBeUndefined(); // the count is looked at on the supervisor's events, not on a timer
    tunnelChanged();
    await clock.advance(0);
    expect(done).toBe(true);
    expect(listeners.size).toBe(0);
    const abort = new AbortController();
    const aborted = waitForTunnels(() => 0, 1, events, clock, abort.signal);
    abort.abort();
    expect(await aborted).toBe(false);
    expect(listeners.size).toBe(0);
  });
});
