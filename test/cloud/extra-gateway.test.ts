/**
 * `extraGateways` (--extra-gateway): a gateway the cloud does not run is listed to connectors and gets a
 * server certificate from the cloud CA, so test/interop's independent gateway can serve the connector.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, X509Certificate } from "node:crypto";
import * as v from "valibot";
import { EnrollResponseSchema } from "../../src/control/api.ts";
import { startCloud, type CloudHandle } from "./cloud.ts";
import { toCloudJson } from "./cloud-json.ts";
import { forgeCsr, rsaKeys } from "./fixtures.ts";
import { enrollBody, postEnroll, silentLog } from "./test-client.ts";

const URL_A = "wss://127.0.0.1:1/v1/tunnel";
let cloud: CloudHandle;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 0, extraGateways: [URL_A], tokenTtlSeconds: 42 });
});
afterAll(() => cloud.stop());

describe("a cloud with only an extra gateway", () => {
  test("enrollment lists exactly the extra gateway", async () => {
    const response = await postEnroll(cloud, enrollBody(cloud.provisioningKey, forgeCsr(rsaKeys(3072))));
    expect(response.status).toBe(201);
    expect(v.parse(EnrollResponseSchema, await response.json()).gateways).toEqual([{ id: "ext-1", url: URL_A }]);
  });

  test("its server certificate is the CA's, for 127.0.0.1, and its key matches", () => {
    const [gateway] = cloud.extraGateways;
    const cert = new X509Certificate(gateway!.certPem);
    expect(cert.checkIssued(new X509Certificate(cloud.caCertPem))).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkPrivateKey(createPrivateKey(gateway!.keyPem))).toBe(true);
  });

  test("cloud.json carries the certificate and what the gateway needs to check tokens", () => {
    const json = toCloudJson(cloud);
    expect(json.gateways.map((g) => g.url)).toEqual([URL_A]);
    expect(json.apps).toEqual({});
    expect(json.extraGateways).toMatchObject({
      gateways: [{ id: "ext-1", url: URL_A, certPem: cloud.extraGateways[0]!.certPem }],
      tokenPublicKeyPem: cloud.state.tokenPublicKeyPem,
      tokenTtlSeconds: 42,
    });
  });

  test("0 gateways without an extra gateway is refused", async () => {
    await expect(startCloud({ log: silentLog, gateways: 0 })).rejects.toThrow("at least one gateway");
  });
});
