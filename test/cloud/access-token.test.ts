import { describe, expect, test } from "bun:test";
import { generateKeyPairSync, sign, X509Certificate } from "node:crypto";
import { createTestCa } from "../support/test-pki.ts";
import {
  bearerToken,
  certificateThumbprint,
  MAX_TOKEN_BYTES,
  publicKeyFromPem,
  signToken,
  TOKEN_CLOCK_SKEW_SECONDS,
  TokenIssuer,
  verifyAccessToken,
} from "./access-token.ts";
import { TokenVerifier } from "./gateway/tunnel-token.ts";

const ca = createTestCa("Token CA");
const mine = new X509Certificate(ca.issueClient({ commonName: "c-mine", organization: "default" }).cert);
const theirs = new X509Certificate(ca.issueClient({ commonName: "c-theirs", organization: "default" }).cert);
const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const issuer = new TokenIssuer({ ttlSeconds: 60, now: () => T0 });
const publicKey = publicKeyFromPem(issuer.publicKeyPem);
const ctx = {
  publicKey,
  certificate: mine,
  connectorId: "c-mine",
  group: "default",
  maxTtlSeconds: 60,
  nowMs: T0 + 1_000,
};
const issued = issuer.issue({ connectorId: "c-mine", group: "default", certificateDer: mine.raw });
const claims = {
  ver: 1 as const,
  sub: "c-mine",
  grp: "default",
  cnf: { "x5t#S256": certificateThumbprint(mine.raw) },
  iat: T0 / 1000,
  exp: T0 / 1000 + 60,
};
const refused = (token: string | undefined, over: Partial<typeof ctx> = {}) => {
  const verdict = verifyAccessToken(token, { ...ctx, ...over });
  return verdict.ok ? "accepted" : verdict.reason;
};

describe("verifyAccessToken: token and certificate together", () => {
  test("an issued token verifies with the certificate it was issued to, until it expires", () => {
    expect(issued.expiresAt.getTime()).toBe(T0 + 60_000);
    expect(issued.expiresIn).toBe(60);
    expect(verifyAccessToken(issued.token, ctx)).toEqual({ ok: true, claims });
    expect(refused(issued.token, { nowMs: T0 + 59_999 })).toBe("accepted");
    expect(refused(issued.token, { nowMs: T0 + 60_000 })).toBe("access token expired");
  });

  test("a bad signature is refused: another key, a changed claim, a truncated signature", () => {
    const stranger = generateKeyPairSync("ed25519").privateKey;
    expect(refused(signToken(claims, stranger))).toBe("access token signature does not verify");
    const [version, , signature] = issued.token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 3600 })).toString("base64url");
    expect(refused(`${version}.${forged}.${signature}`)).toBe("access token signature does not verify");
    expect(refused(issued.token.slice(0, -4))).toBe("access token signature does not verify");
  });

  test("a token issued to another certificate is refused, even for the same connector id", () => {
    expect(refused(issued.token, { certificate: theirs })).toBe("access token was issued to another certificate");
  });

  test("a token whose connector is not the certificate's CN is refused", () => {
    const token = issuer.issue({ connectorId: "c-theirs", group: "default", certificateDer: mine.raw }).token;
    expect(refused(token)).toBe("access token names another connector");
  });

  test("a lifetime the cloud never issues is refused: exp − iat over its max TTL, or iat in the future beyond the skew", () => {
    const key = generateKeyPairSync("ed25519");
    const t0 = T0 / 1000;
    const at = (iat: number, exp: number, over: Partial<typeof ctx> = {}) =>
      refused(signToken({ ...claims, iat, exp }, key.privateKey), { publicKey: key.publicKey, nowMs: T0, ...over });
    expect(at(t0, t0 + 60)).toBe("accepted");
    expect(at(t0, t0 + 61)).toBe("access token lifetime is not one the cloud issues");
    expect(at(t0, t0 + 10 * 365 * 86_400)).toBe("access token lifetime is not one the cloud issues");
    expect(at(t0 + 30, t0 + 30)).toBe("access token lifetime is not one the cloud issues");
    expect(at(t0, t0 + 60, { maxTtlSeconds: 59 })).toBe("access token lifetime is not one the cloud issues");
    // iat up to the skew ahead of the gateway's clock is taken, so exp is at most max TTL + skew from now.
    expect(at(t0 + TOKEN_CLOCK_SKEW_SECONDS, t0 + TOKEN_CLOCK_SKEW_SECONDS + 60)).toBe("accepted");
    expect(at(t0 + TOKEN_CLOCK_SKEW_SECONDS + 1, t0 + TOKEN_CLOCK_SKEW_SECONDS + 2)).toBe(
      "access token is issued in the future",
    );
    expect(at(t0 + TOKEN_CLOCK_SKEW_SECONDS + 1, t0 + TOKEN_CLOCK_SKEW_SECONDS + 61)).toBe(
      "access token is issued in the future",
    );
  });

  test("a token naming another group than the certificate's O is refused", () => {
    const token = issuer.issue({ connectorId: "c-mine", group: "other", certificateDer: mine.raw }).token;
    expect(refused(token)).toBe("access token names another group");
    expect(refused(issued.token, { group: "other" })).toBe("access token names another group");
  });

  test("a verification key that is not Ed25519 is refused: by verifyAccessToken, and by the gateway's TokenVerifier at start", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect(refused(issued.token, { publicKey: rsa.publicKey })).toBe("the token verification key is not Ed25519");
    const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(() => new TokenVerifier(rsaPem, 60)).toThrow("must be Ed25519");
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    expect(() => new TokenVerifier(ec, 60)).toThrow("must be Ed25519");
  });

  test("the gateway's TokenVerifier checks the certificate's O and the max TTL it was given", () => {
    const verifier = new TokenVerifier(issuer.publicKeyPem, 60, () => T0 + 1_000);
    expect(verifier.check(issued.token, mine, "c-mine").ok).toBe(true);
    const otherGroup = new X509Certificate(ca.issueClient({ commonName: "c-mine", organization: "other" }).cert);
    const forOther = issuer.issue({ connectorId: "c-mine", group: "default", certificateDer: otherGroup.raw }).token;
    expect(verifier.check(forOther, otherGroup, "c-mine")).toEqual({
      ok: false,
      reason: "access token names another group",
    });
    const noGroup = new X509Certificate(ca.issueClient({ commonName: "c-mine" }).cert);
    expect(
      verifier.check(
        issuer.issue({ connectorId: "c-mine", group: "default", certificateDer: noGroup.raw }).token,
        noGroup,
        "c-mine",
      ),
    ).toEqual({ ok: false, reason: "client certificate names no group" });
    expect(new TokenVerifier(issuer.publicKeyPem, 59, () => T0 + 1_000).check(issued.token, mine, "c-mine")).toEqual({
      ok: false,
      reason: "access token lifetime is not one the cloud issues",
    });
  });

  test("missing, oversized, other versions and malformed claims are refused", () => {
    const key = generateKeyPairSync("ed25519");
    const local = { publicKey: key.publicKey };
    expect(refused(undefined)).toBe("no access token");
    expect(refused("")).toBe("no access token");
    expect(refused(`v1.${"A".repeat(MAX_TOKEN_BYTES)}.AA`)).toBe("access token too long");
    expect(refused(issued.token.replace(/^v1\./, "v2."))).toBe("not a v1 access token");
    expect(refused("v1.only-two")).toBe("not a v1 access token");
    expect(refused("v1.a+b.c")).toBe("access token is not base64url");
    expect(refused(signToken({ ...claims, ver: 2 }, key.privateKey), local)).toBe(
      "access token claims do not match the format",
    );
    expect(refused(signToken({ ...claims, cnf: undefined }, key.privateKey), local)).toBe(
      "access token claims do not match the format",
    );
    const notJson = `v1.${Buffer.from("{").toString("base64url")}`;
    expect(refused(`${notJson}.${sign(null, Buffer.from(notJson), key.privateKey).toString("base64url")}`, local)).toBe(
      "access token claims are not JSON",
    );
  });

  test("bearerToken reads only `Bearer <token>`", () => {
    expect(bearerToken("Bearer abc.def")).toBe("abc.def");
    expect(bearerToken("bearer  abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
