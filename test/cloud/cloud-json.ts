/**
 * DIR/cloud.json, the file through which main.ts tells the demo, the tests and outside checks where
 * the reference cloud is (test/cloud/README.md). Written atomically once everything listens; it holds the
 * provisioning key, so it is private to the owner (0600).
 */
import * as v from "valibot";
import type { CloudHandle } from "./cloud.ts";

export const CloudJsonSchema = v.object({
  /** https://127.0.0.1:PORT */
  controlUrl: v.pipe(v.string(), v.startsWith("https://")),
  /** base64url SHA-256 of the CA's SubjectPublicKeyInfo. */
  caPin: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{43}$/)),
  /** A `cnk1.` key for group "default" (its max uses follow --key-uses). */
  provisioningKey: v.pipe(v.string(), v.startsWith("cnk1.")),
  /** http://127.0.0.1:PORT, the test-only admin API (README.md). */
  adminUrl: v.pipe(v.string(), v.startsWith("http://")),
  /** `pid`: the gateway's process now (absent while it is stopped); the url never changes. */
  gateways: v.array(
    v.object({ id: v.string(), url: v.pipe(v.string(), v.startsWith("wss://")), pid: v.optional(v.number()) }),
  ),
  /** Per --app: where users connect ("127.0.0.1:PORT"); null only with gateways that have no user listeners. */
  apps: v.record(v.string(), v.object({ listen: v.nullable(v.string()) })),
  /** With --releases: the release server (http://127.0.0.1:PORT) and the manifest URL of each channel found at start. */
  releases: v.optional(
    v.object({
      baseUrl: v.pipe(v.string(), v.startsWith("http://")),
      channels: v.record(v.string(), v.object({ manifestUrl: v.pipe(v.string(), v.startsWith("http://")) })),
    }),
  ),
  /**
   * With --extra-gateway: each such gateway's id, URL (also in `gateways`) and the server certificate and
   * key the CA issued for it, plus what it needs to check access tokens (PROTOCOL §3.5): the public key
   * they are signed with (SPKI PEM) and the longest lifetime the control plane issues.
   */
  extraGateways: v.optional(
    v.object({
      gateways: v.array(v.object({ id: v.string(), url: v.string(), certPem: v.string(), keyPem: v.string() })),
      tokenPublicKeyPem: v.string(),
      tokenTtlSeconds: v.number(),
    }),
  ),
});
export type CloudJson = v.InferOutput<typeof CloudJsonSchema>;

export function toCloudJson(cloud: CloudHandle): CloudJson {
  return {
    controlUrl: cloud.controlUrl,
    caPin: cloud.caPin,
    provisioningKey: cloud.provisioningKey,
    adminUrl: cloud.adminUrl,
    gateways: cloud.gateways.map((g) => ({ id: g.id, url: g.url, ...(g.pid === undefined ? {} : { pid: g.pid }) })),
    apps: cloud.apps,
    ...(cloud.releases ? { releases: cloud.releases } : {}),
    ...(cloud.extraGateways.length > 0
      ? {
          extraGateways: {
            gateways: cloud.extraGateways.map(({ id, url, certPem, keyPem }) => ({ id, url, certPem, keyPem })),
            tokenPublicKeyPem: cloud.state.tokenPublicKeyPem,
            tokenTtlSeconds: cloud.state.tokenMaxTtlSeconds,
          },
        }
      : {}),
  };
}
