/**
 * Writes that fail half-way, on a full file system under --root (tmpfs mounts: the tests run as
 * root): no temporary file is left beside the target, no short binary is renamed into place, and the
 * run ends with exit 1 and the installer's own words after the tool's message.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget } from "../../build.ts";
import { silentLog } from "../cloud/test-client.ts";
import { startReleaseServer, type ReleaseServer } from "../cloud/releases/server.ts";
import { bakeInstallerCopy, describeRun, runInstaller, snapshot } from "../support/installer.ts";
import { fakeBinary, makeFakeKeys, writeFakeRelease } from "../support/release-fixture.ts";

const work = mkdtempSync(join(tmpdir(), "install-full-disk-"));
const keys = makeFakeKeys();
const mounts: string[] = [];
let server: ReleaseServer;
let script: string;

beforeAll(async () => {
  // A fake binary padded with a comment: still a script that answers --version, but 512 KiB.
  writeFakeRelease({
    dir: join(work, "rel", "a"),
    keys,
    version: "1.0.0",
    channel: "stable",
    sequence: 1,
    targets: [hostTarget()],
    binary: (t) => `${fakeBinary("1.0.0", t)}# ${"x".repeat(512 * 1024)}\n`,
  });
  server = await startReleaseServer({ dir: join(work, "rel"), log: silentLog });
  script = bakeInstallerCopy(join(work, "install.sh"), {
    rootSpkis: keys.roots.map((r) => r.publicKey),
    baseUrl: server.baseUrl,
  });
});

afterAll(async () => {
  for (const dir of mounts) Bun.spawnSync(["umount", dir]);
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A fresh tmpfs with these options, as the --root of one run. */
function tmpfsRoot(name: string, options: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `${options},mode=0755`, `install-test-${name}`, dir], {
    stderr: "pipe",
  });
  if (mount.exitCode !== 0) throw new Error(`this test needs root to mount a tmpfs: ${mount.stderr.toString()}`);
  mounts.push(dir);
  return dir;
}

const filesUnder = (root: string) => [...snapshot(root)].filter(([, f]) => f.type !== "dir").map(([path]) => path);

describe("install.sh on a full file system", () => {
  test("the binary does not fit: exit 1 naming the file; no temporary file and no binary left", async () => {
    const root = tmpfsRoot("small", "size=128k");
    const run = await runInstaller(script, ["--root", root]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stderr).toContain("No space left on device");
    expect(run.stderr.trim().split("\n").at(-1)).toBe(
      "install.sh: writing /usr/local/bin/connector failed (is the disk full?); it was not changed",
    );
    expect(filesUnder(root)).toEqual([]);
  });

  test("no inode left for a directory: the tool's error, then exit 1 in the installer's words", async () => {
    const root = tmpfsRoot("no-inodes", "size=4m,nr_inodes=3");
    const run = await runInstaller(script, ["--root", root]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stderr).toContain("mkdir: cannot create directory");
    expect(run.stderr.trim().split("\n").at(-1)).toBe(
      "install.sh: stopped by the error above (exit 1); run the same line again once it is fixed",
    );
    expect(filesUnder(root)).toEqual([]);
  });
});
