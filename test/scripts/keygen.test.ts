import { afterAll, describe, expect, test } from "bun:test";
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keyIdOf, spkiBase64OfPem } from "../../src/upgrade/format.ts";

const ROOT = join(import.meta.dir, "..", "..");
const work = mkdtempSync(join(tmpdir(), "keygen-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function keygen(...args: string[]) {
  const result = Bun.spawnSync([process.execPath, "run", "keygen", "--", ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

describe("bun run keygen", () => {
  test("writes a 0600 PKCS#8 private key and its SPKI public key in a new 0700 dir, and prints the key id", () => {
    const dir = join(work, "new", "keys");
    const result = keygen("--out", dir, "--name", "root-1");
    expect(result.stderr).not.toContain("keygen:");
    expect(result.code).toBe(0);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const keyPem = readFileSync(join(dir, "root-1.key"), "utf8");
    const pubPem = readFileSync(join(dir, "root-1.pub"), "utf8");
    expect(statSync(join(dir, "root-1.key")).mode & 0o777).toBe(0o600);
    expect(keyPem).toStartWith("-----BEGIN PRIVATE KEY-----");
    expect(pubPem).toStartWith("-----BEGIN PUBLIC KEY-----");
    const priv = createPrivateKey(keyPem);
    expect(priv.asymmetricKeyType).toBe("ed25519");
    // The pair belongs together: a signature by the .key verifies with the .pub.
    const message = Buffer.from("pair");
    expect(verify(null, message, createPublicKey(pubPem), sign(null, message, priv))).toBe(true);
    expect(result.stdout).toContain(`key id ${keyIdOf(spkiBase64OfPem(pubPem))}`);
  });

  test("refuses to overwrite an existing key or public key, leaving both untouched", () => {
    const dir = join(work, "exists");
    expect(keygen("--out", dir, "--name", "release").code).toBe(0);
    const before = readFileSync(join(dir, "release.key"), "utf8");
    const again = keygen("--out", dir, "--name", "release");
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists");
    expect(readFileSync(join(dir, "release.key"), "utf8")).toBe(before);

    writeFileSync(join(dir, "orphan.pub"), "not mine");
    const orphan = keygen("--out", dir, "--name", "orphan");
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toContain("orphan.pub already exists");
    expect(() => statSync(join(dir, "orphan.key"))).toThrow();
  });

  test.each([
    [["--name", "x"], "--out and --name are required"],
    [["--out", join(work, "a")], "--out and --name are required"],
    [["--out", join(work, "b"), "--name", "../evil"], "invalid key name"],
    [["--out", join(work, "c"), "--name", "x", "--force"], "Unknown option"],
  ])("bad arguments %p exit 2 with a clear message", (args, message) => {
    const result = keygen(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain("usage: bun run keygen");
  });
});
