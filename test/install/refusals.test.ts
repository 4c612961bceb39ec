/**
 * What install.sh refuses, and that a refusal installs NOTHING (the --root tree stays empty): every
 * broken link of the signature chain (exit 4), a release without this host's build (exit 3) and a
 * failed download (exit 5). Releases are hand-made (test/support/release-fixture.ts), one channel per
 * case on one reference release server; the misbehaviour modes are the server's own attacks.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget } from "../../build.ts";
import { TARGETS, type Target } from "../../src/upgrade/format.ts";
import { silentLog } from "../cloud/test-client.ts";
import { startReleaseServer, type ReleaseServer } from "../cloud/releases/server.ts";
import type { MisbehaviourMode } from "../cloud/releases/misbehaviour.ts";
import { bakeInstallerCopy, closedPort, describeRun, runInstaller, snapshot } from "../support/installer.ts";
import {
  fakeBinary,
  makeFakeKeys,
  signBytes,
  writeFakeRelease,
  writeKeyDir,
  type FakeReleaseOptions,
} from "../support/release-fixture.ts";

const work = mkdtempSync(join(tmpdir(), "install-refusals-"));
const keys = makeFakeKeys();
const target = hostTarget();
let server: ReleaseServer;
let script: string;
let failed = false;

beforeAll(async () => {
  mkdirSync(join(work, "rel"));
  server = await startReleaseServer({
    dir: join(work, "rel"),
    signingKeysDir: writeKeyDir(join(work, "keys"), keys),
    log: silentLog,
  });
  script = bakeInstallerCopy(join(work, "install.sh"), {
    rootSpkis: keys.roots.map((r) => r.publicKey),
    baseUrl: server.baseUrl,
  });
});

afterAll(async () => {
  await server?.stop();
  if (failed) console.error(`install refusal test failed: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

/** A release of its own channel (named like the case) on the server. */
function publish(channel: string, options: Partial<FakeReleaseOptions> = {}): string {
  const dir = join(work, "rel", channel);
  writeFakeRelease({ dir, keys, version: "1.0.0", channel, sequence: 1, targets: [target], ...options });
  return dir;
}

/** install.sh --channel CHANNEL into a fresh root: the exit code and message expected, and nothing written. */
async function expectRefused(
  channel: string,
  code: number,
  message: string | RegExp,
  extra: string[] = [],
): Promise<string> {
  const root = join(work, `root-${channel}`);
  mkdirSync(root);
  try {
    const run = await runInstaller(script, ["--root", root, "--channel", channel, ...extra]);
    expect(run.code, describeRun(run)).toBe(code);
    if (typeof message === "string") expect(run.stderr).toContain(message);
    else expect(run.stderr).toMatch(message);
    for (const line of run.stderr.trim().split("\n")) expect(line).toStartWith("install.sh: ");
    expect([...snapshot(root).keys()]).toEqual([]);
    return run.stderr;
  } catch (err) {
    failed = true;
    throw err;
  }
}

async function misbehaving(channel: string, mode: MisbehaviourMode): Promise<void> {
  publish(channel);
  server.misbehave(mode, channel);
}

describe("install.sh refuses, installing nothing", () => {
  test("the genuine release of the same kind installs (the cases below differ from it in one thing)", async () => {
    publish("genuine");
    const root = join(work, "root-genuine");
    mkdirSync(root);
    const run = await runInstaller(script, ["--root", root, "--channel", "genuine"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(snapshot(root).get("usr/local/bin/connector")?.mode).toBe(0o755);
  });

  test("a manifest with a byte flipped after signing: exit 4", async () => {
    const dir = publish("tampered");
    const manifest = readFileSync(join(dir, "manifest.json"));
    const at = manifest.indexOf('"version": "1.0.0"') + '"version": "1.0.'.length;
    manifest[at] = manifest[at]! ^ 1; // 1.0.0 -> 1.0.1
    writeFileSync(join(dir, "manifest.json"), manifest);
    await expectRefused("tampered", 4, "the manifest's signature by key");
  });

  test("a binary that is not the signed one (wrong-hash): exit 4", async () => {
    await misbehaving("wrong-hash", "wrong-hash");
    await expectRefused("wrong-hash", 4, "does not have the SHA-256 its signed manifest says");
  });

  test("a manifest signed by a key the key set does not list (unknown-key): exit 4", async () => {
    await misbehaving("unknown-key", "unknown-key");
    await expectRefused(
      "unknown-key",
      4,
      /the manifest is signed by key [0-9a-f]{16}, which the release-key set does not list/,
    );
  });

  test("a key set not signed by the baked roots (unvouched-key): exit 4", async () => {
    await misbehaving("unvouched-key", "unvouched-key");
    await expectRefused(
      "unvouched-key",
      4,
      "the release-key set carries 0 valid signature(s) by the release roots; 2 are needed",
    );
  });

  test("a key set signed by one root only: exit 4", async () => {
    publish("one-root", { signingRoots: [keys.roots[0]!] });
    await expectRefused("one-root", 4, "carries 1 valid signature(s)");
  });

  test("an expired manifest (expired-manifest): exit 4", async () => {
    await misbehaving("expired-manifest", "expired-manifest");
    await expectRefused("expired-manifest", 4, /the manifest expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
  });

  test("a key set of another product, signed by the roots: exit 4", async () => {
    const dir = publish("other-product");
    const keyset = readFileSync(join(dir, "release-keys.json"), "utf8").replace(
      '"product": "connector"',
      '"product": "gateway"',
    );
    writeFileSync(join(dir, "release-keys.json"), keyset);
    for (const root of keys.roots)
      writeFileSync(join(dir, `release-keys.json.${root.id}.sig`), signBytes(root, keyset));
    await expectRefused("other-product", 4, "the release-key set is not the connector's: refused");
  });

  test("an expired key set: exit 4", async () => {
    publish("expired-keyset", { keysetExpiresInSeconds: -60 });
    await expectRefused("expired-keyset", 4, "the release-key set expired at");
  });

  test("a signed manifest of another channel: exit 4", async () => {
    // /r/<dir>/ serves a directory as it is: channel "stable" asked for under the name "elsewhere".
    mkdirSync(join(work, "other"));
    writeFakeRelease({
      dir: join(work, "other", "elsewhere"),
      keys,
      version: "1.0.0",
      channel: "stable",
      sequence: 1,
      targets: [target],
    });
    const other = await startReleaseServer({ dir: join(work, "other"), log: silentLog });
    try {
      await expectRefused("elsewhere", 4, 'the manifest is for channel "stable", not "elsewhere"', [
        "--base-url",
        `${other.baseUrl}/r`,
      ]);
    } finally {
      await other.stop();
    }
  });

  test("a binary that does not run here: exit 4", async () => {
    publish("not-runnable", {
      binary: () => Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0xde, 0xad, 0xbe, 0xef]),
    });
    await expectRefused("not-runnable", 4, "the downloaded binary does not run here as connector 1.0.0");
  });

  test("a binary that says it is another version: exit 4", async () => {
    publish("other-version", { binary: (t) => fakeBinary("9.9.9", t) });
    await expectRefused("other-version", 4, 'its --version said "connector 9.9.9 (commit fake');
  });

  test("a binary built for another target: exit 4", async () => {
    const elsewhere = TARGETS.find((t) => t !== target)!;
    publish("other-target", { binary: () => fakeBinary("1.0.0", elsewhere) });
    await expectRefused("other-target", 4, `target ${elsewhere})"`);
  });

  test("a release without this host's build: exit 3 naming the target and the release's targets", async () => {
    // Not the host's target, and not the baseline build an x64 host with AVX2 would fall back to.
    const others = TARGETS.filter((t): t is Target => t !== target && t !== "linux-x64-baseline");
    publish("no-build", { targets: others });
    await expectRefused(
      "no-build",
      3,
      `has no build for this host (target ${target === "linux-x64" ? "linux-x64-baseline" : target}); it offers: ${others.join(" ")}`,
    );
  });

  test("a binary body that does not end (endless-body, no Content-Length): cut one byte past the signed size, exit 4", async () => {
    await misbehaving("endless-body", "endless-body");
    await expectRefused("endless-body", 4, /connector-[a-z0-9-]+ is larger than \d+ bytes: refused/);
  });

  test("a binary cut short (truncated-body): exit 5", async () => {
    await misbehaving("truncated-body", "truncated-body");
    await expectRefused("truncated-body", 5, "download of");
  });

  test("an unreachable release host: exit 5", async () => {
    await expectRefused(
      "unreachable",
      5,
      /download of http:\/\/127\.0\.0\.1:\d+\/unreachable\/manifest\.json failed \(curl exit 7/,
      ["--base-url", `http://127.0.0.1:${closedPort()}`],
    );
  });

  test("a channel the host does not have (404): exit 5", async () => {
    await expectRefused("missing", 5, "curl exit 22");
  });
});
