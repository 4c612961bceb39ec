import { describe, expect, test } from "bun:test";
import { verifyCsr } from "./csr.ts";
import { CloudApiError } from "./errors.ts";
import { ecKeys, ed25519Keys, forgeCsr, nativeCsr, rsaKeys, withBadSignature } from "./fixtures.ts";

const rsa3072 = rsaKeys(3072);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CloudApiError) return `${err.status} ${err.code}`;
    throw err;
  }
  return undefined;
}

describe("verifyCsr", () => {
  test("accepts an RSA-3072 CSR made by node-forge, the way the connector makes it", () => {
    const csr = verifyCsr(forgeCsr(rsa3072));
    expect(csr.keyDescription).toBe("rsa 3072");
    expect(csr.spki.equals(rsa3072.publicKey.export({ type: "spki", format: "der" }))).toBe(true);
  });

  test("accepts EC P-256 and P-384 CSRs", () => {
    expect(verifyCsr(nativeCsr(ecKeys("prime256v1"))).keyDescription).toBe("ec prime256v1");
    expect(verifyCsr(nativeCsr(ecKeys("secp384r1"), { hash: "sha384" })).keyDescription).toBe("ec secp384r1");
  });

  test("refuses RSA keys under 3072 bits as CSR_WEAK_KEY", () => {
    expect(codeOf(() => verifyCsr(forgeCsr(rsaKeys(2048))))).toBe("400 CSR_WEAK_KEY");
  });

  test("refuses other curves and key types as CSR_WEAK_KEY", () => {
    expect(codeOf(() => verifyCsr(nativeCsr(ecKeys("secp521r1"), { hash: "sha384" })))).toBe("400 CSR_WEAK_KEY");
    expect(codeOf(() => verifyCsr(nativeCsr(ed25519Keys())))).toBe("400 CSR_WEAK_KEY");
  });

  test("refuses a CSR whose signature does not verify as CSR_INVALID", () => {
    expect(codeOf(() => verifyCsr(withBadSignature(forgeCsr(rsa3072))))).toBe("400 CSR_INVALID");
    expect(codeOf(() => verifyCsr(withBadSignature(nativeCsr(ecKeys("prime256v1")))))).toBe("400 CSR_INVALID");
  });

  test("refuses a CSR signed with SHA-1", () => {
    expect(codeOf(() => verifyCsr(nativeCsr(rsa3072, { hash: "sha1" })))).toBe("400 CSR_INVALID");
  });

  test("refuses text that is not a CSR, and truncated DER, as CSR_INVALID", () => {
    const good = forgeCsr(rsa3072);
    const der = Buffer.from(good.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    const truncated = `-----BEGIN CERTIFICATE REQUEST-----\n${der.subarray(0, 300).toString("base64")}\n-----END CERTIFICATE REQUEST-----`;
    expect(codeOf(() => verifyCsr("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"))).toBe(
      "400 CSR_INVALID",
    );
    expect(codeOf(() => verifyCsr(truncated))).toBe("400 CSR_INVALID");
    expect(codeOf(() => verifyCsr(good.replace(/REQUEST-----\r?\n/, "$&AAAA")))).toBe("400 CSR_INVALID");
  });
});
