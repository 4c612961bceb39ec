import { describe, expect, test } from "bun:test";
import { generateKeyPairSync, sign, X509Certificate } from "node:crypto";
import { createTestCa } from "../support/test-pki.ts";
import { bearerToken, certificateThumbprint, MAX_TOKEN_BYTES, publicKeyFromPem, signToken, TokenIssuer, verifyAccessToken } from "./access-token.ts";

const ca = createTestCa("Token CA");
const mine = new X509Certificate(ca.issueClient({ commonName: "c-mine", organization: "default" }).cert);
const theirs = new X509Certificate(ca.issueClient({ commonName: "c-theirs", organization: "default" }).cert);
const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const issuer = new TokenIssuer({ ttlSeconds: 60, now: () => T0 });
const publicKey = publicKeyFromPem(issuer.publicKeyPem);
const ctx = { publicKey, certificate: mine, connectorId: "c-mine", nowMs: T0 + 1_000 };
const issued = issuer.issue({ connectorId: "c-mine", group: "default", certificateDer: mine.raw });
const claims = { ver: 1 as const, sub: "c-mine", grp: "default", cnf: { "x5t#S256": certificateThumbprint(mine.raw) }, iat: T0 / 1000, exp: T0 / 1000 + 60 };
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

  test("missing, oversized, other versions and malformed claims are refused", () => {
    const key = generateKeyPairSync("ed25519");
    const local = { publicKey: key.publicKey };
    expect(refused(undefined)).toBe("no access token");
    expect(refused("")).toBe("no access token");
    expect(refused(`v1.${"A".repeat(MAX_TOKEN_BYTES)}.AA`)).toBe("access token too long");
    expect(refused(issued.token.replace(/^v1\./, "v2."))).toBe("not a v1 access token");
    expect(refused("v1.only-two")).toBe("not a v1 access token");
    expect(refused("v1.a+b.c")).toBe("access token is not base64url");
    expect(refused(signToken({ ...claims, ver: 2 }, key.privateKey), local)).toBe("access token claims do not match the format");
    expect(refused(signToken({ ...claims, cnf: undefined }, key.privateKey), local)).toBe("access token claims do not match the format");
    const notJson = `v1.${Buffer.from("{").toString("base64url")}`;
    expect(refused(`${notJson}.${sign(null, Buffer.from(notJson), key.privateKey).toString("base64url")}`, local)).toBe("access token claims are not JSON");
  });

  test("bearerToken reads only `Bearer <token>`", () => {
    expect(bearerToken("Bearer abc.def")).toBe("abc.def");
    expect(bearerToken("bearer  abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
