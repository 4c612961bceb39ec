/**
 * Numbers that shape the reference cloud's behaviour, in one place, each with the reason for its value.
 * A real cloud will pick its own; these are what the connector is tested against.
 */

const SECOND = 1;
const DAY = 24 * 60 * 60 * SECOND;

/** Client certificates live 30 days: long enough for a demo, short enough that renewal matters. */
export const DEFAULT_CERT_TTL_SECONDS = 30 * DAY;
/** The CA and the cloud's own server certificates outlive any test run; the reference cloud is ephemeral. */
export const CA_LIFETIME_SECONDS = 365 * DAY;
export const SERVER_CERT_TTL_SECONDS = 365 * DAY;
/** notBefore is backdated so a connector whose clock is a few minutes behind still accepts a fresh certificate. */
export const BACKDATE_SECONDS = 5 * 60;

/** A provisioning key from the admin API enrolls up to 10 connectors unless told otherwise. */
export const DEFAULT_KEY_MAX_USES = 10;
/** ... and expires after one day: keys are meant to be used soon after they are made. */
export const DEFAULT_KEY_TTL_SECONDS = DAY;
/** Upper bound on maxUses so a typo cannot make a practically unlimited key. */
export const MAX_KEY_USES = 1_000_000;

/** RSA below 3072 bits is under the 128-bit security level the product promises. */
export const MIN_RSA_BITS = 3072;
/** RSA above 8192 bits only costs verification time; refusing it bounds the work an anonymous CSR can cause. */
export const MAX_RSA_BITS = 8192;
/** The named curves accepted for EC keys (P-256 and P-384), as node:crypto names them. */
export const ACCEPTED_CURVES: readonly string[] = ["prime256v1", "secp384r1"];

/** Every request body is bounded: an enrollment is ~2 KiB, admin bodies are smaller still. */
export const MAX_BODY_BYTES = 64 * 1024;
/** An upgrade report is a few hundred bytes (its message is at most 512 characters). */
export const MAX_UPGRADE_REPORT_BYTES = 4 * 1024;
/** A request that has not been answered in 10 s (slow body, stuck client) is cut off. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A TLS handshake that has not finished in 10 s is abandoned. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Idle keep-alive connections are closed after 30 s so a stopped client does not pin a socket. */
export const IDLE_TIMEOUT_MS = 30_000;
/** stop() waits at most this long for open connections before destroying them. */
export const STOP_GRACE_MS = 2_000;
