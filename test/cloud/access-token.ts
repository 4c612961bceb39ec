/**
 * Access tokens of the reference cloud (docs/PROTOCOL.md §3.5): short-lived, signed by the cloud with
 * Ed25519, and bound to the client certificate they were issued to (its SHA-256 fingerprint is in the
 * claims, like RFC 8705 `cnf.x5t#S256`), so a token copied off one connector is useless with another
 * certificate, and a revoked connector loses its tunnels once its last token expires even if no gateway
 * is told of the revocation.
 *
 * Wire form: `v1.<base64url(JSON claims)>.<base64url(Ed25519 signature over "v1.<claims>")>`, at most
 * MAX_TOKEN_BYTES. The control plane holds the private key (`TokenIssuer`); gateways get the public key
 * and verify token and certificate together (`verifyAccessToken`).
 */
import {
  createHash,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
  createPublicKey,
  type X509Certificate,
} from "node:crypto";
import * as v from "valibot";

export const TOKEN_VERSION = "v1";
/** Same bound as a TOKEN_UPDATE frame's payload (docs/PROTOCOL.md §5.2). */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** Ten minutes: a revoked connector keeps a tunnel at most this long on a gateway that was not told. */
export const DEFAULT_TOKEN_TTL_SECONDS = 10 * 60;
/**
 * How far the clocks of the control plane (which sets iat/exp) and a gateway may disagree. Small, because
 * it widens what a gateway takes: a token may be issued this far in the future and expire at most
 * max TTL + this from now.
 */
export const TOKEN_CLOCK_SKEW_SECONDS = 30;

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const Seconds = v.pipe(v.number(), v.integer(), v.minValue(0));

export const TokenClaimsSchema = v.object({
  /** Format version of the claims: always 1 for `v1.` tokens. */
  ver: v.literal(1),
  /** The connector id (its certificate's CN). */
  sub: Id,
  /** The connector's group (its certificate's O). */
  grp: Id,
  /** Confirmation: base64url SHA-256 of the DER of the client certificate the token was issued to. */
  cnf: v.object({ "x5t#S256": v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{43}$/)) }),
  /** Issued at and expires at, seconds since the epoch. */
  iat: Seconds,
  exp: Seconds,
});
export type TokenClaims = v.InferOutput<typeof TokenClaimsSchema>;

/** base64url SHA-256 of a certificate's DER: what binds a token to it. */
export function certificateThumbprint(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("base64url");
}

export interface IssuedToken {
  readonly token: string;
  readonly expiresAt: Date;
  /** Seconds from now until `expiresAt` (ms precision): what the connector schedules by. */
  readonly expiresIn: number;
}

/** The control plane's side: holds the signing key, makes tokens. */
export class TokenIssuer {
  readonly #privateKey: KeyObject;
  /** SPKI PEM of the verifying key, handed to gateways. */
  readonly publicKeyPem: string;

  constructor(private readonly options: { ttlSeconds: number; now?: () => number }) {
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1)
      throw new RangeError("token TTL must be a whole number of seconds ≥ 1");
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    this.#privateKey = privateKey;
    this.publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  }

  get ttlSeconds(): number {
    return this.options.ttlSeconds;
  }

  issue(subject: { connectorId: string; group: string; certificateDer: Uint8Array }): IssuedToken {
    const nowMs = (this.options.now ?? Date.now)();
    const iat = Math.floor(nowMs / 1000);
    const claims: TokenClaims = {
      ver: 1,
      sub: subject.connectorId,
      grp: subject.group,
      cnf: { "x5t#S256": certificateThumbprint(subject.certificateDer) },
      iat,
      exp: iat + this.options.ttlSeconds,
    };
    return {
      token: signToken(claims, this.#privateKey),
      expiresAt: new Date(claims.exp * 1000),
      expiresIn: Math.max(0, claims.exp * 1000 - nowMs) / 1000,
    };
  }
}

/** Signs arbitrary claims (the issuer, and tests that need a token the issuer would never make). */
export function signToken(claims: unknown, privateKey: KeyObject): string {
  const signed = `${TOKEN_VERSION}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${signed}.${sign(null, Buffer.from(signed), privateKey).toString("base64url")}`;
}

export type TokenVerdict = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

export interface VerifyContext {
  /** The cloud's Ed25519 public key: any other kind is refused (no algorithm confusion). */
  readonly publicKey: KeyObject;
  /** The verified client certificate of the connection the token arrived on. */
  readonly certificate: X509Certificate;
  /** The connector id the gateway read from that certificate's CN. */
  readonly connectorId: string;
  /** The connector's group: that certificate's O. */
  readonly group: string;
  /** The longest lifetime (exp − iat) the control plane issues: a longer one was not made by it. */
  readonly maxTtlSeconds: number;
  readonly nowMs: number;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Token and certificate together: signature (Ed25519 only), version, lifetime and expiry against the
 * cloud's max TTL, certificate binding, connector id and group.
 */
export function verifyAccessToken(token: string | undefined, ctx: VerifyContext): TokenVerdict {
  if (ctx.publicKey.asymmetricKeyType !== "ed25519")
    return { ok: false, reason: "the token verification key is not Ed25519" };
  if (token === undefined || token === "") return { ok: false, reason: "no access token" };
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return { ok: false, reason: "access token too long" };
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== TOKEN_VERSION) return { ok: false, reason: "not a v1 access token" };
  const [version, body, signature] = parts as [string, string, string];
  if (!B64URL.test(body) || !B64URL.test(signature)) return { ok: false, reason: "access token is not base64url" };
  if (!verify(null, Buffer.from(`${version}.${body}`), ctx.publicKey, Buffer.from(signature, "base64url"))) {
    return { ok: false, reason: "access token signature does not verify" };
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "access token claims are not JSON" };
  }
  const parsed = v.safeParse(TokenClaimsSchema, json);
  if (!parsed.success) return { ok: false, reason: "access token claims do not match the format" };
  const claims = parsed.output;
  if (claims.exp * 1000 <= ctx.nowMs) return { ok: false, reason: "access token expired" };
  // A token the issuer would never make (a leaked or misused key, a cloud bug) must not buy a long tunnel.
  if (claims.exp <= claims.iat || claims.exp - claims.iat > ctx.maxTtlSeconds)
    return { ok: false, reason: "access token lifetime is not one the cloud issues" };
  // With the lifetime check, this also keeps exp within max TTL + skew from now.
  if (claims.iat * 1000 > ctx.nowMs + TOKEN_CLOCK_SKEW_SECONDS * 1000)
    return { ok: false, reason: "access token is issued in the future" };
  if (claims.cnf["x5t#S256"] !== certificateThumbprint(ctx.certificate.raw)) {
    return { ok: false, reason: "access token was issued to another certificate" };
  }
  if (claims.sub !== ctx.connectorId) return { ok: false, reason: "access token names another connector" };
  if (claims.grp !== ctx.group) return { ok: false, reason: "access token names another group" };
  return { ok: true, claims };
}

export const publicKeyFromPem = (pem: string): KeyObject => createPublicKey(pem);

/** The token of an `Authorization: Bearer …` header value, if that is what it holds. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}
