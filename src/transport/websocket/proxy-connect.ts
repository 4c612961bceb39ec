/**
 * HTTP CONNECT through a forward proxy (RFC 9110 §9.3.6), pure parts: the proxy's address, the
 * request with optional Basic credentials, and the meaning of its answer. The proxy password is only
 * read when the request is built; every description of the proxy omits the credentials.
 */
import { peerText } from "../../peer-text.ts";
import { TunnelDialError } from "./errors.ts";
import { formatAuthority } from "./handshake.ts";
import { serializeHead, type HttpResponseHead } from "./http-head.ts";

export interface ProxyTarget {
  host: string;
  port: number;
  /** `http://host:port`, safe to log. */
  display: string;
  /** Decoded `user:pass` for Basic auth, or undefined. Never logged. */
  credentials: string | undefined;
}

/** Parses the proxy URL (http:// only: TLS to the proxy would put TLS inside TLS). */
export function parseProxyUrl(proxy: string | URL): ProxyTarget {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    throw new TunnelDialError("TUNNEL_PROXY", "proxy setting is not a valid URL");
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const display = `${url.protocol}//${url.host}`;
  if (url.protocol !== "http:") {
    throw new TunnelDialError(
      "TUNNEL_PROXY",
      `proxy ${display}: only http:// proxies are supported (CONNECT over plain HTTP)`,
    );
  }
  const port = url.port === "" ? 80 : Number(url.port);
  let credentials: string | undefined;
  if (url.username !== "" || url.password !== "") {
    try {
      credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    } catch {
      throw new TunnelDialError("TUNNEL_PROXY", `proxy ${display}: credentials are not valid percent-encoding`);
    }
  }
  return { host, port, display, credentials };
}

export function buildConnectRequest(targetHost: string, targetPort: number, proxy: ProxyTarget): Uint8Array {
  const authority = formatAuthority(targetHost, targetPort);
  const headers: [string, string][] = [["Host", authority]];
  if (proxy.credentials !== undefined) {
    headers.push(["Proxy-Authorization", `Basic ${Buffer.from(proxy.credentials, "utf8").toString("base64")}`]);
  }
  return serializeHead(`CONNECT ${authority} HTTP/1.1`, headers);
}

/** Throws the operator-facing error for a proxy answer that is not a 2xx. */
export function checkConnectResponse(res: HttpResponseHead, proxy: ProxyTarget, target: string): void {
  if (res.status >= 200 && res.status < 300) return;
  if (res.status === 407) {
    const why =
      proxy.credentials === undefined
        ? "it requires credentials (none configured)"
        : "it rejected the configured credentials";
    throw new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} refused authentication: ${why}`, { status: 407 });
  }
  throw new TunnelDialError(
    "TUNNEL_PROXY",
    `proxy ${proxy.display} refused CONNECT to ${target}: ${res.status} ${peerText(res.reason)}`.trimEnd(),
    { status: res.status },
  );
}
