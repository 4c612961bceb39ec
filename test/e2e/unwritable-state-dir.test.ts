/**
 * `connector run` with a provisioning key and a state dir that cannot take the identity (a full file
 * system, a read-only one) spends no key use: the key, good for one use, still enrolls afterwards.
 * The file systems are small tmpfs mounts made by the test (needs root and mount permission; the
 * test is skipped with the reason printed otherwise) and unmounted afterwards.
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { connectorBinary, isolatedEnv, runConnector } from "../support/binary.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";

const root = mkdtempSync(join(tmpdir(), "e2e-unwritable-"));
const mounts: string[] = [];

function sh(args: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(args, { stdout: "ignore", stderr: "pipe" });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

/** A fresh tmpfs of `size` at `<root>/<name>` (mode 0700); undefined when mounting is not permitted. */
function mountTmpfs(name: string, size: string): string | undefined {
  const dir = join(root, name);
  mkdirSync(dir);
  const r = sh(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  if (!r.ok) return undefined;
  mounts.push(dir);
  return dir;
}

const probe = mountTmpfs("probe", "64k");
const skipReason = probe === undefined ? "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)" : "";
if (skipReason) console.warn(`unwritable-state-dir e2e skipped: ${skipReason}`);

let cloud: CloudProcess;
const daemons: Subprocess[] = [];

beforeAll(async () => {
  if (skipReason) return;
  connectorBinary();
  cloud = await startCloud({ keyUses: 1 });
}, 120_000);

afterAll(async () => {
  try {
    for (const d of daemons) if (d.exitCode === null) d.kill("SIGKILL");
    await Promise.all(daemons.map((d) => d.exited));
    await cloud?.stop();
  } finally {
    // Whatever failed above, the mounts go (a lazy unmount if something still holds one).
    for (const dir of mounts.reverse()) if (!sh(["umount", dir]).ok) sh(["umount", "-l", dir]);
    rmSync(root, { recursive: true, force: true });
  }
}, 60_000);

/** Fills the file system at `dir` until it reports ENOSPC. */
function fill(dir: string): void {
  const fd = openSync(join(dir, "filler"), "w");
  const chunk = new Uint8Array(4096);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

/** Starts `connector run` on `stateDir` with the cloud's key; resolves once it logs that the state dir cannot be written. */
async function runUntilStateDirError(stateDir: string): Promise<{ proc: Subprocess; output: () => string }> {
  const proc = Bun.spawn([connectorBinary(), "run", "--state-dir", stateDir, "--log-format", "json"], {
    env: isolatedEnv({ CONNECTOR_PROVISIONING_KEY: cloud.provisioningKey }),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  daemons.push(proc);
  const chunks: string[] = [];
  const output = () => chunks.join("");
  const decoder = new TextDecoder();
  const seen = (async () => {
    for await (const chunk of proc.stderr) {
      chunks.push(decoder.decode(chunk, { stream: true }));
      if (output().includes("state dir cannot be written")) return true;
    }
    return false;
  })();
  void (async () => {
    for await (const chunk of proc.stdout) chunks.push(decoder.decode(chunk, { stream: true }));
  })();
  // 60 s: a safety deadline for a loaded machine, not an expectation.
  const timeout = Bun.sleep(60_000).then(() => false);
  const ok = await Promise.race([seen, timeout]);
  if (!ok)
    throw new Error(
      `connector run did not report the unwritable state dir within 60 s (exit ${proc.exitCode}):\n${output().slice(-4000)}\ncloud:\n${cloud.output().slice(-2000)}`,
    );
  return { proc, output };
}

describe.skipIf(skipReason !== "")("an unwritable state dir spends no key use", () => {
  test("full and read-only state dirs: run waits with a clear error; the one-use key still enrolls afterwards", async () => {
    const full = mountTmpfs("full", "64k")!;
    fill(full);
    const readOnly = mountTmpfs("ro", "64k")!;
    expect(sh(["mount", "-o", "remount,ro", readOnly]).ok).toBe(true);

    for (const dir of [full, readOnly]) {
      const { proc, output } = await runUntilStateDirError(dir);
      // Still running (waiting minutes, not looping), and it says why.
      expect(proc.exitCode).toBeNull();
      const line = output()
        .split("\n")
        .find((l) => l.includes("state dir cannot be written"))!;
      expect(JSON.parse(line).code).toMatch(/^STATE_DIR_/);
      expect(JSON.parse(line).retryInSeconds).toBe(300);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }

    // The key had one use: it was not spent by either daemon.
    const result = await runConnector([
      "enroll",
      "--state-dir",
      join(root, "good"),
      "--key",
      cloud.provisioningKey,
      "--log-format",
      "json",
    ]);
    if (result.exitCode !== 0)
      throw new Error(
        `enroll failed (exit ${result.exitCode}):\n${result.stderr}\ncloud:\n${cloud.output().slice(-2000)}`,
      );
  }, 240_000);
});
