import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { collectStatus, httpDaemonQuery, offlineSnapshot } from "../../src/status/collect.ts";
import { STATUS_EXIT, StatusSnapshotSchema, type StatusSnapshot } from "../../src/status/schema.ts";
import { IdentityStore } from "../../src/identity/store.ts";
import { takeDaemonLock } from "../../src/state/daemon-lock.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const IDENTITY = makeIdentity("conn-42");

let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "status-"));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

describe("offline status", () => {
  test("no identity: not-enrolled, exit 3, the shape with empty counters", async () => {
    const snapshot = await collectStatus(stateDir);
    expect(snapshot.state).toBe("not-enrolled");
    expect(STATUS_EXIT[snapshot.state]).toBe(44);
    expect(snapshot).toMatchObject({
      connectorId: null,
      certificate: { notAfter: null },
      tunnels: [],
      streams: { created: 0, closed: 0, active: 0 },
      bytes: { toCloud: 0, fromCloud: 0 },
      apps: [],
    });
    expect(v.safeParse(StatusSnapshotSchema, snapshot).success).toBe(true);
  });

  test("an identity and no daemon: not-running, exit 2, with id, name, group and certificate expiry", async () => {
    new IdentityStore(stateDir).save(IDENTITY, { replace: false });
    const snapshot = await collectStatus(stateDir);
    expect(snapshot.state).toBe("not-running");
    expect(STATUS_EXIT[snapshot.state]).toBe(42);
    expect(snapshot.connectorId).toBe("conn-42");
    expect(snapshot.name).toBe("host-conn-42");
    expect(snapshot.group).toBe("group-a");
    expect(Date.parse(snapshot.certificate.notAfter!)).toBeGreaterThan(Date.now());
    expect(JSON.stringify(snapshot)).not.toContain("PRIVATE KEY");
  });

  test("reading status never writes to the state dir, even mid-recovery", async () => {
    new IdentityStore(stateDir).save(IDENTITY, { replace: false });
    // As after a crash between the two renames of enroll --force.
    const { renameSync } = await import("node:fs");
    renameSync(join(stateDir, "identity"), join(stateDir, ".identity.old"));
    const snapshot = await collectStatus(stateDir);
    expect(snapshot.connectorId).toBe("conn-42");
    expect(readdirSync(stateDir)).toEqual([".identity.old"]);
  });

  test("offlineSnapshot output validates against the schema the daemon will use", () => {
    for (const snapshot of [offlineSnapshot(undefined), offlineSnapshot(IDENTITY)]) {
      expect(v.safeParse(StatusSnapshotSchema, snapshot).success).toBe(true);
    }
  });
});

describe("admin socket", () => {
  test("an admin.sock that is not a live socket means not-running", async () => {
    new IdentityStore(stateDir).save(IDENTITY, { replace: false });
    writeFileSync(join(stateDir, "admin.sock"), "");
    expect((await collectStatus(stateDir)).state).toBe("not-running");
  });

  test("an admin.sock whose listener never answers means not-running, after the deadline", async () => {
    new IdentityStore(stateDir).save(IDENTITY, { replace: false });
    const silent = Bun.listen({ unix: join(stateDir, "admin.sock"), socket: { data() {} } });
    try {
      // No bound on the elapsed time (that measured the machine): a query that ignored its deadline would
      // hang here until the test's timeout.
      expect((await collectStatus(stateDir, { timeoutMs: 150 })).state).toBe("not-running");
    } finally {
      silent.stop(true);
    }
  });

  test("a silent admin socket while a daemon holds the state dir's lock is not-responding (exit 5), not not-running", async () => {
    new IdentityStore(stateDir).save(IDENTITY, { replace: false });
    const silent = Bun.listen({ unix: join(stateDir, "admin.sock"), socket: { data() {} } });
    const lock = await takeDaemonLock(stateDir);
    try {
      const snapshot = await collectStatus(stateDir, { timeoutMs: 150 });
      expect(snapshot.state).toBe("not-responding");
      expect(STATUS_EXIT[snapshot.state]).toBe(43);
      expect(v.safeParse(StatusSnapshotSchema, snapshot).success).toBe(true);
      // No socket at all (e.g. it could not be created) with the lock held: the same.
      silent.stop(true);
      rmSync(join(stateDir, "admin.sock"), { force: true });
      expect((await collectStatus(stateDir)).state).toBe("not-responding");
    } finally {
      silent.stop(true);
      lock.release();
    }
    expect((await collectStatus(stateDir)).state).toBe("not-running");
  });

  test("a daemon answering GET /v1/status gives the live snapshot", async () => {
    const live: StatusSnapshot = {
      ...offlineSnapshot(IDENTITY),
      state: "degraded",
      tunnels: [
        { gateway: "gw-1", state: "up", since: "2026-01-01T00:00:00.000Z", rttMs: 3 },
        { gateway: "gw-2", state: "connecting", since: "2026-01-01T00:00:00.000Z", rttMs: null },
      ],
    };
    const server = Bun.serve({
      unix: join(stateDir, "admin.sock"),
      fetch: (req) =>
        new URL(req.url).pathname === "/v1/status" ? Response.json(live) : new Response("", { status: 404 }),
    });
    try {
      const snapshot = await collectStatus(stateDir);
      expect(snapshot.state).toBe("degraded");
      expect(snapshot.tunnels).toHaveLength(2);
      expect(STATUS_EXIT[snapshot.state]).toBe(40);
    } finally {
      server.stop(true);
    }
  });

  test("a daemon answering something else is an error, not a made-up state", async () => {
    const server = Bun.serve({ unix: join(stateDir, "admin.sock"), fetch: () => Response.json({ state: "great" }) });
    try {
      await expect(httpDaemonQuery()(join(stateDir, "admin.sock"))).rejects.toMatchObject({
        code: "STATUS_UNAVAILABLE",
      });
    } finally {
      server.stop(true);
    }
  });
});

describe("STATUS_EXIT", () => {
  test("maps every state to the exit code", () => {
    expect(STATUS_EXIT).toEqual({
      connected: 0,
      degraded: 40,
      disconnected: 41,
      "not-running": 42,
      "not-responding": 43,
      "not-enrolled": 44,
      revoked: 45,
    });
  });
});
