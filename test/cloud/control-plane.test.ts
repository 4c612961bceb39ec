import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import * as v from "valibot";
import {
  CatalogSchema,
  EnrollResponseSchema,
  RenewResponseSchema,
  TokenResponseSchema,
  type EnrollResponse,
} from "../../src/control/api.ts";
import { decodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { createTestCa } from "../support/test-pki.ts";
import {
  certificateThumbprint,
  DEFAULT_TOKEN_TTL_SECONDS,
  publicKeyFromPem,
  verifyAccessToken,
} from "./access-token.ts";
import { caPin } from "./ca.ts";
import { parseAppArg } from "./cli-args.ts";
import { startCloud, type CloudHandle } from "./cloud.ts";
import { forgeCsr, rsaKeys, withBadSignature, type KeyPair } from "./fixtures.ts";
import {
  adminFetch,
  adminKey,
  controlFetch,
  enrollBody,
  postEnroll,
  refusal,
  silentLog,
  type ClientCert,
} from "./test-client.ts";

let cloud: CloudHandle;
let keys: KeyPair;
let goodCsr: string;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 2, apps: [parseAppArg("wiki=127.0.0.1:8080")] });
  keys = rsaKeys(3072);
  goodCsr = forgeCsr(keys, "requested-name");
});
afterAll(() => cloud.stop());

/** Enrolls with a fresh key and returns the response and a client certificate for mutual TLS. */
async function enrollFresh(): Promise<{ response: EnrollResponse; clientCert: ClientCert }> {
  const { key } = await adminKey(cloud);
  const http = await postEnroll(cloud, enrollBody(key, goodCsr));
  expect(http.status).toBe(201);
  const response = v.parse(EnrollResponseSchema, await http.json());
  return {
    response,
    clientCert: {
      cert: response.certificate,
      key: keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    },
  };
}

describe("GET /v1/ca", () => {
  test("serves the CA certificate as PEM; its pin is the one in the provisioning key", async () => {
    const response = await controlFetch(cloud, "/v1/ca");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-pem-file");
    const pem = await response.text();
    expect(caPin(pem)).toBe(cloud.caPin);
    expect(decodeProvisioningKey(cloud.provisioningKey)).toMatchObject({
      caPin: cloud.caPin,
      controlUrl: cloud.controlUrl,
    });
  });
});

describe("POST /v1/enroll", () => {
  test("issues an identity whose subject the cloud chose, and counts one use of the key", async () => {
    const http = await postEnroll(cloud, enrollBody(cloud.provisioningKey, goodCsr, "edge-1"));
    expect(http.status).toBe(201);
    const response = v.parse(EnrollResponseSchema, await http.json());
    expect(response.connectorId).toMatch(/^c-[0-9a-f]{16}$/);
    expect(response).toMatchObject({ name: "edge-1", group: "default", chain: [], caCertificate: cloud.caCertPem });
    expect(response.gateways).toEqual(cloud.gateways.map(({ id, url }) => ({ id, url })));
    const cert = new X509Certificate(response.certificate);
    expect(cert.subject).toBe(`CN=${response.connectorId}\nO=default`);
    expect(cert.verify(new X509Certificate(cloud.caCertPem).publicKey)).toBe(true);
    expect(cloud.state.registry.get(response.connectorId)).toMatchObject({
      name: "edge-1",
      group: "default",
      revoked: false,
    });
    expect(cloud.state.keys.get(cloud.provisioningKeyId)?.uses).toBe(1);
  });

  test("an unknown key is 401 KEY_UNKNOWN", async () => {
    const body = { ...enrollBody(cloud.provisioningKey, goodCsr), secret: Buffer.alloc(32, 9).toString("base64url") };
    expect(await refusal(await postEnroll(cloud, body))).toBe("401 KEY_UNKNOWN");
  });

  test("an expired key is 403 KEY_EXPIRED", async () => {
    const { key } = await adminKey(cloud, { expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect(await refusal(await postEnroll(cloud, enrollBody(key, goodCsr)))).toBe("403 KEY_EXPIRED");
  });

  test("a revoked key is 403 KEY_REVOKED", async () => {
    const { id, key } = await adminKey(cloud);
    expect((await adminFetch(cloud, "POST", `/admin/keys/${id}/revoke`)).status).toBe(204);
    expect(await refusal(await postEnroll(cloud, enrollBody(key, goodCsr)))).toBe("403 KEY_REVOKED");
  });

  test("failed enrollments use nothing; the key is KEY_EXHAUSTED after its max uses", async () => {
    const { id, key } = await adminKey(cloud, { maxUses: 1 });
    const weakCsr = forgeCsr(rsaKeys(2048));
    expect(await refusal(await postEnroll(cloud, enrollBody(key, weakCsr)))).toBe("400 CSR_WEAK_KEY");
    expect(await refusal(await postEnroll(cloud, enrollBody(key, withBadSignature(goodCsr))))).toBe("400 CSR_INVALID");
    expect(cloud.state.keys.get(id)?.uses).toBe(0);
    expect((await postEnroll(cloud, enrollBody(key, goodCsr))).status).toBe(201);
    expect(await refusal(await postEnroll(cloud, enrollBody(key, goodCsr)))).toBe("403 KEY_EXHAUSTED");
    expect(cloud.state.keys.get(id)?.uses).toBe(1);
  });

  test("a body that does not match the schema is 400 BAD_REQUEST and the secret is not echoed", async () => {
    const body = { ...enrollBody(cloud.provisioningKey, goodCsr), name: "" };
    const response = await postEnroll(cloud, body);
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(JSON.parse(text)).toMatchObject({ error: { code: "BAD_REQUEST" } });
    expect(text).not.toContain(body.secret);
    expect(await refusal(await postEnroll(cloud, "not an object"))).toBe("400 BAD_REQUEST");
  });

  test("a body over 64 KiB is refused with 413", async () => {
    const body = { ...enrollBody(cloud.provisioningKey, goodCsr), machineId: "x".repeat(70_000) };
    expect(await refusal(await postEnroll(cloud, body))).toBe("413 BAD_REQUEST");
  });

  test("wrong methods get 405 and unknown paths 404, both with the error body", async () => {
    expect(await refusal(await controlFetch(cloud, "/v1/enroll"))).toBe("405 BAD_REQUEST");
    expect(await refusal(await controlFetch(cloud, "/v1/nothing"))).toBe("404 NOT_FOUND");
  });
});

describe("GET /v1/catalog", () => {
  let clientCert: ClientCert;
  let connectorId: string;
  beforeAll(async () => {
    const enrolled = await enrollFresh();
    clientCert = enrolled.clientCert;
    connectorId = enrolled.response.connectorId;
  });

  test("without a client certificate is 401 UNAUTHENTICATED", async () => {
    expect(await refusal(await controlFetch(cloud, "/v1/catalog"))).toBe("401 UNAUTHENTICATED");
  });

  test("a certificate from another CA is 401 UNAUTHENTICATED, even naming an enrolled connector", async () => {
    const stranger = createTestCa("Stranger CA").issueClient({ commonName: connectorId, organization: "default" });
    expect(await refusal(await controlFetch(cloud, "/v1/catalog", { clientCert: stranger }))).toBe(
      "401 UNAUTHENTICATED",
    );
  });

  test("serves the group's apps with an ETag; If-None-Match with it gets 304 until the catalog changes", async () => {
    const first = await controlFetch(cloud, "/v1/catalog", { clientCert });
    expect(first.status).toBe(200);
    const catalog = v.parse(CatalogSchema, await first.json());
    expect(first.headers.get("etag")).toBe(`"${catalog.version}"`);
    expect(catalog.apps).toEqual([
      { name: "wiki", destinations: [{ host: "127.0.0.1", ports: "8080" }], servers: ["127.0.0.1:8080"] },
    ]);

    const etag = first.headers.get("etag")!;
    const cached = await controlFetch(cloud, "/v1/catalog", { clientCert, headers: { "if-none-match": etag } });
    expect(cached.status).toBe(304);
    expect(cached.headers.get("etag")).toBe(etag);

    const put = await adminFetch(cloud, "PUT", "/admin/apps/jira", {
      destinations: [{ host: "*.corp.example", ports: "443" }],
      servers: ["jira.corp.example:443"],
    });
    expect(put.status).toBe(200);
    const changed = await controlFetch(cloud, "/v1/catalog", { clientCert, headers: { "if-none-match": etag } });
    expect(changed.status).toBe(200);
    const next = v.parse(CatalogSchema, await changed.json());
    expect(next.version).not.toBe(catalog.version);
    expect(next.apps.map((a) => a.name)).toEqual(["jira", "wiki"]);

    expect((await adminFetch(cloud, "DELETE", "/admin/apps/jira")).status).toBe(204);
    expect((await controlFetch(cloud, "/v1/catalog", { clientCert, headers: { "if-none-match": etag } })).status).toBe(
      304,
    );
  });

  test("a revoked connector is 403 CONNECTOR_REVOKED", async () => {
    const { response, clientCert: revokedCert } = await enrollFresh();
    expect((await adminFetch(cloud, "POST", `/admin/connectors/${response.connectorId}/revoke`)).status).toBe(204);
    expect(await refusal(await controlFetch(cloud, "/v1/catalog", { clientCert: revokedCert }))).toBe(
      "403 CONNECTOR_REVOKED",
    );
  });

  test("an expired client certificate is 401 UNAUTHENTICATED", async () => {
    // A cloud whose clock runs two days behind issues certificates that expired a day ago.
    const lagging = await startCloud({
      log: silentLog,
      now: () => Date.now() - 2 * 86_400_000,
      certTtlSeconds: 86_400,
    });
    try {
      const enrolled = await postEnroll(lagging, enrollBody(lagging.provisioningKey, goodCsr));
      const { certificate } = v.parse(EnrollResponseSchema, await enrolled.json());
      expect(new Date(new X509Certificate(certificate).validTo).getTime()).toBeLessThan(Date.now());
      const expired = { cert: certificate, key: clientCert.key };
      expect(await refusal(await controlFetch(lagging, "/v1/catalog", { clientCert: expired }))).toBe(
        "401 UNAUTHENTICATED",
      );
    } finally {
      await lagging.stop();
    }
  });
});

describe("POST /v1/renew", () => {
  const renewBody = (csr: string) => ({
    method: "POST",
    body: JSON.stringify({ csr, version: "0.2.0" }),
    headers: { "content-type": "application/json" },
  });

  test("issues a new certificate for the same connector and group, for the new key, with the gateways", async () => {
    const { response, clientCert } = await enrollFresh();
    const nextKeys = rsaKeys(3072);
    const http = await controlFetch(cloud, "/v1/renew", {
      ...renewBody(forgeCsr(nextKeys, "ignored-subject")),
      clientCert,
    });
    expect(http.status).toBe(200);
    const renewed = v.parse(RenewResponseSchema, await http.json());
    const cert = new X509Certificate(renewed.certificate);
    expect(cert.subject).toBe(`CN=${response.connectorId}\nO=default`);
    expect(cert.publicKey.export({ type: "spki", format: "der" })).toEqual(
      nextKeys.publicKey.export({ type: "spki", format: "der" }),
    );
    expect(cert.serialNumber).not.toBe(new X509Certificate(response.certificate).serialNumber);
    expect(renewed).toMatchObject({ chain: [], caCertificate: cloud.caCertPem, gateways: response.gateways });
    expect(cloud.state.registry.get(response.connectorId)).toMatchObject({
      certSerial: cert.serialNumber,
      version: "0.2.0",
      revoked: false,
    });
    // The new certificate authenticates too; the old one stays valid until it expires.
    const fresh = {
      cert: renewed.certificate,
      key: nextKeys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
    expect((await controlFetch(cloud, "/v1/catalog", { clientCert: fresh })).status).toBe(200);
    expect((await controlFetch(cloud, "/v1/catalog", { clientCert })).status).toBe(200);
    // Tokens only for the newest certificate: the superseded one buys no more tunnel time.
    const token = (c: ClientCert) => controlFetch(cloud, "/v1/token", { method: "POST", clientCert: c });
    expect((await token(fresh)).status).toBe(200);
    expect(await refusal(await token(clientCert))).toBe("401 UNAUTHENTICATED");
    // It may still renew (the answer to the last renewal may have been lost), and then only the newest gets tokens.
    const againKeys = rsaKeys(3072);
    const again = await controlFetch(cloud, "/v1/renew", { ...renewBody(forgeCsr(againKeys, "x")), clientCert });
    expect(again.status).toBe(200);
    const newest = {
      cert: v.parse(RenewResponseSchema, await again.json()).certificate,
      key: againKeys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
    expect((await token(newest)).status).toBe(200);
    expect(await refusal(await token(fresh))).toBe("401 UNAUTHENTICATED");
  });

  test("without a client certificate is 401, for a revoked connector 403, with a bad CSR 400", async () => {
    expect(await refusal(await controlFetch(cloud, "/v1/renew", renewBody(goodCsr)))).toBe("401 UNAUTHENTICATED");
    const { response, clientCert } = await enrollFresh();
    expect(
      await refusal(await controlFetch(cloud, "/v1/renew", { ...renewBody(withBadSignature(goodCsr)), clientCert })),
    ).toBe("400 CSR_INVALID");
    expect(await refusal(await controlFetch(cloud, "/v1/renew", { ...renewBody("not a csr"), clientCert }))).toBe(
      "400 BAD_REQUEST",
    );
    expect((await adminFetch(cloud, "POST", `/admin/connectors/${response.connectorId}/revoke`)).status).toBe(204);
    expect(await refusal(await controlFetch(cloud, "/v1/renew", { ...renewBody(goodCsr), clientCert }))).toBe(
      "403 CONNECTOR_REVOKED",
    );
  });
});

describe("POST /v1/token", () => {
  const post = (clientCert?: ClientCert) =>
    controlFetch(cloud, "/v1/token", { method: "POST", ...(clientCert ? { clientCert } : {}) });

  test("issues a signed token bound to the presented certificate, naming the connector, expiring after the TTL", async () => {
    const { response, clientCert } = await enrollFresh();
    const before = Math.floor(Date.now() / 1000);
    const http = await post(clientCert);
    expect(http.status).toBe(200);
    expect(http.headers.get("cache-control")).toBe("no-store");
    const { token, expiresAt, expiresIn } = v.parse(TokenResponseSchema, await http.json());
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const certificate = new X509Certificate(response.certificate);
    const ctx = {
      publicKey: publicKeyFromPem(cloud.state.tokenPublicKeyPem),
      certificate,
      connectorId: response.connectorId,
      group: "default",
      maxTtlSeconds: cloud.state.tokenMaxTtlSeconds,
      nowMs: Date.now(),
    };
    const verdict = verifyAccessToken(token, ctx);
    if (!verdict.ok) throw new Error(verdict.reason);
    expect(verdict.claims).toMatchObject({
      ver: 1,
      sub: response.connectorId,
      grp: "default",
      cnf: { "x5t#S256": certificateThumbprint(certificate.raw) },
    });
    expect(verdict.claims.exp - verdict.claims.iat).toBe(DEFAULT_TOKEN_TTL_SECONDS);
    expect(verdict.claims.iat).toBeGreaterThanOrEqual(before);
    expect(Date.parse(expiresAt)).toBe(verdict.claims.exp * 1000);
    expect(expiresIn).toBeGreaterThan(DEFAULT_TOKEN_TTL_SECONDS - 2); // exp is whole seconds from iat
    expect(expiresIn).toBeLessThanOrEqual(DEFAULT_TOKEN_TTL_SECONDS);
    // Bound: the same connector's token does not verify with another certificate of the cloud CA.
    const other = await enrollFresh();
    expect(verifyAccessToken(token, { ...ctx, certificate: new X509Certificate(other.response.certificate) })).toEqual({
      ok: false,
      reason: "access token was issued to another certificate",
    });
  });

  test("without a client certificate is 401, for a revoked connector 403 CONNECTOR_REVOKED, GET is 405", async () => {
    expect(await refusal(await post())).toBe("401 UNAUTHENTICATED");
    const { response, clientCert } = await enrollFresh();
    expect((await post(clientCert)).status).toBe(200);
    expect(await refusal(await controlFetch(cloud, "/v1/token", { clientCert }))).toBe("405 BAD_REQUEST");
    expect(
      (await adminFetch(cloud, "POST", `/admin/connectors/${response.connectorId}/revoke`, { notifyGateways: false }))
        .status,
    ).toBe(204);
    expect(await refusal(await post(clientCert))).toBe("403 CONNECTOR_REVOKED");
  });
});
