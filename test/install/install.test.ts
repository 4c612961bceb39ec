/**
 * install.sh against the reference release server, files only (`--root`): a real signed release
 * (`bun run release`, host target) installs the documented files with the documented modes, a re-run
 * rewrites nothing, a newer release replaces the binary and keeps connector.prev, an older one is kept
 * unless asked for, the settings file is merged, and --uninstall / --purge remove what they say.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLog } from "../cloud/test-client.ts";
import { startReleaseServer, type ReleaseServer } from "../cloud/releases/server.ts";
import {
  bakeInstallerCopy,
  describeRun,
  runInstaller,
  snapshot,
  startCountingServer,
  type InstallerRun,
} from "../support/installer.ts";
import { readKeyDir, writeFakeRelease, type FakeRelease } from "../support/release-fixture.ts";
import { makeKeys, type ReleaseKeys } from "../support/release-keys.ts";
import { buildRelease, type BuiltRelease } from "../support/releases.ts";
import type { Target } from "../../src/upgrade/format.ts";

const REPO = join(import.meta.dir, "..", "..");
const work = mkdtempSync(join(tmpdir(), "install-test-"));
let failed = false;
let keys: ReleaseKeys;
let server: ReleaseServer;
let a: BuiltRelease;

beforeAll(async () => {
  keys = makeKeys(join(work, "keys"));
  mkdirSync(join(work, "rel"));
  server = await startReleaseServer({ dir: join(work, "rel"), log: silentLog });
  a = await buildRelease({
    keys,
    version: "1.0.0",
    channel: "stable",
    sequence: 1,
    out: join(work, "rel", "a"),
    baseUrl: server.baseUrl,
  });
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (failed) console.error(`install test failed: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

/** Runs the body; a failure keeps the work directory for a look. */
function step(name: string, body: () => Promise<void>, timeoutMs = 120_000): void {
  test(
    name,
    async () => {
      try {
        await body();
      } catch (err) {
        failed = true;
        throw err;
      }
    },
    timeoutMs,
  );
}

const fakeRelease = (dir: string, version: string, sequence: number): FakeRelease =>
  writeFakeRelease({
    dir: join(work, "rel", dir),
    keys: readKeyDir(keys.dir),
    version,
    channel: "stable",
    sequence,
    targets: [a.target as Target],
  });

function expectOk(run: InstallerRun): void {
  expect(run.code, describeRun(run)).toBe(0);
}

const read = (root: string, path: string) => readFileSync(join(root, path));
const UNITS = ["connector.service", "connector-upgrade.path", "connector-upgrade.service"];

describe("install.sh --root", () => {
  const root = join(work, "root");

  step("a good release installs the documented files with the documented modes, and nothing else", async () => {
    mkdirSync(root);
    const run = await runInstaller(a.installer, ["--root", root]);
    expectOk(run);
    const files = snapshot(root);
    const modes = Object.fromEntries([...files].map(([path, f]) => [path, `${f.type} ${f.mode.toString(8)}`]));
    expect(modes).toEqual({
      etc: "dir 755",
      "etc/connector": "dir 750",
      "etc/connector/connector.env": "file 640",
      "etc/systemd": "dir 755",
      "etc/systemd/system": "dir 755",
      "etc/systemd/system/connector-upgrade.path": "file 644",
      "etc/systemd/system/connector-upgrade.service": "file 644",
      "etc/systemd/system/connector.service": "file 644",
      usr: "dir 755",
      "usr/local": "dir 755",
      "usr/local/bin": "dir 755",
      "usr/local/bin/connector": "file 755",
      var: "dir 755",
      "var/lib": "dir 755",
      "var/lib/connector": "dir 700",
    });
    expect(read(root, "usr/local/bin/connector").equals(readFileSync(a.binary))).toBe(true);
    for (const unit of UNITS)
      expect(read(root, `etc/systemd/system/${unit}`).toString()).toBe(
        readFileSync(join(REPO, "packaging", "systemd", unit), "utf8"),
      );
    // No proxy, channel, release host or version was given: the settings file holds comments only.
    expect(
      read(root, "etc/connector/connector.env")
        .toString()
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith("#")),
    ).toEqual([]);
    expect(run.stderr).toContain("install.sh: verified connector 1.0.0");
    expect(run.stderr).toContain("install.sh: installed /usr/local/bin/connector (1.0.0)");
  });

  step("a re-run rewrites nothing (same inode and mtime of every file) and says unchanged", async () => {
    const before = snapshot(root);
    const run = await runInstaller(a.installer, ["--root", root]);
    expectOk(run);
    expect(snapshot(root)).toEqual(before);
    expect(run.stderr).toContain("install.sh: unchanged: connector 1.0.0 is installed");
  });

  step(
    "a newer release replaces the binary and keeps the old one as connector.prev; the rest is untouched",
    async () => {
      const before = snapshot(root);
      const b = fakeRelease("b", "1.1.0", 2);
      const run = await runInstaller(a.installer, ["--root", root]);
      expectOk(run);
      const after = snapshot(root);
      expect(read(root, "usr/local/bin/connector").equals(readFileSync(b.binaries[a.target as Target]!))).toBe(true);
      // The old file itself (same inode), not a copy: it was linked, never rewritten.
      expect(after.get("usr/local/bin/connector.prev")?.ino).toBe(before.get("usr/local/bin/connector")!.ino);
      expect(read(root, "usr/local/bin/connector.prev").equals(readFileSync(a.binary))).toBe(true);
      expect(after.get("usr/local/bin/connector")?.mode).toBe(0o755);
      for (const path of ["etc/connector/connector.env", ...UNITS.map((u) => `etc/systemd/system/${u}`)])
        expect(after.get(path)).toEqual(before.get(path)!);
      expect(run.stderr).toContain("upgraded /usr/local/bin/connector from 1.0.0 to 1.1.0");
    },
  );

  step("an older release of the channel is kept unless --version asks for exactly it", async () => {
    const c = fakeRelease("c", "1.0.5", 3);
    const before = snapshot(root);
    const kept = await runInstaller(a.installer, ["--root", root]);
    expectOk(kept);
    expect(kept.stderr).toContain("the installed connector 1.1.0 is newer than 1.0.5 of channel stable: kept");
    expect(snapshot(root)).toEqual(before);

    const other = await runInstaller(a.installer, ["--root", root, "--version", "1.2.0"]);
    expect(other.code, describeRun(other)).toBe(1);
    expect(other.stderr).toContain("install.sh: version 1.2.0 was asked for, but channel stable");
    expect(snapshot(root)).toEqual(before);

    const asked = await runInstaller(a.installer, ["--root", root, "--version", "1.0.5"]);
    expectOk(asked);
    expect(read(root, "usr/local/bin/connector").equals(readFileSync(c.binaries[a.target as Target]!))).toBe(true);
    expect(read(root, "etc/connector/connector.env").toString()).toContain("\nCONNECTOR_PIN_VERSION=1.0.5\n");
  });

  step("a pinned host keeps its version when the channel moves on; --version moves the pin", async () => {
    const d = fakeRelease("d", "1.2.0", 4);
    const before = snapshot(root);
    const kept = await runInstaller(a.installer, ["--root", root]);
    expectOk(kept);
    expect(kept.stderr).toContain(
      "pinned to 1.0.5 (CONNECTOR_PIN_VERSION in /etc/connector/connector.env): 1.2.0 of channel stable not installed",
    );
    expect(kept.stderr).toContain("unchanged: connector 1.0.5 is installed");
    expect(snapshot(root)).toEqual(before);

    const moved = await runInstaller(a.installer, ["--root", root, "--version", "1.2.0"]);
    expectOk(moved);
    expect(read(root, "usr/local/bin/connector").equals(readFileSync(d.binaries[a.target as Target]!))).toBe(true);
    expect(read(root, "etc/connector/connector.env").toString()).toContain("\nCONNECTOR_PIN_VERSION=1.2.0\n");
  });

  step(
    "the settings file: given values replace theirs, every other line is kept, the release host is written only when it differs; a re-run downloads through its proxy",
    async () => {
      const env = join(root, "etc/connector/connector.env");
      const first = await runInstaller(a.installer, [
        "--root",
        root,
        "--proxy",
        "http://proxy.example:3128",
        "--no-proxy",
        "127.0.0.1",
      ]);
      expectOk(first);
      writeFileSync(env, `${readFileSync(env, "utf8")}CONNECTOR_LOG_LEVEL=debug\n`);
      const second = await runInstaller(a.installer, [
        "--root",
        root,
        "--no-proxy",
        "localhost,127.0.0.1,10.0.0.0/8",
        "--base-url",
        server.baseUrl.replace("127.0.0.1", "localhost"),
      ]);
      expectOk(second);
      const settings = readFileSync(env, "utf8")
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith("#"));
      expect(settings.sort()).toEqual(
        [
          "CONNECTOR_PIN_VERSION=1.2.0",
          "CONNECTOR_PROXY=http://proxy.example:3128",
          "CONNECTOR_LOG_LEVEL=debug",
          "CONNECTOR_NO_PROXY=localhost,127.0.0.1,10.0.0.0/8",
          `CONNECTOR_MANIFEST_URL=${server.baseUrl.replace("127.0.0.1", "localhost")}/stable/manifest.json`,
        ].sort(),
      );
      expect(snapshot(root).get("etc/connector/connector.env")?.mode).toBe(0o640);
      // The release host the script was baked with is the default: nothing to write for it.
      const same = await runInstaller(a.installer, [
        "--root",
        root,
        "--base-url",
        server.baseUrl.replace("127.0.0.1", "localhost"),
      ]);
      expectOk(same);
      expect(same.stderr).toContain("unchanged");
      // Not given, the proxy of the settings file is used (and no longer bypassed for the release host).
      writeFileSync(env, readFileSync(env, "utf8").replace("CONNECTOR_NO_PROXY=localhost,127.0.0.1,10.0.0.0/8\n", ""));
      const viaProxy = await runInstaller(a.installer, ["--root", root]);
      expect(viaProxy.code, describeRun(viaProxy)).toBe(5);
      expect(viaProxy.stderr).toContain("proxy.example");
    },
  );

  step(
    "a re-run follows the channel and release host of the settings file; going back to the defaults removes them",
    async () => {
      const env = join(root, "etc/connector/connector.env");
      const beta = writeFakeRelease({
        dir: join(work, "rel", "beta"),
        keys: readKeyDir(keys.dir),
        version: "5.0.0",
        channel: "beta",
        sequence: 1,
        targets: [a.target as Target],
      });
      const local = server.baseUrl.replace("127.0.0.1", "localhost");
      const switched = await runInstaller(a.installer, [
        "--root",
        root,
        "--channel",
        "beta",
        "--version",
        "5.0.0",
        "--no-proxy",
        "localhost",
      ]);
      expectOk(switched);
      expect(switched.stderr).toContain(`verified connector 5.0.0 (${a.target}, sequence 1) from ${local}/beta`);
      expect(read(root, "usr/local/bin/connector").equals(readFileSync(beta.binaries[a.target as Target]!))).toBe(true);
      const settings = () =>
        readFileSync(env, "utf8")
          .split("\n")
          .filter((l) => /^CONNECTOR_(CHANNEL|MANIFEST_URL|PIN_VERSION)=/.test(l))
          .sort();
      expect(settings()).toEqual([
        "CONNECTOR_CHANNEL=beta",
        `CONNECTOR_MANIFEST_URL=${local}/beta/manifest.json`,
        "CONNECTOR_PIN_VERSION=5.0.0",
      ]);

      const again = await runInstaller(a.installer, ["--root", root]);
      expectOk(again);
      expect(again.stderr).toContain(`from ${local}/beta`);
      expect(again.stderr).toContain("unchanged: connector 5.0.0 is installed");

      const back = await runInstaller(a.installer, [
        "--root",
        root,
        "--channel",
        "stable",
        "--base-url",
        server.baseUrl,
        "--version",
        "1.2.0",
        "--no-proxy",
        "127.0.0.1",
      ]);
      expectOk(back);
      expect(settings()).toEqual(["CONNECTOR_PIN_VERSION=1.2.0"]);
    },
  );

  step(
    "--uninstall removes the binaries, units and /etc/connector and keeps the state dir; --purge removes that too; neither downloads",
    async () => {
      mkdirSync(join(root, "var/lib/connector/identity"), { recursive: true });
      writeFileSync(join(root, "var/lib/connector/identity/identity.json"), "{}\n");
      const counter = startCountingServer();
      try {
        const uninstall = await runInstaller(a.installer, ["--root", root, "--uninstall", "--base-url", counter.url]);
        expectOk(uninstall);
        expect([...snapshot(root).keys()].filter((p) => snapshot(root).get(p)!.type !== "dir")).toEqual([
          "var/lib/connector/identity/identity.json",
        ]);
        expect(snapshot(root).has("etc/connector")).toBe(false);
        expect(uninstall.stderr).toContain("kept /var/lib/connector");

        const purge = await runInstaller(a.installer, ["--root", root, "--purge", "--base-url", counter.url]);
        expectOk(purge);
        expect(snapshot(root).has("var/lib/connector")).toBe(false);
        expect(purge.stderr).toContain("install.sh: purged");
        expect(counter.requests).toBe(0);
      } finally {
        counter.stop();
      }
    },
  );
});

describe("install.sh baked by the test", () => {
  step("installs from a release host given by --base-url when the script names none", async () => {
    const script = bakeInstallerCopy(join(work, "unbaked-url.sh"), { rootSpkis: keys.rootSpkis });
    const root = join(work, "root-base-url");
    mkdirSync(root);
    const run = await runInstaller(script, ["--root", root, "--base-url", server.baseUrl, "--version", "1.2.0"]);
    expectOk(run);
    expect(read(root, "etc/connector/connector.env").toString()).toContain(
      `\nCONNECTOR_MANIFEST_URL=${server.baseUrl}/stable/manifest.json\n`,
    );
  });
});
