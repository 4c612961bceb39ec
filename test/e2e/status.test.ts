/**
 * `connector status` end to end without a daemon: the compiled binary reads the state dir and
 * reports "not-enrolled" (exit 3) or "not-running" (exit 2), as a block or as JSON.
 */
import { afterAll, describe, expect } from "bun:test";
import { test } from "../support/e2e.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IdentityStore } from "../../src/identity/store.ts";
import { connectorBinary, runConnector } from "../support/binary.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function stateDir(): string {
  const root = mkdtempSync(join(tmpdir(), "e2e-status-"));
  roots.push(root);
  return join(root, "state");
}

function enrolledStateDir(): string {
  const dir = stateDir();
  new IdentityStore(dir).save(makeIdentity("conn-e2e"), { replace: false });
  return dir;
}

describe("connector status without a daemon (compiled binary)", () => {
  test("binary exists", () => {
    expect(connectorBinary()).toEndWith("dist/connector");
  });

  test("not enrolled: exit 44, JSON with the status fields", async () => {
    const result = await runConnector(["status", "--state-dir", stateDir(), "--json", "--log-format", "json"]);
    expect(result.exitCode).toBe(44);
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({
      state: "not-enrolled",
      connectorId: null,
      tunnels: [],
      streams: { created: 0, closed: 0, active: 0 },
      bytes: { toCloud: 0, fromCloud: 0 },
      apps: [],
    });
    expect(typeof json.version).toBe("string");
    expect(json.certificate).toEqual({ notAfter: null });
  });

  test("enrolled, no daemon: exit 42, the readable block names the connector and its certificate expiry", async () => {
    const result = await runConnector(["status", "--state-dir", enrolledStateDir(), "--log-format", "json"]);
    expect(result.exitCode).toBe(42);
    expect(result.stdout).toContain('connector      conn-e2e "host-conn-e2e" (group group-a)');
    expect(result.stdout).toContain("state          not-running");
    expect(result.stdout).toMatch(/certificate {4}expires \d{4}-\d{2}-\d{2} \(in \d+ days\)/);
  });

  test("a stale admin.sock (daemon killed) still means not-running", async () => {
    const dir = enrolledStateDir();
    writeFileSync(join(dir, "admin.sock"), "");
    const result = await runConnector(["status", "--state-dir", dir, "--json", "--log-format", "json"]);
    expect(result.exitCode).toBe(42);
    expect(JSON.parse(result.stdout)).toMatchObject({
      state: "not-running",
      connectorId: "conn-e2e",
      group: "group-a",
    });
  });

  test("the JSON never contains key material", async () => {
    const result = await runConnector([
      "status",
      "--state-dir",
      enrolledStateDir(),
      "--json",
      "--log-level",
      "trace",
      "--log-format",
      "json",
    ]);
    expect(result.stdout + result.stderr).not.toContain("PRIVATE KEY");
  });
});
