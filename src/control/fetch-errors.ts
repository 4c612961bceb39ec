/**
 * Turns what Bun's `fetch` throws into the connector's typed control-plane errors. Bun 1.4 reports
 * network failures as errors with a string `code` (verified with scripts against real sockets):
 *   DNS: `ENOTFOUND` (also `EAI_*`); refused: `ECONNREFUSED`; peer closed: `ECONNRESET`;
 *   not TLS or TLS < 1.2: `EPROTO`; certificate: OpenSSL names (which check: src/tls-failure.ts);
 *   proxy answered non-200 to CONNECT: `ERR_PROXY_TUNNEL` with the status line in the message; proxy
 *   closed or reset the connection at CONNECT: `ECONNRESET`; proxy answered CONNECT with something
 *   that is not HTTP: `Malformed_HTTP_Response`; an aborted `AbortSignal.timeout` rejects with name
 *   `TimeoutError`.
 * Through a proxy, every socket goes to the proxy, so refusal, reset or DNS failure is the proxy's.
 */
import { DNS_ERROR_CODES, errnoCode } from "../errors.ts";
import { peerText } from "../peer-text.ts";
import { describeProxy } from "./no-proxy.ts";
import { describeTlsFailure, tlsFailureKind } from "../tls-failure.ts";
import {
  ConnectionRefusedError,
  ConnectionResetError,
  ControlTimeoutError,
  DnsFailureError,
  ProxyFailureError,
  RequestFailedError,
  TlsCheckError,
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
  /** This host's time, shown when a certificate is outside its dates; default now. */
  readonly now?: Date;
}

const CONNECT_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ConnectionRefused"]);
/** A connection that was made and then cut: not the firewall refusing it. */
const RESET_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ConnectionClosed"]);
/** What a proxy that drops the connection while (or right after) answering CONNECT looks like. */
const PROXY_DROP_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ConnectionClosed",
  "Malformed_HTTP_Response",
]);
const TLS_CHECK_CODES = {
  hostname: "TLS_HOSTNAME_MISMATCH",
  purpose: "TLS_WRONG_PURPOSE",
  expired: "TLS_CERT_EXPIRED",
  "not-yet-valid": "TLS_CERT_NOT_YET_VALID",
} as const;

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
  const hint =
    code === "407"
      ? " (wrong or missing proxy credentials)"
      : code === "403"
        ? " (the proxy's policy forbids this destination)"
        : "";
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
  if (
    via &&
    (DNS_ERROR_CODES.has(code) || code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH")
  ) {
    return new ProxyFailureError(via, `cannot connect to it (${code})`);
  }
  // Through a proxy every byte goes through it: a connection dropped before any TLS answer (or an
  // answer to CONNECT that is not HTTP) is the proxy's doing, not the control plane refusing.
  if (via && PROXY_DROP_CODES.has(code)) {
    const how =
      code === "Malformed_HTTP_Response"
        ? "answered with something that is not HTTP"
        : `closed the connection (${code})`;
    return new ProxyFailureError(
      via,
      `it ${how} while opening the tunnel to ${hostPort(url)}; its policy may refuse that destination`,
    );
  }
  if (DNS_ERROR_CODES.has(code)) return new DnsFailureError(url.hostname, code);
  if (CONNECT_CODES.has(code)) return new ConnectionRefusedError(hostPort(url), code);
  if (RESET_CODES.has(code)) return new ConnectionResetError(hostPort(url), code);
  const kind = tlsFailureKind(code || undefined, err instanceof Error ? err.message : "");
  const who = `The control plane ${hostPort(url)}`;
  if (kind === "untrusted")
    return new TlsInspectionError(
      "TLS_INSPECTION",
      url.hostname,
      describeTlsFailure(kind, who, code, request.now ?? new Date()),
    );
  if (kind === "hostname" || kind === "purpose" || kind === "expired" || kind === "not-yet-valid") {
    return new TlsCheckError(
      TLS_CHECK_CODES[kind],
      `${describeTlsFailure(kind, who, code, request.now ?? new Date(), url.hostname)}.`,
    );
  }
  if (kind !== undefined) {
    // fetch reports a server that is not TLS and one that offers only TLS < 1.2 alike (EPROTO).
    return new TlsCheckError(
      "TLS_HANDSHAKE_FAILED",
      `The TLS handshake with ${hostPort(url)} failed${via ? ` through the proxy ${via}` : ""} (${code || "TLS error"}): ` +
        "it does not speak TLS on this port, offers only TLS older than 1.2, or a middlebox interfered.",
    );
  }
  const what = code || errorName(err) || "unknown error";
  return new RequestFailedError(
    "REQUEST_FAILED",
    `The request to the control plane ${hostPort(url)} failed (${what}).`,
  );
}
