/**
 * CSRs for the reference-cloud tests. `forgeCsr` makes one the way the connector does (node-forge,
 * RSA, SHA-256); `nativeCsr` lays out PKCS#10 by hand and signs with node:crypto, so it works for any
 * key type (EC, Ed25519) and any hash, which forge cannot do. Both let the CSR ask for a subject, so
 * tests can show the CA ignores it.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { encodeBitString, encodeSequence, encodeTlv, Tag } from "./der.ts";
import { derToPem } from "./x509.ts";

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export function rsaKeys(bits: number): KeyPair {
  return generateKeyPairSync("rsa", { modulusLength: bits });
}

export function ecKeys(namedCurve: string): KeyPair {
  return generateKeyPairSync("ec", { namedCurve });
}

export function ed25519Keys(): KeyPair {
  return generateKeyPairSync("ed25519");
}

/** The connector's way: forge lays out and signs an RSA CSR with SHA-256. */
export function forgeCsr(keys: KeyPair, commonName = "chosen-by-the-csr"): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKey.export({ type: "spki", format: "pem" }).toString());
  csr.setSubject([
    { name: "commonName", value: commonName },
    { name: "organizationName", value: "group-chosen-by-the-csr" },
  ]);
  csr.sign(
    forge.pki.privateKeyFromPem(keys.privateKey.export({ type: "pkcs1", format: "pem" }).toString()),
    forge.md.sha256.create(),
  );
  return forge.pki.certificationRequestToPem(csr);
}

const oid = (dotted: string) => encodeTlv(Tag.OID, Buffer.from(forge.asn1.oidToDer(dotted).getBytes(), "binary"));
const NULL = encodeTlv(Tag.NULL, Buffer.alloc(0));

/** Signature AlgorithmIdentifier and node:crypto hash name for a key type and hash. */
function algorithmFor(key: KeyObject, hash: string): { algorithm: Buffer; nodeHash: string | null } {
  const rsa: Record<string, string> = {
    sha1: "1.2.840.113549.1.1.5",
    sha256: "1.2.840.113549.1.1.11",
    sha384: "1.2.840.113549.1.1.12",
  };
  const ec: Record<string, string> = {
    sha1: "1.2.840.10045.4.1",
    sha256: "1.2.840.10045.4.3.2",
    sha384: "1.2.840.10045.4.3.3",
  };
  if (key.asymmetricKeyType === "rsa") return { algorithm: encodeSequence([oid(rsa[hash]!), NULL]), nodeHash: hash };
  if (key.asymmetricKeyType === "ec") return { algorithm: encodeSequence([oid(ec[hash]!)]), nodeHash: hash };
  return { algorithm: encodeSequence([oid("1.3.101.112")]), nodeHash: null }; // Ed25519: no separate hash
}

/** A CSR for any key type, laid out by hand (RFC 2986) and signed by node:crypto. */
export function nativeCsr(keys: KeyPair, options: { commonName?: string; hash?: string } = {}): string {
  const name = encodeSequence([
    encodeTlv(
      Tag.SET,
      encodeSequence([oid("2.5.4.3"), encodeTlv(0x0c, Buffer.from(options.commonName ?? "chosen-by-the-csr"))]),
    ),
  ]);
  const spki = keys.publicKey.export({ type: "spki", format: "der" });
  const info = encodeSequence([
    encodeTlv(Tag.INTEGER, Buffer.from([0])),
    name,
    spki,
    encodeTlv(Tag.CONTEXT_0, Buffer.alloc(0)),
  ]);
  const { algorithm, nodeHash } = algorithmFor(keys.privateKey, options.hash ?? "sha256");
  const signature = sign(nodeHash, info, keys.privateKey);
  return derToPem(encodeSequence([info, algorithm, encodeBitString(signature)]), "CERTIFICATE REQUEST");
}

/** The same CSR with one bit of its signature flipped (the signature is the last bytes of the DER). */
export function withBadSignature(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0x01;
  return derToPem(der, "CERTIFICATE REQUEST");
}
