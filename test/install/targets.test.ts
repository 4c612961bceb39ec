/**
 * Which build install.sh picks for a host. The host facts it reads through commands (`uname -s`,
 * `uname -m`, `ldd --version`) are faked by putting scripts of those names first on PATH; the
 * release offers every target, each fake binary answering --version for its own target only, so
 * the target installed is the one the installer chose.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TARGETS } from "../../src/upgrade/format.ts";
import { silentLog } from "../cloud/test-client.ts";
import { startReleaseServer, type ReleaseServer } from "../cloud/releases/server.ts";
import { bakeInstallerCopy, describeRun, runInstaller, snapshot } from "../support/installer.ts";
import { makeFakeKeys, writeFakeRelease } from "../support/release-fixture.ts";

const work = mkdtempSync(join(tmpdir(), "install-targets-"));
const keys = makeFakeKeys();
const hasAvx2 = /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
/** Each test runs install.sh (bash, curl, openssl): 9-10 s with stress-ng on both cores, so not 30 s. */
const INSTALL_TIMEOUT_MS = 120_000;
let server: ReleaseServer;
let script: string;
let hosts = 0;

beforeAll(async () => {
  mkdirSync(join(work, "rel"));
  writeFakeRelease({
    dir: join(work, "rel", "all"),
    keys,
    version: "2.0.0",
    channel: "all",
    sequence: 1,
    targets: TARGETS,
  });
  writeFakeRelease({
    dir: join(work, "rel", "no-x64"),
    keys,
    version: "2.0.0",
    channel: "no-x64",
    sequence: 1,
    targets: TARGETS.filter((t) => t !== "linux-x64"),
  });
  server = await startReleaseServer({ dir: join(work, "rel"), log: silentLog });
  script = bakeInstallerCopy(join(work, "install.sh"), {
    rootSpkis: keys.roots.map((r) => r.publicKey),
    baseUrl: server.baseUrl,
  });
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A PATH directory whose `uname` (and, for musl, `ldd`) answer like the host described. */
function fakeHost(os: string, machine: string, musl: boolean): string {
  const bin = join(work, `host-${++hosts}`);
  mkdirSync(bin);
  const write = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  write("uname", `case "$1" in -s) echo '${os}' ;; -m) echo '${machine}' ;; *) exec /bin/uname "$@" ;; esac`);
  if (musl) write("ldd", "echo 'musl libc (x86_64)'; echo 'Version 1.2.4'; exit 1");
  return bin;
}

async function installOn(bin: string, channel = "all") {
  const root = join(work, `root-${hosts}-${channel}`);
  mkdirSync(root);
  const run = await runInstaller(script, ["--root", root, "--channel", channel], {
    env: { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` },
  });
  const installed = snapshot(root).has("usr/local/bin/connector")
    ? readFileSync(join(root, "usr/local/bin/connector"), "utf8")
    : undefined;
  return { run, root, target: installed === undefined ? undefined : /target (\S+)\)/.exec(installed)?.[1] };
}

describe("install.sh picks the build for the host", () => {
  const cases: Array<[string, string, boolean, string]> = [
    ["Linux", "aarch64", false, "linux-arm64"],
    ["Linux", "arm64", false, "linux-arm64"],
    ["Linux", "aarch64", true, "linux-arm64-musl"],
    ["Linux", "x86_64", true, "linux-x64-musl"],
    ["Linux", "x86_64", false, hasAvx2 ? "linux-x64" : "linux-x64-baseline"],
  ];
  for (const [os, machine, musl, expected] of cases) {
    test(
      `${machine}${musl ? " with musl" : ""}: ${expected}`,
      async () => {
        const { run, target } = await installOn(fakeHost(os, machine, musl));
        expect(run.code, describeRun(run)).toBe(0);
        expect(target).toBe(expected);
        expect(run.stderr).toContain(`verified connector 2.0.0 (${expected}, sequence 1)`);
      },
      INSTALL_TIMEOUT_MS,
    );
  }

  test(
    "an x86_64 host falls back to the baseline build when the release has no linux-x64",
    async () => {
      const { run, target } = await installOn(fakeHost("Linux", "x86_64", false), "no-x64");
      expect(run.code, describeRun(run)).toBe(0);
      expect(target).toBe("linux-x64-baseline");
    },
    INSTALL_TIMEOUT_MS,
  );

  test(
    "another architecture: exit 3 naming it, nothing installed",
    async () => {
      const { run, root } = await installOn(fakeHost("Linux", "riscv64", false));
      expect(run.code, describeRun(run)).toBe(3);
      expect(run.stderr).toBe(
        `install.sh: this host's architecture riscv64 has no connector build (builds: ${TARGETS.join(" ")})\n`,
      );
      expect(snapshot(root).size).toBe(0);
    },
    INSTALL_TIMEOUT_MS,
  );

  test(
    "not Linux: exit 3, nothing installed",
    async () => {
      const { run, root } = await installOn(fakeHost("Darwin", "arm64", false));
      expect(run.code, describeRun(run)).toBe(3);
      expect(run.stderr).toBe("install.sh: this host runs Darwin: the connector runs on Linux only\n");
      expect(snapshot(root).size).toBe(0);
    },
    INSTALL_TIMEOUT_MS,
  );
});
