/**
 * The cloud CA (docs/PROTOCOL.md §1): the single trust anchor of the control plane, the gateways and
 * every connector. It issues
 * - server certificates for the cloud's own listeners (localhost, 127.0.0.1, ::1), and
 * - client certificates from a connector's CSR. The subject is the CA's choice (CN = connector id,
 *   O = group); of the CSR only the verified public key is used, so a connector cannot name itself.
 *
 * Keys are generated natively (node:crypto); forge only lays out certificates (see x509.ts).
 * The CA key is RSA-3072 and lives only in memory: every reference cloud is a new trust root.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import forge from "node-forge";
import { BACKDATE_SECONDS, CA_LIFETIME_SECONDS, SERVER_CERT_TTL_SECONDS } from "./config.ts";
import { verifyCsr } from "./csr.ts";
import { buildCertificate, keyIdentifier, randomSerialHex } from "./x509.ts";

export interface IssuedServerCert {
  readonly certPem: string;
  /** PKCS#8 PEM of the certificate's private key (EC P-256). */
  readonly keyPem: string;
}

export interface ClientCertRequest {
  /** The connector's CSR; its signature and key strength are verified before anything is signed. */
  readonly csrPem: string;
  readonly connectorId: string;
  readonly group: string;
  readonly ttlSeconds: number;
}

export interface IssuedClientCert {
  readonly certPem: string;
  /** Upper-case hex, as node:tls getPeerCertificate() reports it. */
  readonly serialNumber: string;
  /** SHA-256 fingerprint "AA:BB:…", as node:tls reports it. */
  readonly fingerprint256: string;
  readonly notAfter: Date;
  /** e.g. "rsa 3072", for logs. */
  readonly keyDescription: string;
}

const CA_COMMON_NAME = "Connector Reference CA";

/** The provisioning-key pin of a CA: base64url SHA-256 of its DER SubjectPublicKeyInfo. */
export function caPin(certPem: string): string {
  const spki = createPublicKey(certPem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64url");
}

export class CertificateAuthority {
  /** The CA certificate (PEM), served at GET /v1/ca. */
  readonly certPem: string;
  /** base64url SHA-256 of the CA's SubjectPublicKeyInfo, carried in provisioning keys. */
  readonly pin: string;
  readonly #key: KeyObject;
  readonly #subject: forge.pki.CertificateField[] = [{ name: "commonName", value: CA_COMMON_NAME }];
  readonly #keyId: string;
  readonly #notAfter: Date;
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 3072 });
    const spki = publicKey.export({ type: "spki", format: "der" });
    this.#key = privateKey;
    this.#keyId = keyIdentifier(spki);
    this.#notAfter = this.#offset(CA_LIFETIME_SECONDS);
    this.certPem = buildCertificate(
      {
        serialHex: randomSerialHex(randomBytes),
        subject: this.#subject,
        issuer: this.#subject,
        notBefore: this.#offset(-BACKDATE_SECONDS),
        notAfter: this.#notAfter,
        spki,
        extensions: [
          { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
          { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
          { name: "subjectKeyIdentifier", value: octetString(this.#keyId) },
        ],
      },
      this.#key,
    );
    this.pin = caPin(this.certPem);
  }

  /** A TLS server certificate for the cloud's loopback listeners, with a fresh EC P-256 key. */
  issueServerCert(): IssuedServerCert {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const certPem = this.#sign(publicKey.export({ type: "spki", format: "der" }), {
      subject: [{ name: "commonName", value: "localhost" }],
      ttlSeconds: SERVER_CERT_TTL_SECONDS,
      extensions: [
        { name: "extKeyUsage", serverAuth: true },
        {
          name: "subjectAltName",
          altNames: [
            { type: 2, value: "localhost" },
            { type: 7, ip: "127.0.0.1" },
            { type: 7, ip: "::1" },
          ],
        },
      ],
    });
    return { certPem, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
  }

  /** A client certificate for a connector; throws CloudApiError CSR_INVALID / CSR_WEAK_KEY for a bad CSR. */
  issueClientCert(request: ClientCertRequest): IssuedClientCert {
    const csr = verifyCsr(request.csrPem);
    const certPem = this.#sign(csr.spki, {
      subject: [
        { name: "commonName", value: request.connectorId },
        { name: "organizationName", value: request.group },
      ],
      ttlSeconds: request.ttlSeconds,
      extensions: [{ name: "extKeyUsage", clientAuth: true }],
    });
    const x509 = new X509Certificate(certPem);
    return {
      certPem,
      serialNumber: x509.serialNumber.toUpperCase(),
      fingerprint256: x509.fingerprint256,
      notAfter: new Date(x509.validTo),
      keyDescription: csr.keyDescription,
    };
  }

  /** Signs a leaf certificate; no leaf outlives the CA. */
  #sign(
    spki: Buffer,
    leaf: { subject: forge.pki.CertificateField[]; ttlSeconds: number; extensions: object[] },
  ): string {
    const wanted = this.#offset(leaf.ttlSeconds);
    return buildCertificate(
      {
        serialHex: randomSerialHex(randomBytes),
        subject: leaf.subject,
        issuer: this.#subject,
        notBefore: this.#offset(-BACKDATE_SECONDS),
        notAfter: new Date(Math.min(wanted.getTime(), this.#notAfter.getTime())),
        spki,
        extensions: [
          { name: "basicConstraints", cA: false, critical: true },
          { name: "keyUsage", digitalSignature: true, critical: true },
          { name: "authorityKeyIdentifier", keyIdentifier: this.#keyId },
          ...leaf.extensions,
        ],
      },
      this.#key,
    );
  }

  #offset(seconds: number): Date {
    return new Date(this.#now() + seconds * 1000);
  }
}

function octetString(bytes: string): forge.asn1.Asn1 {
  return forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, bytes);
}
