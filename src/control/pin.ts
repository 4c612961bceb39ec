/**
 * CA pinning (docs/PROTOCOL.md §1): the pin is SHA-256 over the CA certificate's DER
 * SubjectPublicKeyInfo, base64url without padding. `pinnedCaCertificate` accepts a PEM from an
 * untrusted connection only when its key hashes to the pin, and returns exactly that one certificate
 * re-encoded, so nothing else a server appended to the PEM can become a trust anchor.
 */
import { createHash, timingSafeEqual, X509Certificate } from "node:crypto";
import { BadResponseError, TlsInspectionError } from "./errors.ts";
import { peerText } from "../peer-text.ts";

export function spkiPin(certificate: X509Certificate): string {
  const spki = certificate.publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64url");
}

function pinsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, "base64url");
  const right = Buffer.from(b, "base64url");
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Parses the first certificate of `pem`; throws `BadResponseError` when there is none. */
function parseCertificate(pem: string, what: string): X509Certificate {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!block) throw new BadResponseError(what, "no PEM certificate in the response");
  try {
    return new X509Certificate(block);
  } catch {
    throw new BadResponseError(what, "the certificate cannot be parsed");
  }
}

/**
 * The PEM of `pem`'s first certificate when its key matches `pin`, re-encoded; undefined when it does
 * not. What a mismatch means is the caller's to say: interception on a first contact, a faulty server
 * inside an already pinned connection.
 */
export function certificateMatchingPin(pem: string, pin: string, what: string): string | undefined {
  const certificate = parseCertificate(pem, what);
  return pinsEqual(spkiPin(certificate), pin) ? certificate.toString() : undefined;
}

/**
 * Checks a CA PEM served by `host` against `pin`. Returns the PEM of that single certificate.
 * A mismatch is a `TlsInspectionError` (`CA_PIN_MISMATCH`, exit 15).
 */
export function pinnedCaCertificate(pem: string, pin: string, host: string): string {
  const certificate = parseCertificate(pem, "CA certificate");
  if (!pinsEqual(spkiPin(certificate), pin)) {
    throw new TlsInspectionError(
      "CA_PIN_MISMATCH",
      host,
      `The CA certificate served by ${host} ("${peerText(certificate.subject.replace(/\s*\n\s*/g, ", "))}") does not match the CA pin in the provisioning key`,
    );
  }
  return certificate.toString();
}
