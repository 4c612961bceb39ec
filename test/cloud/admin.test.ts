import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { startCloud, type CloudHandle } from "./cloud.ts";
import { forgeCsr, rsaKeys } from "./fixtures.ts";
import { adminFetch, enrollBody, postEnroll, refusal, silentLog } from "./test-client.ts";

let cloud: CloudHandle;
beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, keyUses: 3 });
});
afterAll(() => cloud.stop());

describe("admin API", () => {
  test("POST /admin/keys makes a key for this control plane with defaults: group default, 10 uses, 24 h", async () => {
    const before = Date.now();
    const response = await adminFetch(cloud, "POST", "/admin/keys", {});
    expect(response.status).toBe(201);
    const body = (await response.json()) as {
      id: string;
      key: string;
      group: string;
      maxUses: number;
      uses: number;
      expiresAt: string;
    };
    expect(body).toMatchObject({ group: "default", maxUses: 10, uses: 0 });
    expect(Date.parse(body.expiresAt) - before).toBeGreaterThanOrEqual(86_400_000 - 1_000);
    expect(Date.parse(body.expiresAt) - before).toBeLessThanOrEqual(86_400_000 + 5_000);
    expect(decodeProvisioningKey(body.key)).toMatchObject({ controlUrl: cloud.controlUrl, caPin: cloud.caPin });
  });

  test("POST /admin/keys honours group, maxUses and expiresAt, and refuses bad values", async () => {
    const expiresAt = "2030-01-01T00:00:00.000Z";
    const response = await adminFetch(cloud, "POST", "/admin/keys", { group: "site-b", maxUses: 2, expiresAt });
    expect(await response.json()).toMatchObject({ group: "site-b", maxUses: 2, expiresAt });
    expect(await refusal(await adminFetch(cloud, "POST", "/admin/keys", { maxUses: 0 }))).toBe("400 BAD_REQUEST");
    expect(await refusal(await adminFetch(cloud, "POST", "/admin/keys", { expiresAt: "soon" }))).toBe(
      "400 BAD_REQUEST",
    );
    expect(await refusal(await adminFetch(cloud, "POST", "/admin/keys/k-nope/revoke"))).toBe("404 NOT_FOUND");
  });

  test("the initial key follows --key-uses and shows in GET /admin/keys without its secret", async () => {
    const list = (await (await adminFetch(cloud, "GET", "/admin/keys")).json()) as { id: string; maxUses: number }[];
    expect(list.find((k) => k.id === cloud.provisioningKeyId)?.maxUses).toBe(3);
    expect(JSON.stringify(list)).not.toContain(decodeProvisioningKey(cloud.provisioningKey).secret.reveal());
  });

  test("GET /admin/connectors lists enrolled connectors; POST …/revoke marks one revoked", async () => {
    const enrolled = await postEnroll(cloud, enrollBody(cloud.provisioningKey, forgeCsr(rsaKeys(3072)), "lister"));
    const { connectorId } = (await enrolled.json()) as { connectorId: string };
    const listed = async () =>
      (
        (await (await adminFetch(cloud, "GET", "/admin/connectors")).json()) as {
          id: string;
          name: string;
          revoked: boolean;
        }[]
      ).find((c) => c.id === connectorId);
    expect(await listed()).toMatchObject({ name: "lister", revoked: false });
    expect((await adminFetch(cloud, "POST", `/admin/connectors/${connectorId}/revoke`)).status).toBe(204);
    expect((await listed())?.revoked).toBe(true);
    expect(await refusal(await adminFetch(cloud, "POST", "/admin/connectors/c-nope/revoke"))).toBe("404 NOT_FOUND");
  });

  test("PUT /admin/apps/:name validates the app and reports the new catalog version; DELETE removes it", async () => {
    const app = { destinations: [{ host: "10.0.0.0/8", ports: "8000-8100" }], servers: ["10.1.2.3:8000"] };
    const put = await adminFetch(cloud, "PUT", "/admin/apps/grafana", app);
    expect(put.status).toBe(200);
    const { version } = (await put.json()) as { version: string };
    expect(version).toBe(cloud.state.catalog.forGroup("default").version);
    expect(
      await refusal(
        await adminFetch(cloud, "PUT", "/admin/apps/bad", { destinations: [{ host: "x", ports: "any" }], servers: [] }),
      ),
    ).toBe("400 BAD_REQUEST");
    expect((await adminFetch(cloud, "DELETE", "/admin/apps/grafana")).status).toBe(204);
    expect(await refusal(await adminFetch(cloud, "DELETE", "/admin/apps/grafana"))).toBe("404 NOT_FOUND");
  });

  test("unknown endpoints are 404 with the error body", async () => {
    expect(await refusal(await adminFetch(cloud, "GET", "/admin/nothing"))).toBe("404 NOT_FOUND");
  });
});
