/**
 * The connector's identity: what enrollment returns plus the private key generated here. The
 * `identity.json` schema below is the on-disk format (versioned by `formatVersion`); it is validated on
 * every read, so a hand-edited or damaged file is reported, not half-used.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import * as v from "valibot";
import { GatewaySchema } from "../control/api.ts";
import { spkiPin } from "../control/pin.ts";
import type { Secret } from "../secret.ts";

/** Bumped only for an incompatible change; a reader refuses versions it does not know. */
export const IDENTITY_FORMAT_VERSION = 1;

const Pem = v.pipe(v.string(), v.includes("-----BEGIN ", "expected a PEM block"), v.maxLength(64 * 1024));

export const IdentityFileSchema = v.object({
  formatVersion: v.literal(IDENTITY_FORMAT_VERSION),
  connectorId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(63)),
  group: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  /** Control-plane base URL from the provisioning key. */
  controlUrl: v.pipe(v.string(), v.url(), v.startsWith("https://")),
  /** base64url SHA-256 of the CA's SubjectPublicKeyInfo, from the provisioning key. */
  caPin: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{43}$/)),
  /** The pinned CA, the only trust anchor for the control plane and gateways. */
  caCertificate: Pem,
  /** The connector's client certificate. */
  certificate: Pem,
  chain: v.array(Pem),
  gateways: v.pipe(v.array(GatewaySchema), v.minLength(1)),
  /** ISO 8601 time of enrollment. */
  enrolledAt: v.pipe(v.string(), v.isoTimestamp()),
  /** ISO 8601 time of the latest certificate renewal, if any. */
  renewedAt: v.optional(v.pipe(v.string(), v.isoTimestamp())),
  /** /etc/machine-id at enrollment, when readable. */
  machineId: v.optional(v.pipe(v.string(), v.maxLength(128))),
});
export type IdentityRecord = v.InferOutput<typeof IdentityFileSchema>;

export interface Identity extends IdentityRecord {
  /** PKCS#8 PEM of the key the certificate certifies; stored as key.pem (0600). */
  readonly privateKeyPem: Secret<string>;
}

/** The certificate's expiry, for status and renewal. */
export function certificateNotAfter(identity: Pick<IdentityRecord, "certificate">): Date {
  return new X509Certificate(identity.certificate).validToDate;
}

/**
 * Why `identity` is inconsistent (the private key does not belong to the certificate, or either does
 * not parse), or undefined when it is sound. Never includes key material.
 */
export function identityProblem(identity: Identity): string | undefined {
  let certSpki: Buffer;
  try {
    certSpki = new X509Certificate(identity.certificate).publicKey.export({ type: "spki", format: "der" });
  } catch {
    return "the certificate cannot be parsed";
  }
  let keySpki: Buffer;
  try {
    keySpki = createPublicKey(createPrivateKey(identity.privateKeyPem.reveal())).export({
      type: "spki",
      format: "der",
    });
  } catch {
    return "the private key cannot be parsed";
  }
  if (!certSpki.equals(keySpki)) return "the private key does not match the certificate";
  // The stored CA is the trust anchor for every later connection; the pin came with the provisioning
  // key. A CA whose key does not hash to the pin was not written by an enrollment: do not trust it.
  let caPin: string;
  try {
    caPin = spkiPin(new X509Certificate(identity.caCertificate));
  } catch {
    return "the CA certificate cannot be parsed";
  }
  return caPin === identity.caPin ? undefined : "the stored CA certificate does not match the stored CA pin";
}
