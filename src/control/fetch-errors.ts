/**
 * Turns what Bun's `fetch` throws into the connector's typed control-plane errors. Bun 1.4 reports
 * network failures as errors with a string `code` (verified with scripts against real sockets):
 *   DNS: `ENOTFOUND` (also `EAI_*`); refused: `ECONNREFUSED`; peer closed: `ECONNRESET`;
 *   not TLS: `EPROTO`; certificate: OpenSSL names such as `UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 *   `ERR_TLS_CERT_ALTNAME_INVALID`; proxy answered non-200 to CONNECT: `ERR_PROXY_TUNNEL` with the
 *   status line in the message; an aborted `AbortSignal.timeout` rejects with name `TimeoutError`.
 * Through a proxy, every socket goes to the proxy, so refusal or DNS failure is the proxy's.
 */
import { DNS_ERROR_CODES, errnoCode } from "../errors.ts";
import { peerText } from "../peer-text.ts";
import { describeProxy } from "./no-proxy.ts";
import {
  ConnectionRefusedError,
  ControlTimeoutError,
  DnsFailureError,
  ProxyFailureError,
  RequestFailedError,
  TlsInspectionError,
  type ControlPlaneError,
} from "./errors.ts";

export interface FailedRequest {
  readonly url: URL;
  /** Proxy used for the request (may carry credentials; only `describeProxy` output is shown). */
  readonly proxy: string | undefined;
  readonly timeoutMs: number;
  /** The request's deadline passed (its signal aborted). */
  readonly timedOut: boolean;
  /** The request verified the server against the pinned CA. */
  readonly strict: boolean;
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "EPIPE",
  "ECONNABORTED",
  "ConnectionClosed",
  "ConnectionRefused",
]);
/** Certificate verification failures (OpenSSL verify results and Node's hostname check). */
const CERT_CODES = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_NOT_YET_VALID",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const CLOCK_CODES = new Set(["CERT_NOT_YET_VALID", "CERT_HAS_EXPIRED"]);

function errorCode(err: unknown): string {
  return errnoCode(err) ?? "";
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : "";
}

function hostPort(url: URL): string {
  return url.host;
}

function proxyTunnelDetail(err: unknown, url: URL): string {
  const message = err instanceof Error ? err.message : "";
  const status = /\b(\d{3})\b(.*)$/.exec(message);
  const code = status?.[1];
  const line = status ? peerText(`${code}${status[2] ?? ""}`.trim()) : "no status";
  const hint = code === "407" ? " (wrong or missing proxy credentials)" : code === "403" ? " (the proxy's policy forbids this destination)" : "";
  return `it refused to open a tunnel to ${hostPort(url)}: ${line}${hint}`;
}

/** The typed error for a failed control-plane request. */
export function classifyFetchError(err: unknown, request: FailedRequest): ControlPlaneError {
  const { url, proxy } = request;
  const code = errorCode(err);
  const via = proxy === undefined ? undefined : describeProxy(proxy);
  if (request.timedOut || errorName(err) === "TimeoutError" || errorName(err) === "AbortError") {
    return new ControlTimeoutError(hostPort(url), request.timeoutMs, via);
  }
  if (code === "ERR_PROXY_TUNNEL" && via) return new ProxyFailureError(via, proxyTunnelDetail(err, url));
  if (via && (DNS_ERROR_CODES.has(code) || code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH")) {
    return new ProxyFailureError(via, `cannot connect to it (${code})`);
  }
  if (DNS_ERROR_CODES.has(code)) return new DnsFailureError(url.hostname, code);
  if (CONNECT_CODES.has(code)) return new ConnectionRefusedError(hostPort(url), code);
  if (CERT_CODES.has(code)) {
    const clock = CLOCK_CODES.has(code) ? " (or this host's clock is wrong)" : "";
    return new TlsInspectionError(
      "TLS_INSPECTION",
      url.hostname,
      `The control plane ${hostPort(url)} presented a certificate that the pinned cloud CA did not sign (${code})${clock}`,
    );
  }
  if (code === "EPROTO") {
    return new RequestFailedError(
      "TLS_HANDSHAKE_FAILED",
      `The TLS handshake with ${hostPort(url)} failed${via ? ` through the proxy ${via}` : ""}: it does not speak TLS on this port, or a middlebox interfered.`,
    );
  }
  const what = code || errorName(err) || "unknown error";
  return new RequestFailedError("REQUEST_FAILED", `The request to the control plane ${hostPort(url)} failed (${what}).`);
}
