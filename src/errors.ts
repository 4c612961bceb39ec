/**
 * Errors the connector reports to an operator. Every failure that reaches the CLI is a
 * `ConnectorError` with a stable `code` (for logs, JSON output and support) and the process exit
 * code it maps to, so scripts can branch on the exit status without parsing text.
 */

/** Exit codes are part of the CLI contract (README "Exit codes"); never renumber one. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  // enroll
  keyMalformed: 10,
  keyExpired: 11,
  keyRevoked: 12,
  keyExhausted: 13,
  keyUnknown: 14,
  caPinMismatch: 15,
  dnsFailure: 16,
  connectionRefused: 17,
  timeout: 18,
  proxyFailure: 19,
  identityExists: 20,
  enrollRejected: 21,
  noKey: 22,
  // run
  alreadyRunning: 23,
  // upgrade: a release was refused or could not be applied; the error code says why
  upgradeRefused: 24,
  // status uses 0..4 with its own meaning, see src/status.
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class ConnectorError extends Error {
  override readonly name: string = "ConnectorError";
  constructor(
    /** Stable machine-readable identifier, e.g. `KEY_EXPIRED`. */
    readonly code: string,
    message: string,
    readonly exitCode: number = ExitCode.failure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A setting (flag, env var or env-file line) has an invalid value. */
export class SettingsError extends ConnectorError {
  override readonly name = "SettingsError";
  constructor(message: string) {
    super("INVALID_SETTING", message, ExitCode.usage);
  }
}

/** The command line itself is wrong (unknown flag value, missing argument). */
export class UsageError extends ConnectorError {
  override readonly name = "UsageError";
  constructor(message: string) {
    super("USAGE", message, ExitCode.usage);
  }
}

/** A file on disk (state, identity) could not be read or does not match its schema. */
export class StateError extends ConnectorError {
  override readonly name = "StateError";
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, ExitCode.failure, options);
  }
}

/** Describes any thrown value in one line, without stack traces, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The errno-style `code` of a thrown value (`ECONNREFUSED`, `ENOTFOUND`, `CERT_HAS_EXPIRED`), if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
  return typeof code === "string" ? code : undefined;
}

/** Codes a failed name lookup shows up as, from getaddrinfo or from Bun's own resolver. */
export const DNS_ERROR_CODES: ReadonlySet<string> = new Set([
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_FAIL",
  "EAI_NODATA",
  "DNSException",
  "DNS_ENOTFOUND",
]);
