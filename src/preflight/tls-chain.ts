/**
 * Judges the certificate chain a server presented against the cloud CA pin (SHA-256 of the CA's
 * public key, src/control/pin.ts): the leaf must be signed, directly or through the chain's
 * intermediates, by a CA whose key hashes to the pin (one the server sent, or the stored identity's),
 * be issued for the host dialled, and be valid by this host's clock. A leaf that does not chain to the
 * pinned CA is what TLS inspection looks like: the verdict names the issuer the operator will find in
 * the proxy's configuration.
 */
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { spkiPin } from "../control/pin.ts";
import { peerText } from "../peer-text.ts";

export type ChainVerdict =
  | { readonly ok: true; readonly ca: X509Certificate }
  | { readonly ok: false; readonly problem: "interception" | "hostname" | "dates" | "empty"; readonly detail: string };

/** The CN of a distinguished name as node prints it (`CN=x\nO=y`), else the whole name on one line. */
export function commonName(dn: string): string {
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1];
  return peerText((cn ?? dn).replace(/\s*\n\s*/g, ", "), 120);
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Whether `leaf` chains to `anchor` through `chain`'s other certificates (at most a few hops). */
function chainsTo(leaf: X509Certificate, anchor: X509Certificate, chain: readonly X509Certificate[]): boolean {
  let current = leaf;
  for (let hop = 0; hop < 5; hop++) {
    if (signedBy(current, anchor)) return true;
    const next = chain.find(
      (c) => c !== current && c.fingerprint256 !== current.fingerprint256 && signedBy(current, c),
    );
    if (!next) return false;
    current = next;
  }
  return false;
}

export function judgeChain(
  chain: readonly X509Certificate[],
  caPin: string,
  knownCaPem: string | undefined,
  host: string,
  now: Date,
): ChainVerdict {
  const leaf = chain[0];
  if (!leaf) return { ok: false, problem: "empty", detail: "the server presented no certificate" };
  const candidates = [...chain];
  if (knownCaPem !== undefined) candidates.push(new X509Certificate(knownCaPem));
  const anchors = candidates.filter((c) => spkiPin(c) === caPin);
  const anchor = anchors.find((a) => chainsTo(leaf, a, chain));
  if (!anchor) return { ok: false, problem: "interception", detail: commonName(leaf.issuer) };
  const matches = isIP(host) ? leaf.checkIP(host) !== undefined : leaf.checkHost(host) !== undefined;
  if (!matches)
    return {
      ok: false,
      problem: "hostname",
      detail: `the certificate signed by the cloud CA is not issued for ${host}`,
    };
  if (now < leaf.validFromDate || now > leaf.validToDate) {
    return {
      ok: false,
      problem: "dates",
      detail: `the certificate is valid from ${leaf.validFromDate.toISOString()} to ${leaf.validToDate.toISOString()}, and this host's clock says ${now.toISOString()}`,
    };
  }
  return { ok: true, ca: anchor };
}
