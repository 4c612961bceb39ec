/**
 * `renewIdentity` against the in-process reference cloud: a real `POST /v1/renew` over mutual TLS with
 * the enrolled certificate, and what ends up in the state dir.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "../../src/errors.ts";
import { enroll } from "../../src/identity/enroll.ts";
import { certificateNotAfter, identityProblem } from "../../src/identity/identity.ts";
import { renewIdentity } from "../../src/identity/renew.ts";
import { IdentityStore } from "../../src/identity/store.ts";
import { createLogger } from "../../src/log.ts";
import { startCloud, type CloudHandle } from "../cloud/cloud.ts";
import { adminFetch, silentLog } from "../cloud/test-client.ts";

let cloud: CloudHandle;
let dir: string;
const log = createLogger({ level: "silent", format: "json", write: () => {} });

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 1 });
  dir = mkdtempSync(join(tmpdir(), "renew-"));
});
afterAll(async () => {
  await cloud.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("a renewal stores a new key and certificate for the same connector, atomically, and a revoked connector cannot renew", async () => {
  const stateDir = join(dir, "state");
  const { identity } = await enroll({
    stateDir,
    key: cloud.provisioningKey,
    env: {},
    force: false,
    name: "edge-9",
    log,
  });
  const renewed = await renewIdentity(identity, { stateDir, log }, { now: () => new Date("2026-11-23T12:00:00Z") });
  expect(renewed).toMatchObject({
    connectorId: identity.connectorId,
    name: "edge-9",
    group: identity.group,
    enrolledAt: identity.enrolledAt,
    renewedAt: "2026-11-23T12:00:00.000Z",
  });
  expect(renewed.certificate).not.toBe(identity.certificate);
  expect(renewed.privateKeyPem.reveal()).not.toBe(identity.privateKeyPem.reveal());
  expect(identityProblem(renewed)).toBeUndefined();
  expect(certificateNotAfter(renewed).getTime()).toBeGreaterThanOrEqual(certificateNotAfter(identity).getTime());

  const stored = new IdentityStore(stateDir).load()!;
  expect(stored.certificate).toBe(renewed.certificate);
  expect(stored.privateKeyPem.reveal()).toBe(renewed.privateKeyPem.reveal());
  expect(statSync(join(stateDir, "identity", "key.pem")).mode & 0o777).toBe(0o600);

  expect((await adminFetch(cloud, "POST", `/admin/connectors/${identity.connectorId}/revoke`)).status).toBe(204);
  const refused = await renewIdentity(renewed, { stateDir, log }).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(refused).toBeInstanceOf(ConnectorError);
  expect(String((refused as ConnectorError).message)).toContain("revoked");
  expect(new IdentityStore(stateDir).load()!.certificate).toBe(renewed.certificate); // a failed renewal changes nothing
}, 30_000);
