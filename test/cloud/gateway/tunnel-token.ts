/**
 * The access token of one gateway tunnel (docs/PROTOCOL.md §4, §5.8): checked at the upgrade together
 * with the client certificate, replaced by each valid TOKEN_UPDATE, and watched: when it expires without
 * a valid update, `onExpired` runs (the tunnel sends GO_AWAY AUTH_EXPIRED and closes shortly after).
 * An invalid TOKEN_UPDATE is reported to `onInvalid` (the tunnel is closed): a connector that sends a
 * token it was not issued is not one to keep talking to.
 */
import type { KeyObject, X509Certificate } from "node:crypto";
import { publicKeyFromPem, verifyAccessToken, type TokenVerdict } from "../access-token.ts";

/** Timers cap at 2^31 − 1 ms; a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The group a connector certificate names: its subject's O (the CA writes it, never the CSR). */
export function organization(certificate: X509Certificate): string | undefined {
  return /^O=(.+)$/m.exec(certificate.subject)?.[1]?.trim() || undefined;
}

/**
 * Verifies tokens with the cloud's public key, against the certificate of the tunnel they arrive on and
 * the longest lifetime the control plane issues.
 */
export class TokenVerifier {
  readonly #publicKey: KeyObject;

  constructor(
    publicKeyPem: string,
    readonly maxTtlSeconds: number,
    readonly now: () => number = Date.now,
  ) {
    this.#publicKey = publicKeyFromPem(publicKeyPem);
    // Tokens are Ed25519-signed: a key of another type here is a misconfiguration, not something to try.
    if (this.#publicKey.asymmetricKeyType !== "ed25519")
      throw new TypeError(`the token verification key must be Ed25519, not ${this.#publicKey.asymmetricKeyType}`);
    if (!Number.isInteger(maxTtlSeconds) || maxTtlSeconds < 1)
      throw new RangeError("the max token TTL must be a whole number of seconds ≥ 1");
  }

  check(token: string | undefined, certificate: X509Certificate, connectorId: string): TokenVerdict {
    const group = organization(certificate);
    if (group === undefined) return { ok: false, reason: "client certificate names no group" };
    return verifyAccessToken(token, {
      publicKey: this.#publicKey,
      certificate,
      connectorId,
      group,
      maxTtlSeconds: this.maxTtlSeconds,
      nowMs: this.now(),
    });
  }
}

export interface TunnelTokenOptions {
  readonly verifier: TokenVerifier;
  readonly certificate: X509Certificate;
  readonly connectorId: string;
  /** Expiry of the token accepted at the upgrade, ms since the epoch. */
  readonly expiresAtMs: number;
  readonly onExpired: () => void;
  readonly onInvalid: (reason: string) => void;
}

export class TunnelToken {
  #expiresAtMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;
  updates = 0;

  constructor(private readonly options: TunnelTokenOptions) {
    this.#expiresAtMs = options.expiresAtMs;
    this.#arm();
  }

  get expiresAt(): Date {
    return new Date(this.#expiresAtMs);
  }

  /** A TOKEN_UPDATE: a valid token moves the expiry; an invalid one ends the watch and reports it. */
  update(token: string): void {
    if (this.#done) return;
    const verdict = this.options.verifier.check(token, this.options.certificate, this.options.connectorId);
    if (!verdict.ok) {
      this.stop();
      this.options.onInvalid(verdict.reason);
      return;
    }
    this.updates++;
    this.#expiresAtMs = Math.max(this.#expiresAtMs, verdict.claims.exp * 1000);
    this.#arm();
  }

  stop(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Always through a timer, so `onExpired` never runs inside the constructor or `update`. */
  #arm(): void {
    clearTimeout(this.#timer);
    const left = this.#expiresAtMs - this.options.verifier.now();
    this.#timer = setTimeout(() => this.#check(), Math.max(0, Math.min(left, MAX_TIMER_MS)));
  }

  #check(): void {
    if (this.#done) return;
    if (this.options.verifier.now() < this.#expiresAtMs) return this.#arm();
    this.stop();
    this.options.onExpired();
  }
}
