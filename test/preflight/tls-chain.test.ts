/** Judging a presented chain against the CA pin: the verdict names interception, a wrong name or dates. */
import { describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { commonName, judgeChain } from "../../src/preflight/tls-chain.ts";
import { createTestCa } from "../support/test-pki.ts";
import { misfitCertificate } from "../support/tls-misfits.ts";

const cloudCa = createTestCa("Cloud CA");
const x509 = (pem: string) => new X509Certificate(pem);
const NOW = new Date();

describe("judgeChain", () => {
  test("a leaf of the pinned CA, the CA in the chain: ok, the anchor is that CA", () => {
    const verdict = judgeChain(
      [x509(cloudCa.issueServer().cert), x509(cloudCa.cert)],
      cloudCa.pin,
      undefined,
      "127.0.0.1",
      NOW,
    );
    expect(verdict.ok).toBe(true);
    if (verdict.ok) expect(verdict.ca.fingerprint256).toBe(x509(cloudCa.cert).fingerprint256);
  });

  test("the leaf alone is ok when the CA is known from the identity", () => {
    const leaf = x509(cloudCa.issueServer().cert);
    expect(judgeChain([leaf], cloudCa.pin, cloudCa.cert, "localhost", NOW).ok).toBe(true);
    expect(judgeChain([leaf], cloudCa.pin, undefined, "localhost", NOW)).toMatchObject({
      ok: false,
      problem: "interception",
    });
  });

  test("another CA's leaf with the pinned CA appended to the chain: interception, named by the leaf's issuer", () => {
    const foreign = misfitCertificate(cloudCa, "other-ca");
    expect(judgeChain([x509(foreign.cert), x509(cloudCa.cert)], cloudCa.pin, cloudCa.cert, "127.0.0.1", NOW)).toEqual({
      ok: false,
      problem: "interception",
      detail: "Inspection CA",
    });
  });

  test("signed by the pinned CA for another name: hostname", () => {
    const verdict = judgeChain(
      [x509(misfitCertificate(cloudCa, "wrong-name").cert)],
      cloudCa.pin,
      cloudCa.cert,
      "127.0.0.1",
      NOW,
    );
    expect(verdict).toMatchObject({ ok: false, problem: "hostname" });
  });

  test("expired by this host's clock: dates", () => {
    const verdict = judgeChain(
      [x509(misfitCertificate(cloudCa, "expired").cert)],
      cloudCa.pin,
      cloudCa.cert,
      "127.0.0.1",
      NOW,
    );
    expect(verdict).toMatchObject({ ok: false, problem: "dates" });
  });

  test("no certificate at all", () => {
    expect(judgeChain([], cloudCa.pin, cloudCa.cert, "127.0.0.1", NOW)).toMatchObject({ ok: false, problem: "empty" });
  });

  test("commonName reads the CN, else the whole name on one line", () => {
    expect(commonName("C=US\nO=Corp\nCN=Corp Inspection CA")).toBe("Corp Inspection CA");
    expect(commonName("C=US\nO=Corp")).toBe("C=US, O=Corp");
  });
});
