/**
 * POST /v1/upgrade-report at the reference control plane (docs/PROTOCOL.md §3.6): mutual TLS like the
 * catalog, a bounded body validated field by field (named, never echoed), 204, kept per connector
 * (the newest 100) and listed by GET /admin/upgrade-reports.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startCloud, type CloudHandle } from "./cloud.ts";
import { enrollTestConnector, type TestConnector } from "./gateway/test-connector.ts";
import { adminFetch, controlFetch, refusal, silentLog } from "./test-client.ts";
import { MAX_REPORTS_PER_CONNECTOR, UpgradeReports } from "./upgrade-reports.ts";

let cloud: CloudHandle;
let alice: TestConnector;
let bob: TestConnector;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 1 });
  [alice, bob] = await Promise.all([enrollTestConnector(cloud, "alice"), enrollTestConnector(cloud, "bob")]);
}, 60_000);
afterAll(async () => {
  await cloud?.stop();
});

const report = {
  from: "1.4.0",
  to: "1.5.0",
  result: "rolled-back",
  code: "HEALTH_GATE_FAILED",
  message: "tunnels not up within 120 s",
  at: "2026-12-02T15:00:00.000Z",
};
const post = (body: unknown, connector: TestConnector | undefined = alice) =>
  controlFetch(cloud, "/v1/upgrade-report", {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json" },
    ...(connector ? { clientCert: connector.clientCert } : {}),
  });
const listed = async (query = "") =>
  (await (await adminFetch(cloud, "GET", `/admin/upgrade-reports${query}`)).json()) as Record<string, unknown>[];

describe("POST /v1/upgrade-report", () => {
  test("stores the report under the caller's id and answers 204; the admin API lists it with receivedAt", async () => {
    const response = await post(report);
    expect(response.status).toBe(204);
    await post({ from: "1.4.0", result: "refused", code: "NO_RELEASE_SOURCE", at: "2026-12-02T15:01:00Z" }, bob);
    const all = await listed();
    expect(all.map((r) => r.connectorId)).toEqual([alice.id, bob.id]);
    expect(all[0]).toMatchObject({ connectorId: alice.id, ...report });
    expect(Date.parse(String(all[0]!.receivedAt))).toBeGreaterThan(Date.now() - 60_000);
    expect(await listed(`?connector=${bob.id}`)).toEqual([
      expect.objectContaining({ connectorId: bob.id, result: "refused" }),
    ]);
  });

  test("needs a client certificate of an enrolled connector", async () => {
    // A fresh connection: Bun's fetch may hand a pooled one, made with a client certificate, to a request without one.
    const anonymous = await fetch(`${cloud.controlUrl}/v1/upgrade-report`, {
      method: "POST",
      body: JSON.stringify(report),
      headers: { "content-type": "application/json" },
      tls: { ca: cloud.caCertPem },
      keepalive: false,
      signal: AbortSignal.timeout(5_000),
    });
    expect(await refusal(anonymous)).toBe("401 UNAUTHENTICATED");
  });

  test.each([
    ["an unknown result", { ...report, result: "exploded" }, "result"],
    ["a message over 512 characters", { ...report, message: "x".repeat(513) }, "message"],
    ["a message with a newline", { ...report, message: "two\nlines" }, "message"],
    ["no timestamp", { ...report, at: undefined }, "at"],
    ["a lower-case code", { ...report, code: "oops" }, "code"],
    ["a version with a space", { ...report, from: "1.4.0 beta" }, "from"],
  ])("refuses %s with 400 BAD_REQUEST naming the field, never its value", async (_what, body, field) => {
    const before = (await listed()).length;
    const response = await post(body);
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(JSON.parse(text).error.code).toBe("BAD_REQUEST");
    expect(JSON.parse(text).error.message).toContain(field);
    expect(text).not.toContain("exploded");
    expect(text).not.toContain("xxxxxxxx");
    expect((await listed()).length).toBe(before);
  });

  test("refuses a body that is not JSON (400) or over 4 KiB (413)", async () => {
    expect(await refusal(await post("{not json"))).toBe("400 BAD_REQUEST");
    expect((await post({ ...report, padding: "y".repeat(5000) })).status).toBe(413);
  });
});

describe("UpgradeReports", () => {
  test("keeps the newest reports of each connector, in arrival order", () => {
    const store = new UpgradeReports(() => 0);
    for (let i = 0; i < MAX_REPORTS_PER_CONNECTOR + 5; i++)
      store.add("c-a", { ...report, result: "refused", message: `#${i}` } as never);
    store.add("c-b", { ...report, result: "installed" } as never);
    const a = store.list("c-a");
    expect(a).toHaveLength(MAX_REPORTS_PER_CONNECTOR);
    expect(a[0]!.message).toBe("#5");
    expect(a.at(-1)!.message).toBe(`#${MAX_REPORTS_PER_CONNECTOR + 4}`);
    expect(store.list().at(-1)).toMatchObject({
      connectorId: "c-b",
      result: "installed",
      receivedAt: new Date(0).toISOString(),
    });
  });
});
