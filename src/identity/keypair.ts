/**
 * The connector's key pair and certificate signing request. The key pair is generated natively
 * (node:crypto, RSA-3072) on this host; the private key never leaves it and never enters node-forge:
 * forge only lays out the PKCS#10 structure, and the signature over it is made by node:crypto.
 */
import { generateKeyPair as generateKeyPairCb, sign } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";
import { Secret } from "../secret.ts";
import { RSA_MODULUS_BITS } from "./config.ts";

const generateKeyPairAsync = promisify(generateKeyPairCb);

export interface KeyPair {
  /** PKCS#8 PEM. */
  readonly privateKeyPem: Secret<string>;
  /** SubjectPublicKeyInfo PEM. */
  readonly publicKeyPem: string;
}

/** Generates an RSA key pair off the main thread (libuv pool), so a daemon stays responsive. */
export async function generateKeyPair(modulusLength: number = RSA_MODULUS_BITS): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPairAsync("rsa", {
    modulusLength,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKeyPem: new Secret(privateKey), publicKeyPem: publicKey };
}

/** forge computes the to-be-signed part of a CSR with this function, which its typings omit. */
interface ForgeCsrInternals {
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
}

/**
 * A PKCS#10 CSR in PEM for `keys`, subject CN = `commonName`, signed with SHA-256. The control plane
 * ignores the subject (it sets CN = connector id itself); the CN only helps someone reading the CSR.
 */
export function buildCsr(keys: KeyPair, commonName: string): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  // UTF8String: forge's default PrintableString cannot hold names such as "usine-café" (forge encodes
  // it). forge reads the ASN.1 *type* from `valueTagClass`; its typings call the field a class.
  const utf8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;
  csr.setSubject([{ name: "commonName", value: commonName, valueTagClass: utf8 }]);
  const info = (forge.pki as unknown as ForgeCsrInternals).getCertificationRequestInfo(csr);
  const toBeSigned = Buffer.from(forge.asn1.toDer(info).getBytes(), "binary");
  const signature = sign("sha256", toBeSigned, keys.privateKeyPem.reveal());
  csr.certificationRequestInfo = info;
  csr.signatureOid = forge.pki.oids.sha256WithRSAEncryption ?? "1.2.840.113549.1.1.11";
  csr.signature = signature.toString("binary");
  return forge.pki.certificationRequestToPem(csr);
}
