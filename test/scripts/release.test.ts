import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget } from "../../build.ts";
import { generateKey } from "../../scripts/keygen.ts";
import { KeysetSchema, ManifestSchema } from "../../src/upgrade/format.ts";
import * as v from "valibot";
import { makeKeys, type ReleaseKeys } from "../support/release-keys.ts";
import { buildRelease, type BuiltRelease } from "../support/releases.ts";

const ROOT = join(import.meta.dir, "..", "..");
const work = mkdtempSync(join(tmpdir(), "release-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const BASE_URL = "http://127.0.0.1:9/releases";
const EPOCH = Math.floor(Date.now() / 1000) - 3600;
const keys: ReleaseKeys = makeKeys(join(work, "keys"));
let rel: BuiltRelease;

/** `openssl pkeyutl -verify -rawin`: exactly what an installer with only openssl can check. */
function opensslVerifies(pub: string, data: string, sig: string): boolean {
  const result = Bun.spawnSync(
    ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sig],
    { stdout: "pipe", stderr: "pipe" },
  );
  return result.exitCode === 0 && result.stdout.toString().includes("Signature Verified Successfully");
}

function release(...args: string[]) {
  const result = Bun.spawnSync([process.execPath, "run", "release", "--", ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: result.exitCode, stderr: result.stderr.toString() };
}

describe("bun run release", () => {
  beforeAll(async () => {
    rel = await buildRelease({
      keys,
      version: "2.3.4-rc.1",
      channel: "beta",
      sequence: 7,
      out: join(work, "rel", "a"),
      baseUrl: BASE_URL,
      expiresIn: 86_400,
      keysetExpiresIn: 172_800,
      rollout: 25,
      sourceDateEpoch: EPOCH,
    });
  }, 300_000);

  test("openssl verifies the key set with every root and the manifest with the release key; a changed byte does not", () => {
    expect(rel.keysetSignatures).toHaveLength(2);
    keys.rootPubs.forEach((pub, i) => expect(opensslVerifies(pub, rel.keyset, rel.keysetSignatures[i]!)).toBe(true));
    expect(opensslVerifies(keys.releasePub, rel.manifest, rel.manifestSignature)).toBe(true);
    for (const sig of [rel.manifestSignature, ...rel.keysetSignatures]) expect(statSync(sig).size).toBe(64);
    const tampered = join(work, "tampered.json");
    writeFileSync(tampered, readFileSync(rel.manifest, "utf8").replace('"sequence": 7', '"sequence": 8'));
    expect(opensslVerifies(keys.releasePub, tampered, rel.manifestSignature)).toBe(false);
    expect(opensslVerifies(keys.rootPubs[0]!, rel.manifest, rel.manifestSignature)).toBe(false);
  });

  test("the manifest and key set say what was asked, with SOURCE_DATE_EPOCH as now", () => {
    const manifest = v.parse(ManifestSchema, JSON.parse(readFileSync(rel.manifest, "utf8")));
    const released = new Date(EPOCH * 1000).toISOString().replace(/\.000Z$/, "Z");
    expect(manifest).toMatchObject({
      channel: "beta",
      version: "2.3.4-rc.1",
      sequence: 7,
      rollout: 25,
      keyId: keys.releaseKeyId,
      released,
    });
    expect(Date.parse(manifest.expires) - Date.parse(manifest.released)).toBe(86_400_000);
    expect(Object.keys(manifest.targets)).toEqual([hostTarget()]);
    const keyset = v.parse(KeysetSchema, JSON.parse(readFileSync(rel.keyset, "utf8")));
    expect(keyset.issued).toBe(released);
    expect(Date.parse(keyset.expires) - Date.parse(keyset.issued)).toBe(172_800_000);
    expect(keyset.keys).toEqual([
      { id: keys.releaseKeyId, publicKey: readFileSync(keys.releasePub, "utf8").split("\n")[1]! },
    ]);
  });

  test("the binary's size and SHA-256 match the manifest; it is 0755 and reports the version and host target", () => {
    const target = JSON.parse(readFileSync(rel.manifest, "utf8")).targets[rel.target];
    const bytes = readFileSync(rel.binary);
    expect(target.url).toBe(`connector-${rel.target}`);
    expect(target.size).toBe(bytes.length);
    expect(target.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(statSync(rel.binary).mode & 0o777).toBe(0o755);
    const version = Bun.spawnSync([rel.binary, "--version"], { env: {} }).stdout.toString();
    expect(version).toMatch(new RegExp(`^connector 2\\.3\\.4-rc\\.1 \\(.*target ${rel.target}\\)`));
  });

  test("the binary embeds every root and the base URL", () => {
    const bytes = readFileSync(rel.binary);
    for (const spki of keys.rootSpkis) expect(bytes.includes(spki)).toBe(true);
    expect(bytes.includes(BASE_URL)).toBe(true);
  });

  test("install.sh carries the roots, base URL and units, stays shellcheck-clean and reads its release host", () => {
    const text = readFileSync(rel.installer, "utf8");
    for (const pub of keys.rootPubs) expect(text).toContain(readFileSync(pub, "utf8").trim());
    expect(text).toContain(`RELEASE_BASE_URL='${BASE_URL}'`);
    expect(text).toContain("RELEASE_CHANNEL='beta'");
    expect(text).toContain(readFileSync(join(ROOT, "packaging", "systemd", "connector.service"), "utf8"));
    expect(Bun.spawnSync(["shellcheck", rel.installer]).exitCode).toBe(0);
    // Always --root in tests (files only): the baked host (port 9) answers nothing, so nothing is written.
    const root = join(work, "install-root");
    mkdirSync(root);
    const run = Bun.spawnSync(["bash", rel.installer, "--root", root], { stdout: "pipe", stderr: "pipe" });
    expect(run.exitCode).toBe(5);
    expect(run.stderr.toString()).toContain(`install.sh: download of ${BASE_URL}/beta/manifest.json failed`);
    expect(readdirSync(root)).toEqual([]);
    // The baked roots are the PEMs openssl reads (an installer can verify the key set with them).
    const baked = /ROOT_PUBLIC_KEYS=\$\(cat <<'ROOTS'\n([\s\S]*?)\nROOTS\n\)/.exec(text)![1]!;
    const first = join(work, "baked-root.pub");
    writeFileSync(first, `${baked.split("-----END PUBLIC KEY-----")[0]}-----END PUBLIC KEY-----\n`);
    expect(rel.keysetSignatures.some((sig) => opensslVerifies(first, rel.keyset, sig))).toBe(true);
  }, 120_000); // shellcheck and bash: 8 s under stress-ng, so the 30 s default is too close

  test("the release directory holds exactly the release files, nothing half-written beside it", () => {
    const names = readdirSync(rel.out).sort();
    expect(names).toEqual(
      [
        `connector-${rel.target}`,
        "install.sh",
        "manifest.json",
        "manifest.json.sig",
        "release-keys.json",
        ...keys.rootIds.map((id) => `release-keys.json.${id}.sig`),
      ].sort(),
    );
    expect(readdirSync(join(work, "rel"))).toEqual(["a"]);
  });
});

describe("bun run release refuses (exit 2, nothing written)", () => {
  const common = (out: string) => [
    "--version",
    "1.0.0",
    "--channel",
    "stable",
    "--sequence",
    "1",
    "--out",
    out,
    "--targets",
    "host",
  ];

  test("a key directory with one root, two release keys, or no release key", () => {
    const oneRoot = join(work, "one-root");
    for (const name of ["root-1", "release"]) generateKey(oneRoot, name);
    expect(release("--keys", oneRoot, ...common(join(work, "o1"))).stderr).toContain("holds 1 distinct trust root(s)");

    const twoRelease = join(work, "two-release");
    for (const name of ["root-1", "root-2", "release", "release-2"]) generateKey(twoRelease, name);
    const r = release("--keys", twoRelease, ...common(join(work, "o2")));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("exactly one release key, release.key (found release-2.key, release.key)");

    const noRelease = join(work, "no-release");
    for (const name of ["root-1", "root-2"]) generateKey(noRelease, name);
    expect(release("--keys", noRelease, ...common(join(work, "o3"))).stderr).toContain("(found none)");
    for (const out of ["o1", "o2", "o3"]) expect(() => statSync(join(work, out))).toThrow();
  });

  test.each([
    [["--version", "1.0"], 'invalid version "1.0"'],
    [["--channel", "Stable"], 'invalid channel "Stable"'],
    [["--sequence", "0"], "--sequence must be a whole number from 1"],
    [["--sequence", "1.5"], "--sequence must be a whole number"],
    [["--rollout", "101"], "--rollout must be a whole number from 0 to 100"],
    [["--base-url", "file:///tmp"], "must be http(s)"],
    [["--targets", "arm"], "--targets must be host or all"],
  ])("bad argument %p", (override, message) => {
    const args = common(join(work, "bad"));
    const at = args.indexOf(override[0]!);
    if (at >= 0) args.splice(at, 2, ...override);
    else args.push(...override);
    const r = release("--keys", keys.dir, ...args);
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(2);
    expect(() => statSync(join(work, "bad"))).toThrow();
  });

  test("a missing required argument and a non-empty OUT", () => {
    expect(release("--keys", keys.dir, "--version", "1.0.0").stderr).toContain("--channel is required");
    const full = join(work, "full");
    mkdirSync(full);
    writeFileSync(join(full, "old-manifest.json"), "{}");
    const r = release("--keys", keys.dir, ...common(full));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not empty");
    expect(readdirSync(full)).toEqual(["old-manifest.json"]);
  });
});
