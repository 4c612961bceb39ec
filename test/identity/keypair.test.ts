import { describe, expect, test } from "bun:test";
import { createPublicKey, verify } from "node:crypto";
import forge from "node-forge";
import { buildCsr, generateKeyPair } from "../../src/identity/keypair.ts";

// One real RSA-3072 pair for the file (≈0.2-1 s); the small-key pair checks the injectable size.
const keys = await generateKeyPair();

function spkiDer(pem: string): Buffer {
  return createPublicKey(pem).export({ type: "spki", format: "der" });
}

describe("generateKeyPair", () => {
  test("makes an RSA-3072 pair whose private key is wrapped as a Secret", () => {
    const pub = createPublicKey(keys.publicKeyPem);
    expect(pub.asymmetricKeyType).toBe("rsa");
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(String(keys.privateKeyPem)).toBe("[redacted]");
    expect(JSON.stringify({ k: keys.privateKeyPem })).not.toContain("PRIVATE KEY");
    expect(keys.privateKeyPem.reveal()).toStartWith("-----BEGIN PRIVATE KEY-----");
  });

  test("the private key derives the public key", () => {
    expect(spkiDer(keys.privateKeyPem.reveal()).equals(spkiDer(keys.publicKeyPem))).toBe(true);
  });
});

describe("buildCsr", () => {
  const pem = buildCsr(keys, "host-1.example");
  const csr = forge.pki.certificationRequestFromPem(pem);

  test("produces a PEM PKCS#10 request", () => {
    expect(pem).toStartWith("-----BEGIN CERTIFICATE REQUEST-----");
  });

  test("carries the subject CN", () => {
    expect(csr.subject.getField("CN")?.value).toBe("host-1.example");
  });

  test("carries exactly the generated public key", () => {
    const csrKeyPem = forge.pki.publicKeyToPem(csr.publicKey as forge.pki.rsa.PublicKey);
    expect(spkiDer(csrKeyPem).equals(spkiDer(keys.publicKeyPem))).toBe(true);
  });

  test("its signature verifies with forge", () => {
    expect(csr.verify()).toBe(true);
  });

  test("its signature verifies natively over the DER request info with SHA-256", () => {
    const info = forge.asn1.toDer(csr.certificationRequestInfo!).getBytes();
    const signature = Buffer.from(String(csr.signature), "binary");
    expect(csr.signatureOid).toBe(forge.pki.oids.sha256WithRSAEncryption ?? "missing");
    expect(verify("sha256", Buffer.from(info, "binary"), keys.publicKeyPem, signature)).toBe(true);
  });

  test("a CSR whose info was altered no longer verifies (the check can fail)", () => {
    const der = Buffer.from(forge.asn1.toDer(forge.pki.certificationRequestToAsn1(csr)).getBytes(), "binary");
    // The CN value's last byte sits inside the request info: flip it.
    const at = der.indexOf(Buffer.from("host-1.example")) + 1;
    der[at] = der[at]! ^ 0x01;
    const tampered = forge.pki.certificationRequestFromAsn1(forge.asn1.fromDer(der.toString("binary")));
    expect(tampered.verify()).toBe(false);
  });

  test("a non-ASCII name survives the round trip and still verifies", () => {
    const back = forge.pki.certificationRequestFromPem(buildCsr(keys, "usine-café-1"));
    expect(back.verify()).toBe(true);
    const cn = back.subject.getField("CN");
    expect(cn?.valueTagClass).toBe(forge.asn1.Type.UTF8);
    expect(forge.util.decodeUtf8(String(cn?.value))).toBe("usine-café-1");
  });

  test("the PEM never contains the private key", () => {
    const body = keys.privateKeyPem.reveal().split("\n")[1]!;
    expect(pem).not.toContain(body);
  });
});
