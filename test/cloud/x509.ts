/**
 * Builds X.509 v3 certificates for any subject key type. node-forge lays out the TBSCertificate
 * (names, validity, extensions) but can serialise only RSA public keys, so the draft is made with a
 * placeholder key and its SubjectPublicKeyInfo is replaced by the real DER bytes; node:crypto then
 * signs the result. This is how EC keys from CSRs get certificates, and it keeps signing native (fast).
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { encodeBitString, encodeSequence, expectSequence, parseDer, bitStringBytes } from "./der.ts";

/** forge needs *a* key to lay out the draft; this one never reaches a finished certificate. */
const PLACEHOLDER_KEY = forge.pki.rsa.setPublicKey(forge.jsbn.BigInteger.ONE, forge.jsbn.BigInteger.ONE);
const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
/** Position of subjectPublicKeyInfo in a v3 TBSCertificate (version, serial, signature, issuer, validity, subject, spki). */
const TBS_SPKI_INDEX = 6;

export interface CertificateFields {
  /** Positive serial number, hex. */
  readonly serialHex: string;
  readonly subject: forge.pki.CertificateField[];
  readonly issuer: forge.pki.CertificateField[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo of the key being certified. */
  readonly spki: Buffer;
  /** forge extension descriptors (see forge's setExtensions). */
  readonly extensions: object[];
}

/** Key identifier of RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, as a forge byte string. */
export function keyIdentifier(spki: Buffer): string {
  const [, subjectPublicKey] = expectSequence(parseDer(spki), "SubjectPublicKeyInfo", 2);
  return createHash("sha1").update(bitStringBytes(subjectPublicKey, "subjectPublicKey")).digest().toString("binary");
}

/** Serial numbers are 16 random bytes with the top bit clear (a positive INTEGER). */
export function randomSerialHex(random: (n: number) => Buffer): string {
  const bytes = random(16);
  // Positive (top bit clear) and never a leading zero byte: DER wants the shortest INTEGER, and BoringSSL
  // refuses `00 xx` with xx < 0x80 (INVALID_INTEGER), which a zero first byte made once in 256 certificates.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString("hex");
}

export function derToPem(der: Buffer, label = "CERTIFICATE"): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Signs `fields` with `issuerKey` (RSA, SHA-256) and returns the certificate in PEM. */
export function buildCertificate(fields: CertificateFields, issuerKey: KeyObject): string {
  if (issuerKey.asymmetricKeyType !== "rsa") throw new Error("the reference CA signs with RSA only");
  const draft = forge.pki.createCertificate();
  draft.serialNumber = fields.serialHex;
  draft.validity.notBefore = fields.notBefore;
  draft.validity.notAfter = fields.notAfter;
  draft.setSubject(fields.subject);
  draft.setIssuer(fields.issuer);
  draft.setExtensions(fields.extensions);
  draft.publicKey = PLACEHOLDER_KEY;
  draft.siginfo.algorithmOid = SHA256_WITH_RSA;
  draft.signatureOid = SHA256_WITH_RSA;
  draft.signature = "";
  const draftDer = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(draft)).getBytes(), "binary");

  const [tbs, signatureAlgorithm] = expectSequence(parseDer(draftDer), "draft certificate", 3);
  const tbsParts = expectSequence(tbs, "draft TBSCertificate", TBS_SPKI_INDEX + 1).map((part) => part.bytes);
  tbsParts[TBS_SPKI_INDEX] = fields.spki;
  const tbsDer = encodeSequence(tbsParts);
  const signature = sign("sha256", tbsDer, issuerKey);
  return derToPem(encodeSequence([tbsDer, signatureAlgorithm!.bytes, encodeBitString(signature)]));
}
