/** Test identities: a CA, a key pair and a client certificate that belong together. */
import { generateKeyPairSync } from "node:crypto";
import { Secret } from "../../src/secret.ts";
import type { Identity } from "../../src/identity/identity.ts";
import { createTestCa, type TestCa } from "../support/test-pki.ts";

let sharedCa: TestCa | undefined;

export function testCa(): TestCa {
  sharedCa ??= createTestCa("Identity Test CA");
  return sharedCa;
}

/** A consistent identity (RSA-2048 to stay fast; the store does not check key size). */
export function makeIdentity(connectorId: string, overrides: Partial<Identity> = {}): Identity {
  const ca = testCa();
  const keys = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const certificate = ca.signPublicKey(keys.publicKey, {
    commonName: connectorId,
    organization: "group-a",
    usage: "client",
  });
  return {
    formatVersion: 1,
    connectorId,
    name: `host-${connectorId}`,
    group: "group-a",
    controlUrl: "https://127.0.0.1:8443",
    caPin: ca.pin,
    caCertificate: ca.cert,
    certificate,
    chain: [],
    gateways: [{ id: "gw-1", url: "wss://127.0.0.1:9443/v1/tunnel" }],
    enrolledAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
    machineId: "0123456789abcdef0123456789abcdef",
    privateKeyPem: new Secret(keys.privateKey),
    ...overrides,
  };
}
