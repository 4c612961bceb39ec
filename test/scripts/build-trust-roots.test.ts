import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary, checkReleaseBaseUrl, DEFAULT_TRUST_ROOTS_DIR, hostTarget, loadTrustRoots } from "../../build.ts";
import { keyIdOf, spkiBase64OfPem } from "../../src/upgrade/format.ts";
import { makeKeys } from "../support/release-keys.ts";

const ROOT = join(import.meta.dir, "..", "..");
/** A compile takes seconds; on a loaded 2-core machine, many more. */
const BUILD_TIMEOUT_MS = 180_000;
const work = mkdtempSync(join(tmpdir(), "build-roots-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function build(...args: string[]) {
  const result = Bun.spawnSync([process.execPath, "build.ts", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

function rootsDir(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const ed25519Pub = () => generateKeyPairSync("ed25519").publicKey.export({ format: "pem", type: "spki" }).toString();

describe("build.ts trust roots", () => {
  test("the project's committed roots are two distinct Ed25519 keys", () => {
    expect(loadTrustRoots(DEFAULT_TRUST_ROOTS_DIR)).toHaveLength(2);
  });

  test("roots are every *.pub, sorted, duplicates counted once; other files are ignored", () => {
    const a = ed25519Pub();
    const b = ed25519Pub();
    const dir = rootsDir("sorted", { "z.pub": a, "a.pub": b, "copy-of-z.pub": a, README: "not a key" });
    expect(loadTrustRoots(dir)).toEqual([spkiBase64OfPem(a), spkiBase64OfPem(b)].sort());
  });

  test("fewer than two distinct roots fails the build before compiling, naming the directory", () => {
    const key = ed25519Pub();
    const one = rootsDir("one", { "root-1.pub": key, "root-1-again.pub": key });
    const out = join(work, "never-built");
    const result = build("--host", "--out", out, "--trust-roots", one);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${one} holds 1 distinct trust root(s); a build needs at least 2`);
    expect(() => readFileSync(out)).toThrow();
    expect(build("--host", "--out", out, "--trust-roots", rootsDir("empty", {})).stderr).toContain("holds 0 distinct");
  });

  test("a non-Ed25519 .pub, a non-key .pub and a missing directory fail naming the file", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .publicKey.export({ format: "pem", type: "spki" })
      .toString();
    const withRsa = rootsDir("rsa", { "root-1.pub": ed25519Pub(), "root-2.pub": ed25519Pub(), "root-3.pub": rsa });
    const result = build("--host", "--out", join(work, "x"), "--trust-roots", withRsa);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`trust root ${join(withRsa, "root-3.pub")} is not an Ed25519 public key`);
    const garbage = rootsDir("garbage", {
      "root-1.pub": ed25519Pub(),
      "root-2.pub": "-----BEGIN PUBLIC KEY-----\nnope\n",
    });
    expect(() => loadTrustRoots(garbage)).toThrow(`trust root ${join(garbage, "root-2.pub")} is not a PEM public key`);
    expect(() => loadTrustRoots(join(work, "absent"))).toThrow(
      `trust roots directory ${join(work, "absent")} is unreadable`,
    );
  });

  test("bad --version, --release-base-url, --targets and --out fail with exit 2", () => {
    expect(build("--host", "--version", "1.2").stderr).toContain('invalid version "1.2"');
    expect(build("--host", "--version", "1.2.3+build").code).toBe(2);
    expect(build("--host", "--release-base-url", "ftp://example.test/").stderr).toContain("must be http(s)");
    expect(build("--targets", "some").stderr).toContain("--targets must be host or all");
    expect(build("--out", join(work, "y")).stderr).toContain("use it with --host");
    expect(() => checkReleaseBaseUrl("https://user:pw@example.test/r")).toThrow("must not carry credentials");
    expect(checkReleaseBaseUrl("https://example.test/releases/")).toBe("https://example.test/releases");
    expect(() => checkReleaseBaseUrl("https://example.test/r'$(id)'")).toThrow("holds a quote");
  });

  test(
    "a host build of the connector carries the given version and target",
    () => {
      const out = join(work, "bin", "connector");
      const result = build("--host", "--out", out, "--version", "3.4.5-rc.1");
      expect(result.code).toBe(0);
      const version = Bun.spawnSync([out, "--version"], { env: { PATH: "/usr/bin:/bin" } });
      expect(version.stdout.toString()).toMatch(/^connector 3\.4\.5-rc\.1 \(.*target linux-/);
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    "the roots and base URL reach src/upgrade/trust-roots.ts in a compiled binary",
    async () => {
      const keys = makeKeys(join(work, "keys"));
      const out = join(work, "bin", "probe");
      await buildBinary({
        target: hostTarget(),
        outfile: out,
        trustRoots: [...keys.rootSpkis].reverse(),
        releaseBaseUrl: "http://127.0.0.1:9/rel/",
        entry: join(ROOT, "test/support/trust-roots-probe.ts"),
      });
      const printed = JSON.parse(Bun.spawnSync([out], { env: { PATH: "/usr/bin:/bin" } }).stdout.toString());
      const sorted = [...keys.rootSpkis].sort();
      expect(printed).toEqual({
        trustedRoots: sorted,
        rootIds: sorted.map(keyIdOf),
        releaseBaseUrl: "http://127.0.0.1:9/rel",
      });
      const bytes = readFileSync(out);
      for (const spki of keys.rootSpkis) expect(bytes.includes(spki)).toBe(true);
    },
    BUILD_TIMEOUT_MS,
  );

  test("a probe run from source has no roots and no base URL", () => {
    const result = Bun.spawnSync([process.execPath, join(ROOT, "test/support/trust-roots-probe.ts")], {
      env: { PATH: "/usr/bin:/bin", CONNECTOR_RELEASE_BASE_URL: "http://evil.test" },
    });
    expect(JSON.parse(result.stdout.toString())).toEqual({ trustedRoots: [], rootIds: [], releaseBaseUrl: null });
  });
});
