/**
 * Throwaway PKI for tests: a CA that issues server and client certificates, made in memory with
 * native key generation (node:crypto) and node-forge for the X.509 structures. Nothing touches disk.
 *
 * Keys are RSA-2048 to keep tests fast; production key-size rules are not exercised here. Each
 * `createTestCa()` is an independent trust root, so "a certificate from another CA" is just a second
 * call.
 */
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import forge from "node-forge";

export interface IssuedCert {
  /** PEM of the leaf certificate. */
  readonly cert: string;
  /** PEM (PKCS#8) of its private key. */
  readonly key: string;
}

export interface IssueOptions {
  /** Subject CN; for clients the connector id by convention. */
  commonName: string;
  /** Subject O; for clients the connector group by convention. */
  organization?: string;
  /** DNS subjectAltNames (server certificates). */
  dnsNames?: readonly string[];
  /** IP subjectAltNames (server certificates). */
  ips?: readonly string[];
  notBefore?: Date;
  notAfter?: Date;
}

export interface TestCa extends IssuedCert {
  /** SHA-256 of the CA's DER SubjectPublicKeyInfo, base64url without padding (the provisioning-key pin). */
  readonly pin: string;
  /** A TLS server certificate, by default for localhost, 127.0.0.1 and ::1. */
  issueServer(options?: Partial<IssueOptions>): IssuedCert;
  /** A TLS client certificate (extKeyUsage clientAuth). */
  issueClient(options: IssueOptions): IssuedCert;
  /** Any certificate signed by this CA from a public key (e.g. one taken from a CSR). */
  signPublicKey(publicKeyPem: string, options: IssueOptions & { usage: "server" | "client" }): string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function newKeyPair(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
}

function serial(): string {
  const bytes = randomBytes(16);
  // Positive (top bit clear) and never a leading zero byte: DER wants the shortest INTEGER, and BoringSSL
  // refuses `00 xx` with xx < 0x80 (INVALID_INTEGER), which a zero first byte made once in 256 certificates.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString("hex");
}

function subjectAttrs(commonName: string, organization?: string): forge.pki.CertificateField[] {
  const attrs: forge.pki.CertificateField[] = [{ name: "commonName", value: commonName }];
  if (organization !== undefined) attrs.push({ name: "organizationName", value: organization });
  return attrs;
}

function spkiPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64url");
}

/** Creates a new self-signed CA. */
export function createTestCa(commonName = "Test CA"): TestCa {
  const caKeys = newKeyPair();
  const caForgeKey = forge.pki.privateKeyFromPem(caKeys.privateKey);
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = forge.pki.publicKeyFromPem(caKeys.publicKey);
  caCert.serialNumber = serial();
  caCert.validity.notBefore = new Date(Date.now() - DAY_MS);
  caCert.validity.notAfter = new Date(Date.now() + 365 * DAY_MS);
  caCert.setSubject(subjectAttrs(commonName));
  caCert.setIssuer(subjectAttrs(commonName));
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(caForgeKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(caCert);

  const signPublicKey = (publicKeyPem: string, o: IssueOptions & { usage: "server" | "client" }): string => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
    cert.serialNumber = serial();
    cert.validity.notBefore = o.notBefore ?? new Date(Date.now() - DAY_MS);
    cert.validity.notAfter = o.notAfter ?? new Date(Date.now() + 30 * DAY_MS);
    cert.setSubject(subjectAttrs(o.commonName, o.organization));
    cert.setIssuer(caCert.subject.attributes);
    const altNames = [
      ...(o.dnsNames ?? []).map((value) => ({ type: 2, value })),
      ...(o.ips ?? []).map((ip) => ({ type: 7, ip })),
    ];
    const extensions: object[] = [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: o.usage === "server", clientAuth: o.usage === "client" },
      { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ];
    if (altNames.length > 0) extensions.push({ name: "subjectAltName", altNames });
    cert.setExtensions(extensions);
    cert.sign(caForgeKey, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  };

  const issue = (o: IssueOptions, usage: "server" | "client"): IssuedCert => {
    const keys = newKeyPair();
    return { cert: signPublicKey(keys.publicKey, { ...o, usage }), key: keys.privateKey };
  };

  return {
    cert: caPem,
    key: caKeys.privateKey,
    pin: spkiPin(caPem),
    issueServer: (o = {}) =>
      issue(
        {
          commonName: o.commonName ?? "localhost",
          dnsNames: o.dnsNames ?? ["localhost"],
          ips: o.ips ?? ["127.0.0.1", "::1"],
          ...(o.organization !== undefined ? { organization: o.organization } : {}),
          ...(o.notBefore !== undefined ? { notBefore: o.notBefore } : {}),
          ...(o.notAfter !== undefined ? { notAfter: o.notAfter } : {}),
        },
        "server",
      ),
    issueClient: (o) => issue(o, "client"),
    signPublicKey,
  };
}
