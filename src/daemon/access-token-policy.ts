/**
 * The access-token schedule's numbers and vocabulary (src/daemon/access-tokens.ts has the schedule):
 * when a token is refreshed, how failures are retried, what is too short-lived to use, and the shapes
 * the schedule takes in and shows.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Secret } from "../secret.ts";
import type { BackoffPolicy } from "../retry/backoff.ts";

export const TOKEN_REFRESH_AT_FRACTION = 2 / 3;
export const TOKEN_REFRESH_JITTER_FRACTION = 0.05;
/** Retries of a failed refresh: short, because a token lives minutes, not days. */
export const TOKEN_RETRY: BackoffPolicy = { baseMs: 1_000, capMs: 60_000 };
/** Floor under a jittered retry: full jitter may draw ~0, and a failing control plane must not be asked in a loop. */
export const MIN_RETRY_DELAY_MS = 250;
/** A token with less than this left is not used for a new dial (it would expire during the upgrade). */
export const MIN_DIAL_LIFE_MS = 2_000;
/** Never refresh sooner than this after a success, whatever the token's life (a server or clock gone wrong). */
export const MIN_REFRESH_DELAY_MS = 1_000;
/** Longest single wait: a token claiming a life of years is refreshed daily anyway. */
export const MAX_REFRESH_DELAY_MS = 24 * 60 * 60_000;
/**
 * A token living less than this is a failed fetch (not used, retried with backoff): one of a second or two
 * would be refreshed every MIN_REFRESH_DELAY_MS forever, each time written to the state dir, and expire
 * during a dial (MIN_DIAL_LIFE_MS). 5 s leaves a dial's room at 2/3 of its life; e2e tests use 10-12 s.
 */
export const MIN_TOKEN_LIFE_MS = 5_000;
/** Least time between two refreshes asked for by a gateway's 401 (a hostile gateway can answer 401 to every dial). */
export const REJECTED_REFRESH_INTERVAL_MS = 5_000;
/** Random delay (0 to this) before a 401-triggered refresh, so a gateway refusing a fleet does not make it ask in step. */
export const REJECTED_REFRESH_JITTER_MS = 1_000;

/** What the control plane answered, and the certificate (PEM) the request was made with. */
export interface FetchedToken {
  readonly token: string;
  /** For status: the cloud's clock. */
  readonly expiresAt: string;
  /** Seconds of life left when answered: the schedule uses this, not `expiresAt` against our clock. */
  readonly expiresIn: number;
  readonly certificate: string;
}

/** An open tunnel that can take TOKEN_UPDATE (a `Tunnel` of src/supervisor/connection.ts). */
export interface TokenHolder {
  readonly session: { sendTokenUpdate(token: Secret<string>): void; readonly isClosed: boolean };
  readonly closed: Promise<unknown>;
}

export interface AccessTokensOptions {
  readonly clock: Clock;
  readonly log: Logger;
  /** POST /v1/token with the current identity. */
  readonly fetch: () => Promise<FetchedToken>;
  /** The control plane answered CONNECTOR_REVOKED. */
  readonly onRevoked: () => void;
  /** A fresh token arrived, with `lifeMs` left (the daemon keeps it in the state dir). */
  readonly onFetched?: (fetched: FetchedToken, lifeMs: number) => void;
  readonly random?: () => number;
}

/** What status shows: never the token. */
export interface AccessTokenView {
  readonly expiresAt: string | null;
  readonly refreshAt: string | null;
  readonly lastError: string | null;
}
