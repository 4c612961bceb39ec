// @ts-check
/**
 * Access-token checks of the interop gateway, from docs/PROTOCOL.md §3.5 and §4: the reference cloud's
 * format `v1.<base64url claims>.<base64url Ed25519 signature over "v1.<claims part>">`, bound to the
 * client certificate of the connection (`cnf["x5t#S256"]`), naming its connector id (CN) and group (O).
 */
import { createHash, createPublicKey, verify } from "node:crypto";

/** §3.5: a token's `iat` may be at most 30 s ahead of the gateway's clock. */
const CLOCK_SKEW_SECONDS = 30;

/**
 * Why `token` is not valid for the connection with certificate `certDer` (CN `connectorId`, O `group`), or
 * undefined when it is.
 * @param {string | undefined} token
 * @param {{ certDer: Buffer, connectorId: string, group: string }} peer
 * @param {{ publicKeyPem: string, ttlSeconds: number, nowSeconds?: number }} keys
 */
export function tokenProblem(token, peer, keys) {
  if (!token) return "no token";
  if (token.length > 8 * 1024 || !/^[\x21-\x7e]+$/.test(token)) return "not printable ASCII of at most 8 KiB";
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== "v1") return "not v1.<claims>.<signature>";
  const signed = Buffer.from(`v1.${parts[1]}`, "ascii");
  const signature = Buffer.from(parts[2] ?? "", "base64url");
  if (!verify(null, signed, createPublicKey(keys.publicKeyPem), signature)) return "signature does not verify";
  /** @type {any} */
  let claims;
  try {
    claims = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString("utf8"));
  } catch {
    return "claims are not JSON";
  }
  const now = keys.nowSeconds ?? Date.now() / 1000;
  const thumbprint = createHash("sha256").update(peer.certDer).digest("base64url");
  if (claims?.ver !== 1) return "ver is not 1";
  if (claims.sub !== peer.connectorId) return "sub is not the certificate's connector id";
  if (claims.grp !== peer.group) return "grp is not the certificate's group";
  if (claims.cnf?.["x5t#S256"] !== thumbprint) return "bound to another certificate";
  if (typeof claims.iat !== "number" || typeof claims.exp !== "number") return "no iat/exp";
  if (claims.exp <= now) return "expired";
  if (claims.exp - claims.iat > keys.ttlSeconds) return "lifetime longer than the cloud issues";
  if (claims.iat > now + CLOCK_SKEW_SECONDS) return "issued in the future";
  return undefined;
}

/** The claims of a token (no checks): for tests that compare two tokens. @param {string} token */
export function tokenClaims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
}
