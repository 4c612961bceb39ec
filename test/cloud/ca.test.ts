import { describe, expect, test } from "bun:test";
import { createHash, X509Certificate } from "node:crypto";
import { caPin, CertificateAuthority } from "./ca.ts";
import { CloudApiError } from "./errors.ts";
import { ecKeys, forgeCsr, rsaKeys, nativeCsr, withBadSignature } from "./fixtures.ts";

const NOW = Date.UTC(2026, 0, 1);
const ca = new CertificateAuthority({ now: () => NOW });
const caCert = new X509Certificate(ca.certPem);
const clientKeys = rsaKeys(3072);
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

describe("CertificateAuthority", () => {
  test("its certificate is a self-signed CA named Connector Reference CA", () => {
    expect(caCert.subject).toBe("CN=Connector Reference CA");
    expect(caCert.issuer).toBe(caCert.subject);
    expect(caCert.ca).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(caCert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
  });

  test("its pin is the base64url SHA-256 of the certificate's DER SubjectPublicKeyInfo", () => {
    const spki = caCert.publicKey.export({ type: "spki", format: "der" });
    const expected = createHash("sha256").update(spki).digest("base64url");
    expect(ca.pin).toBe(expected);
    expect(caPin(ca.certPem)).toBe(expected);
    expect(ca.pin).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test("a client certificate's subject is the CA's choice, even when the CSR asks for another", () => {
    const issued = ca.issueClientCert({
      csrPem: forgeCsr(clientKeys, "admin"),
      connectorId: "c-0123",
      group: "site-a",
      ttlSeconds: 3600,
    });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject).toBe("CN=c-0123\nO=site-a");
    expect(cert.subject).not.toContain("admin");
    expect(cert.issuer).toBe(caCert.subject);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
  });

  test("a client certificate certifies the CSR's key, for client authentication only, for the requested lifetime", () => {
    const issued = ca.issueClientCert({
      csrPem: forgeCsr(clientKeys),
      connectorId: "c-1",
      group: "default",
      ttlSeconds: 90,
    });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.publicKey.export({ type: "spki", format: "der" })).toEqual(
      clientKeys.publicKey.export({ type: "spki", format: "der" }),
    );
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert.ca).toBe(false);
    expect(new Date(cert.validTo).getTime()).toBe(NOW + 90_000);
    expect(issued.notAfter.getTime()).toBe(NOW + 90_000);
    expect(issued.serialNumber).toBe(cert.serialNumber.toUpperCase());
    expect(issued.fingerprint256).toBe(cert.fingerprint256);
  });

  test("no client certificate outlives the CA", () => {
    const issued = ca.issueClientCert({
      csrPem: forgeCsr(clientKeys),
      connectorId: "c-2",
      group: "default",
      ttlSeconds: 10 * 365 * 86400,
    });
    expect(issued.notAfter.getTime()).toBe(new Date(caCert.validTo).getTime());
  });

  test("an EC P-256 CSR gets a certificate for its EC key", () => {
    const keys = ecKeys("prime256v1");
    const cert = new X509Certificate(
      ca.issueClientCert({ csrPem: nativeCsr(keys), connectorId: "c-ec", group: "g", ttlSeconds: 60 }).certPem,
    );
    expect(cert.publicKey.asymmetricKeyType).toBe("ec");
    expect(cert.verify(caCert.publicKey)).toBe(true);
  });

  test("nothing is signed for a CSR whose signature does not verify", () => {
    const attempt = () =>
      ca.issueClientCert({
        csrPem: withBadSignature(forgeCsr(clientKeys)),
        connectorId: "c-3",
        group: "g",
        ttlSeconds: 60,
      });
    expect(attempt).toThrow(CloudApiError);
    expect(attempt).toThrow(/signature/);
  });

  test("a server certificate covers localhost, 127.0.0.1 and ::1 and chains to the CA", () => {
    const { certPem } = ca.issueServerCert();
    const cert = new X509Certificate(certPem);
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkIP("::1")).toBe("::1");
    expect(cert.verify(caCert.publicKey)).toBe(true);
  });
});
