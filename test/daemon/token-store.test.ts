import { afterEach, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TOKEN_FILE, TokenStore } from "../../src/daemon/token-store.ts";

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "token-store-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

test("a kept token comes back for its certificate only, from a 0600 file, with its life left", () => {
  const dir = stateDir();
  const store = new TokenStore(dir);
  const expiresAt = new Date("2026-12-02T12:10:00Z");
  store.save("CERT-A", "v1.claims.sig", expiresAt);
  expect(statSync(join(dir, TOKEN_FILE)).mode & 0o777).toBe(0o600);
  const seed = store.seedFor("CERT-A", new Date("2026-12-02T12:00:00Z"));
  expect(seed.found).toBe(true);
  if (seed.found) {
    expect(seed.seed.value.reveal()).toBe("v1.claims.sig");
    expect(seed.seed.lifeLeftMs).toBe(600_000);
    expect(String(seed.seed.value)).toBe("[redacted]");
  }
  expect(store.load("CERT-B")).toEqual({ found: false, why: `${TOKEN_FILE} is for another certificate` });
});

test("a missing, broken or oversized file is ignored with a reason, never thrown", () => {
  const dir = stateDir();
  const store = new TokenStore(dir);
  expect(store.load("C")).toEqual({ found: false, why: `no ${TOKEN_FILE} yet` });
  writeFileSync(join(dir, TOKEN_FILE), "{not json");
  expect(store.load("C")).toEqual({ found: false, why: `${TOKEN_FILE} is not JSON` });
  writeFileSync(join(dir, TOKEN_FILE), JSON.stringify({ token: "x" }));
  expect(store.load("C")).toEqual({ found: false, why: `${TOKEN_FILE} does not match its schema` });
  writeFileSync(join(dir, TOKEN_FILE), "x".repeat(20_000));
  expect(store.load("C").found).toBe(false);
});

test("an access-token.json planted as a symlink, owned by another user or writable by others is ignored, saying why", () => {
  const elsewhere = stateDir();
  new TokenStore(elsewhere).save("CERT-A", "v1.claims.sig", new Date("2026-12-02T12:10:00Z"));
  const dir = stateDir();
  const path = join(dir, TOKEN_FILE);
  symlinkSync(join(elsewhere, TOKEN_FILE), path);
  const viaLink = new TokenStore(dir).load("CERT-A");
  expect(viaLink.found).toBe(false);
  if (!viaLink.found) expect(viaLink.why).toContain("symbolic link");
  rmSync(path);
  new TokenStore(dir).save("CERT-A", "v1.claims.sig", new Date("2026-12-02T12:10:00Z"));
  chmodSync(path, 0o620);
  expect(new TokenStore(dir).load("CERT-A").found).toBe(false);
  if (process.geteuid?.() === 0) {
    chmodSync(path, 0o600);
    chownSync(path, 65534, 65534);
    expect(new TokenStore(dir).load("CERT-A").found).toBe(false);
  }
});

test("a stored token with characters a token never has (control, space, non-ASCII) is ignored, not offered to gateways", () => {
  const dir = stateDir();
  const store = new TokenStore(dir);
  for (const bad of ["v1.claims\r\nX-Injected: 1", "v1 claims.sig", "v1.cläims.sig", "v1.claims.sig\u0000"]) {
    store.save("CERT-A", bad, new Date("2026-12-02T12:10:00Z"));
    expect(store.load("CERT-A")).toEqual({ found: false, why: `${TOKEN_FILE} does not match its schema` });
  }
});
