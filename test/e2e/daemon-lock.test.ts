/**
 * One daemon per state dir (src/state/daemon-lock.ts): of 10 `connector run` started at once on one
 * state dir exactly one runs, the others exit ALREADY_RUNNING (23). `connector status` on a daemon
 * that holds the lock but does not answer says so (not-responding, exit 5) instead of "not running".
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ExitCode } from "../../src/errors.ts";
import { connectorBinary, isolatedEnv, runConnector } from "../support/binary.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";

const DAEMONS = 10;
let cloud: CloudProcess;
let root: string;
let stateDir: string;
const procs: { proc: Subprocess; output: string[] }[] = [];

beforeAll(async () => {
  connectorBinary();
  cloud = await startCloud({ gateways: 2 });
  root = mkdtempSync(join(tmpdir(), "e2e-daemon-lock-"));
  stateDir = join(root, "state");
  const enrolled = await runConnector([
    "enroll",
    "--state-dir",
    stateDir,
    "--key",
    cloud.provisioningKey,
    "--log-format",
    "json",
  ]);
  if (enrolled.exitCode !== 0)
    throw new Error(
      `enroll failed (exit ${enrolled.exitCode}):\n${enrolled.stderr}\ncloud:\n${cloud.output().slice(-2000)}`,
    );
}, 120_000);

afterAll(async () => {
  for (const { proc } of procs) if (proc.exitCode === null) proc.kill("SIGKILL");
  await Promise.all(procs.map(({ proc }) => proc.exited));
  await cloud?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

function logs(): string {
  return (
    procs.map(({ output }, i) => `--- daemon ${i}:\n${output.join("").slice(-1500)}`).join("\n") +
    `\n--- cloud:\n${cloud.output().slice(-1500)}`
  );
}

test("10 daemons started at once on one state dir: exactly one runs, the others exit ALREADY_RUNNING", async () => {
  for (let i = 0; i < DAEMONS; i++) {
    const proc = Bun.spawn([connectorBinary(), "run", "--state-dir", stateDir, "--log-format", "json"], {
      env: isolatedEnv(),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const output: string[] = [];
    const decoder = new TextDecoder();
    void (async () => {
      for await (const chunk of proc.stderr) output.push(decoder.decode(chunk, { stream: true }));
    })();
    procs.push({ proc, output });
  }
  // The losers exit by themselves; wait for DAEMONS - 1 exits (generous deadline), then check the survivor.
  const deadline = Date.now() + 60_000;
  while (procs.filter(({ proc }) => proc.exitCode !== null).length < DAEMONS - 1) {
    if (Date.now() > deadline)
      throw new Error(
        `only ${procs.filter(({ proc }) => proc.exitCode !== null).length} daemons exited within 60 s\n${logs()}`,
      );
    await Promise.race([
      ...procs.filter(({ proc }) => proc.exitCode === null).map(({ proc }) => proc.exited),
      Bun.sleep(500),
    ]);
  }
  const exited = procs.filter(({ proc }) => proc.exitCode !== null);
  const running = procs.filter(({ proc }) => proc.exitCode === null);
  if (running.length !== 1 || exited.some(({ proc }) => proc.exitCode !== ExitCode.alreadyRunning)) {
    throw new Error(`exit codes ${JSON.stringify(procs.map(({ proc }) => proc.exitCode))}\n${logs()}`);
  }
  for (const { output } of exited) expect(output.join("")).toContain("[ALREADY_RUNNING]");

  // The survivor serves status; stopped (SIGSTOP) it holds the lock but answers nothing.
  const survivor = running[0]!.proc;
  const deadlineUp = Date.now() + 60_000;
  for (;;) {
    const status = await runConnector(["status", "--state-dir", stateDir, "--json"], { timeoutMs: 30_000 });
    if (JSON.parse(status.stdout).state === "connected") break;
    if (Date.now() > deadlineUp)
      throw new Error(`the surviving daemon did not connect within 60 s: ${status.stdout}\n${logs()}`);
    await Bun.sleep(100);
  }
  // `enroll --force` beside the running daemon: refused at once, no key use spent, identity untouched.
  const keyPem = readFileSync(join(stateDir, "identity", "key.pem"), "utf8");
  const { key: oneUse } = await cloud.createKey({ maxUses: 1 });
  const forced = await runConnector(
    ["enroll", "--force", "--state-dir", stateDir, "--key", oneUse, "--log-format", "json"],
    { timeoutMs: 60_000 },
  );
  if (forced.exitCode !== ExitCode.alreadyRunning)
    throw new Error(`enroll --force beside a daemon: exit ${forced.exitCode}\n${forced.stderr}\n${logs()}`);
  expect(forced.stderr).toContain("[ALREADY_RUNNING]");
  expect(readFileSync(join(stateDir, "identity", "key.pem"), "utf8")).toBe(keyPem);
  const other = mkdtempSync(join(root, "other-"));
  const unspent = await runConnector(
    ["enroll", "--state-dir", join(other, "state"), "--key", oneUse, "--log-format", "json"],
    { timeoutMs: 60_000 },
  );
  expect(unspent.exitCode).toBe(0);

  survivor.kill("SIGSTOP");
  try {
    const status = await runConnector(["status", "--state-dir", stateDir, "--json"], { timeoutMs: 30_000 });
    expect(JSON.parse(status.stdout).state).toBe("not-responding");
    expect(status.exitCode).toBe(43);
  } finally {
    survivor.kill("SIGCONT");
  }
  survivor.kill("SIGTERM");
  expect(await survivor.exited).toBe(0);
  const after = await runConnector(["status", "--state-dir", stateDir, "--json"], { timeoutMs: 30_000 });
  expect(JSON.parse(after.stdout).state).toBe("not-running");
}, 240_000);
