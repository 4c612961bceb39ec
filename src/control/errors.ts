/**
 * Errors of talking to the control plane, one class per failure an operator must tell apart:
 * each has a stable `code`, the exit code of README "Exit codes", and a message that says what
 * happened and what to do. Messages name hosts and the proxy (without credentials), never a secret.
 */
import { ConnectorError, ExitCode } from "../errors.ts";
import { peerText } from "../peer-text.ts";

/** Base class, so callers can catch every control-plane failure at once. */
export class ControlPlaneError extends ConnectorError {
  override readonly name: string = "ControlPlaneError";
}

/** The CA served by the control plane is not the one the key pins, or a strictly verified
 * connection presented a certificate the pinned CA did not sign: both are what TLS inspection does. */
export class TlsInspectionError extends ControlPlaneError {
  override readonly name = "TlsInspectionError";
  constructor(code: "CA_PIN_MISMATCH" | "TLS_INSPECTION", host: string, detail: string) {
    super(
      code,
      `${detail}. The likely cause is TLS inspection (a proxy or firewall that decrypts HTTPS): ` +
        `add ${host} to your TLS-inspection bypass list, then enroll again.`,
      ExitCode.caPinMismatch,
    );
  }
}

/**
 * A TLS check other than "who signed it" failed on a verified connection: the certificate is for
 * another name or purpose, or outside its dates by this host's clock, or no common TLS version.
 * Not TLS inspection (that is `TlsInspectionError`), so exit 1 and the check named in the code.
 */
export class TlsCheckError extends ControlPlaneError {
  override readonly name = "TlsCheckError";
  constructor(
    code:
      | "TLS_HOSTNAME_MISMATCH"
      | "TLS_WRONG_PURPOSE"
      | "TLS_CERT_EXPIRED"
      | "TLS_CERT_NOT_YET_VALID"
      | "TLS_HANDSHAKE_FAILED",
    message: string,
  ) {
    super(code, message, ExitCode.failure);
  }
}

export class DnsFailureError extends ControlPlaneError {
  override readonly name = "DnsFailureError";
  constructor(host: string, detail: string) {
    super(
      "DNS_FAILURE",
      `Cannot resolve the control-plane host ${host} (${detail}). Check this host's DNS servers (/etc/resolv.conf) ` +
        `and that the name is reachable from this network.`,
      ExitCode.dnsFailure,
    );
  }
}

export class ConnectionRefusedError extends ControlPlaneError {
  override readonly name = "ConnectionRefusedError";
  constructor(target: string, detail: string) {
    super(
      "CONNECTION_REFUSED",
      `Cannot connect to the control plane at ${target} (${detail}). Check that outbound HTTPS to it is allowed ` +
        `by the firewall, or set HTTPS_PROXY if this network requires a proxy.`,
      ExitCode.connectionRefused,
    );
  }
}

/**
 * The connection was made, then cut before an answer (reset, closed). Not a firewall refusing the
 * connect: something on the path (a middlebox, TLS inspection) or the server itself ended it, for
 * instance because it does not accept this connector's certificate. Same exit code as a refusal.
 */
export class ConnectionResetError extends ControlPlaneError {
  override readonly name = "ConnectionResetError";
  constructor(target: string, detail: string) {
    super(
      "CONNECTION_RESET",
      `The connection to the control plane at ${target} was cut before it answered (${detail}). A firewall or a ` +
        `TLS-inspecting middlebox on the way may be dropping it, or the control plane refused this connector's certificate.`,
      ExitCode.connectionRefused,
    );
  }
}

export class ControlTimeoutError extends ControlPlaneError {
  override readonly name = "ControlTimeoutError";
  constructor(target: string, timeoutMs: number, via: string | undefined) {
    super(
      "TIMEOUT",
      `The control plane at ${target} did not answer within ${Math.round(timeoutMs / 1000)} s` +
        `${via ? ` (through the proxy ${via})` : ""}. A firewall may be dropping the connection; check outbound HTTPS.`,
      ExitCode.timeout,
    );
  }
}

export class ProxyFailureError extends ControlPlaneError {
  override readonly name = "ProxyFailureError";
  constructor(proxy: string, detail: string) {
    super(
      "PROXY_FAILURE",
      `The proxy ${proxy} failed: ${detail}. Check the proxy address and credentials (--proxy / HTTPS_PROXY), ` +
        `or add the control-plane host to NO_PROXY if it must be reached directly.`,
      ExitCode.proxyFailure,
    );
  }
}

/** The control plane answered with a body that does not match the protocol schema. */
export class BadResponseError extends ControlPlaneError {
  override readonly name = "BadResponseError";
  constructor(what: string, detail: string) {
    super(
      "BAD_RESPONSE",
      `The control plane sent an invalid ${what}: ${detail}. Is the URL in the key a control plane?`,
      ExitCode.failure,
    );
  }
}

const KEY_REJECTIONS = {
  KEY_EXPIRED: {
    exit: ExitCode.keyExpired,
    text: "The provisioning key has expired. Create a new key for this connector group in the console and enroll with it.",
  },
  KEY_REVOKED: {
    exit: ExitCode.keyRevoked,
    text: "The provisioning key was revoked. Ask an administrator for a new key in the console and enroll with it.",
  },
  KEY_EXHAUSTED: {
    exit: ExitCode.keyExhausted,
    text: "The provisioning key has been used its maximum number of times. Create a new key (or raise its use limit) in the console.",
  },
  KEY_UNKNOWN: {
    exit: ExitCode.keyUnknown,
    text: "The control plane does not know this provisioning key. Check that you copied the key of the right tenant, or create a new one in the console.",
  },
} as const;

/**
 * The control plane refused a request with an API error (docs/PROTOCOL.md §3). `apiCode` is the
 * server's code (e.g. `CONNECTOR_REVOKED`), `status` the HTTP status, for callers that branch on them.
 */
export class ApiRejectedError extends ControlPlaneError {
  override readonly name = "ApiRejectedError";
  constructor(
    code: string,
    message: string,
    exitCode: number,
    readonly status: number,
    readonly apiCode: string,
  ) {
    super(code, message, exitCode);
  }
}

/**
 * Maps an API error (status, code, server message) to its connector error: the four key rejections
 * each get their own code and exit code; any other 4xx is `REQUEST_REJECTED` (exit 21); 5xx is a
 * control-plane failure (exit 1).
 */
export function apiRejection(status: number, apiCode: string, serverMessage: string): ApiRejectedError {
  const known = (KEY_REJECTIONS as Record<string, { exit: number; text: string }>)[apiCode];
  if (known) return new ApiRejectedError(apiCode, known.text, known.exit, status, apiCode);
  // Server text is shown because it explains CSR_* and BAD_REQUEST; made printable and short first.
  const reason = `${peerText(apiCode, 64)}${serverMessage ? `: ${peerText(serverMessage)}` : ""}`;
  if (status >= 400 && status < 500) {
    return new ApiRejectedError(
      "REQUEST_REJECTED",
      `The control plane rejected the request (HTTP ${status}, ${reason}).`,
      ExitCode.enrollRejected,
      status,
      apiCode,
    );
  }
  return new ApiRejectedError(
    "CONTROL_PLANE_ERROR",
    `The control plane failed (HTTP ${status}, ${reason}); try again later.`,
    ExitCode.failure,
    status,
    apiCode,
  );
}

/** Any other failure of a request (TLS handshake, unexpected network error). */
export class RequestFailedError extends ControlPlaneError {
  override readonly name = "RequestFailedError";
  constructor(code: string, message: string) {
    super(code, message, ExitCode.failure);
  }
}
