import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import type { CatalogFetch, CatalogSource } from "../../src/apps/catalog.ts";
import { CatalogStore } from "../../src/apps/catalog-store.ts";
import type { Catalog } from "../../src/control/api.ts";
import {
  apiRejection,
  ConnectionRefusedError,
  ControlTimeoutError,
  TlsInspectionError,
} from "../../src/control/errors.ts";
import { CatalogRefresh } from "../../src/daemon/catalog-refresh.ts";
import { logEvents } from "../../src/daemon/event-log.ts";
import { type DaemonEvent, DaemonEvents } from "../../src/daemon/events.ts";
import { StatusModel } from "../../src/daemon/status-model.ts";
import { makeIdentity } from "../identity/fixtures.ts";
import { FakeClock } from "../support/fake-clock.ts";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

const identity = makeIdentity("conn-1");
const stored: Catalog = {
  version: "v-stored",
  apps: [{ name: "wiki", destinations: [{ host: "10.0.0.1", ports: "443" }], servers: [] }],
};
const fresh: Catalog = { version: "v-fresh", apps: [] };
const outage = () => new ConnectionRefusedError("cloud.example:443", "ECONNREFUSED");

/** A catalog source whose answers a test scripts, one per fetch (the last one repeats). */
function scriptedSource(answers: (() => CatalogFetch | Error)[]) {
  let calls = 0;
  const source = {
    async fetch(): Promise<CatalogFetch> {
      const answer = answers[Math.min(calls++, answers.length - 1)]!();
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { source: source as unknown as CatalogSource, calls: () => calls };
}

function setup(answers: (() => CatalogFetch | Error)[], options: { keep?: Catalog; keptFor?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "catalog-refresh-"));
  roots.push(dir);
  const catalogs = new CatalogStore(dir);
  if (options.keep) catalogs.save(options.keptFor ?? "conn-1", options.keep, new Date(Date.UTC(2025, 11, 31, 23)));
  const clock = new FakeClock();
  const abort = new AbortController();
  const status = new StatusModel(
    identity,
    () => ({}),
    () => clock.wallNow(),
  );
  const lines: { type: string; message: unknown }[] = [];
  const log = createConsola({
    level: 999,
    reporters: [{ log: (e) => void lines.push({ type: e.type, message: e.args[0] }) }],
  });
  // The daemon's event stream, logged as the daemon logs it.
  const events = new DaemonEvents();
  const told: DaemonEvent[] = [];
  events.subscribe((e) => void told.push(e));
  events.subscribe(logEvents({ log, summary: () => ({}) }));
  const changed: Catalog[] = [];
  // What the daemon's Revocation is told (revocation.ts); a second "revoked" answer changes nothing.
  const revocation = {
    revoked: false,
    confirmations: 0,
    confirmed() {
      this.confirmations++;
      this.revoked = true;
    },
    served() {
      this.revoked = false;
    },
  };
  const { source, calls } = scriptedSource(answers);
  const refresh = new CatalogRefresh({
    source,
    status,
    log,
    events,
    clock,
    signal: abort.signal,
    changed: (c) => void changed.push(c),
    revocation,
    store: { catalogs, connectorId: "conn-1" },
  });
  return {
    refresh,
    catalogs,
    clock,
    abort,
    status,
    lines,
    told,
    changed,
    calls,
    revoked: () => revocation.confirmations,
  };
}

describe("the first catalog during a control-plane outage", () => {
  for (const [name, err] of [
    ["refused", outage],
    ["timed out", () => new ControlTimeoutError("cloud.example:443", 15_000, undefined)],
    ["a 503", () => apiRejection(503, "UNAVAILABLE", "")],
  ] as const) {
    test(`${name}: the stored catalog is used at once, status says so, and fetching goes on until it answers`, async () => {
      const t = setup([err, err, () => ({ changed: true, catalog: fresh })], { keep: stored });
      expect(await t.refresh.first()).toEqual(stored);
      expect(t.status.snapshot().catalog).toEqual({
        source: "stored",
        version: "v-stored",
        fetchedAt: "2025-12-31T23:00:00.000Z",
      });
      expect(t.lines.some((l) => l.type === "warn" && String(l.message).includes("stored app catalog"))).toBe(true);
      for (let i = 0; i < 20 && t.changed.length === 0; i++) await t.clock.advance(60_000);
      expect(t.changed).toEqual([fresh]);
      expect(t.status.snapshot().catalog).toMatchObject({ source: "control-plane", version: "v-fresh" });
      const load = t.catalogs.load("conn-1");
      expect(load.found && load.stored.catalog).toEqual(fresh);
      const callsWhenServed = t.calls();
      await t.clock.advance(3_600_000); // no more background fetches once served (the daemon's poll is separate)
      expect(t.calls()).toBe(callsWhenServed);
      t.abort.abort();
    });
  }

  test("a catalog served by the control plane is kept for the next start", async () => {
    const t = setup([() => ({ changed: true, catalog: fresh })]);
    expect(await t.refresh.first()).toEqual(fresh);
    const load = t.catalogs.load("conn-1");
    expect(load.found && load.stored.catalog).toEqual(fresh);
    expect(t.status.snapshot().catalog).toMatchObject({ source: "control-plane", version: "v-fresh" });
  });

  const refusals: [string, () => Error][] = [
    ["CONNECTOR_REVOKED", () => apiRejection(403, "CONNECTOR_REVOKED", "revoked")],
    ["another 4xx", () => apiRejection(401, "UNAUTHORIZED", "")],
    ["a certificate the pinned CA did not sign", () => new TlsInspectionError("TLS_INSPECTION", "cloud.example", "no")],
  ];
  for (const [name, err] of refusals) {
    test(`${name} is not an outage: the stored catalog is not used`, async () => {
      const t = setup([err], { keep: stored });
      const first = t.refresh.first();
      await t.clock.advance(30 * 60_000);
      expect(t.calls()).toBeGreaterThanOrEqual(2);
      t.abort.abort();
      await t.clock.advance(0);
      expect(await first).toBeUndefined();
      expect(t.status.snapshot().catalog).toBeUndefined();
    });
  }

  test("a catalog kept for another connector is not used; the first fetch is waited for", async () => {
    const t = setup([outage, () => ({ changed: true, catalog: fresh })], { keep: stored, keptFor: "conn-0" });
    const first = t.refresh.first();
    await t.clock.advance(60_000);
    expect(await first).toEqual(fresh);
    expect(t.lines.some((l) => String(l.message).includes("no stored app catalog"))).toBe(true);
  });

  test("a revocation in the background after starting on the stored catalog is reported and ends the retries", async () => {
    const t = setup([outage, () => apiRejection(403, "CONNECTOR_REVOKED", "revoked")], { keep: stored });
    expect(await t.refresh.first()).toEqual(stored);
    for (let i = 0; i < 20 && t.revoked() === 0; i++) await t.clock.advance(60_000);
    expect(t.revoked()).toBe(1);
    const calls = t.calls();
    await t.clock.advance(3_600_000);
    expect(t.calls()).toBe(calls);
  });
});

describe("catalog events: each result once, as status and the log hear it", () => {
  const kinds = (t: ReturnType<typeof setup>) =>
    t.told.map((e) =>
      e.type !== "catalog"
        ? e.type
        : e.ok
          ? `${e.during} ${e.source} ${e.version} ${e.changed ? "changed" : "unchanged"}`
          : `${e.during} failed ${e.code}${e.revoked ? " revoked" : ""}`,
    );

  test("a failed first fetch, then a catalog, then a refresh answered 'not modified' and one that fails", async () => {
    const t = setup([
      outage,
      () => ({ changed: true, catalog: fresh }),
      () => ({ changed: false }),
      () => apiRejection(503, "UNAVAILABLE", ""),
    ]);
    const first = t.refresh.first();
    await t.clock.advance(60_000);
    expect(await first).toEqual(fresh);
    await t.refresh.refresh();
    await t.refresh.refresh();
    expect(kinds(t)).toEqual([
      "start failed CONNECTION_REFUSED",
      "start control-plane v-fresh changed",
      "refresh control-plane v-fresh unchanged",
      "refresh failed CONTROL_PLANE_ERROR",
    ]);
    expect(t.told[0]).toMatchObject({ retryInMs: expect.any(Number) });
    expect(t.told[1]).toMatchObject({ apps: 0 });
    expect(t.lines.map((l) => `${l.type} ${String(l.message)}`)).toEqual([
      "info no stored app catalog to start with",
      "error cannot fetch the app catalog",
      "info app catalog loaded",
      "debug app catalog unchanged",
      "warn catalog refresh failed; keeping the current one",
    ]);
  });

  test("the stored copy at start: one event with its age and the outage that made it needed", async () => {
    const t = setup([outage], { keep: stored });
    expect(await t.refresh.first()).toEqual(stored);
    expect(t.told[0]).toMatchObject({
      type: "catalog",
      ok: true,
      during: "start",
      source: "stored",
      version: "v-stored",
      code: "CONNECTION_REFUSED",
      ageSeconds: 3600,
    });
    t.abort.abort();
  });

  test("a revocation found by a refresh is told, and left to revocation.ts to log", async () => {
    const t = setup([
      () => ({ changed: true, catalog: fresh }),
      () => apiRejection(403, "CONNECTOR_REVOKED", "revoked"),
    ]);
    await t.refresh.first();
    await t.refresh.refresh();
    expect(kinds(t).at(-1)).toBe("refresh failed REQUEST_REJECTED revoked");
    expect(t.lines.map((l) => String(l.message))).toEqual(["app catalog loaded"]);
    expect(t.revoked()).toBe(1);
  });
});
