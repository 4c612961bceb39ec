/**
 * Checks of what the control plane issued, shared by enrollment (PROTOCOL §3.2) and renewal (PROTOCOL §3.4): the
 * certificate certifies the key pair generated here and chains to the pinned CA, and the CA in the
 * answer is the pinned one. An answer that fails them is a faulty server (the connection itself was
 * verified against the pin), reported as `BadResponseError` naming `what`.
 */
import { createPublicKey, X509Certificate } from "node:crypto";
import { BadResponseError } from "../control/errors.ts";
import { certificateMatchingPin } from "../control/pin.ts";

/** Checks that the issued certificate certifies `publicKeyPem` and chains to `caPem`. */
export function checkIssued(
  what: string,
  certificatePem: string,
  chain: readonly string[],
  caPem: string,
  publicKeyPem: string,
): X509Certificate {
  let leaf: X509Certificate;
  let links: X509Certificate[];
  try {
    leaf = new X509Certificate(certificatePem);
    links = [...chain.map((pem) => new X509Certificate(pem)), new X509Certificate(caPem)];
  } catch {
    throw new BadResponseError(what, "a certificate cannot be parsed");
  }
  const certified = leaf.publicKey.export({ type: "spki", format: "der" });
  if (!certified.equals(createPublicKey(publicKeyPem).export({ type: "spki", format: "der" }))) {
    throw new BadResponseError(what, "the issued certificate is not for the key pair generated here");
  }
  let child = leaf;
  for (const issuer of links) {
    if (!child.verify(issuer.publicKey))
      throw new BadResponseError(what, "the issued certificate does not chain to the pinned CA");
    child = issuer;
  }
  return leaf;
}

/** The CA in the answer must be the pinned one: it is what `run` trusts for gateways. */
export function answeredCaCertificate(what: string, pem: string, pin: string): string {
  const certificate = certificateMatchingPin(pem, pin, what);
  if (certificate === undefined) throw new BadResponseError(what, "its CA certificate does not match the key's pin");
  return certificate;
}
