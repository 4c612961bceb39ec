/**
 * Proxy choice for control-plane requests: the HTTP proxy from the settings unless the destination is
 * on the `NO_PROXY` list. The list's meaning (exact names, `*.suffix` / `.suffix`, IPs, CIDRs, `*`,
 * optional `:PORT`) is the one `ProxyBypass` (src/netaddr/proxy-bypass.ts) gives the tunnels, so an
 * operator writes one list for both; this module only applies it to URLs and describes the proxy
 * for messages without its credentials.
 */
import { ProxyBypass } from "../netaddr/proxy-bypass.ts";

function compile(noProxy: readonly string[] | ProxyBypass): ProxyBypass {
  return noProxy instanceof ProxyBypass ? noProxy : ProxyBypass.parse(noProxy);
}

/** True when a connection to `host` (name, IP or bracketed IPv6) on `port` must not use the proxy. */
export function bypassesProxy(
  host: string,
  port: number | undefined,
  noProxy: readonly string[] | ProxyBypass,
): boolean {
  return compile(noProxy).bypasses(host, port);
}

/**
 * The proxy URL to use for `url`, or undefined for a direct connection: no proxy configured, or the
 * destination is on the bypass list (the scheme's default port applies when the URL has none).
 */
export function proxyFor(
  url: URL,
  proxy: string | undefined,
  noProxy: readonly string[] | ProxyBypass,
): string | undefined {
  if (proxy === undefined || proxy === "") return undefined;
  return compile(noProxy).bypassesUrl(url) ? undefined : proxy;
}

/** The proxy as it may appear in messages and logs: scheme, host and port, never the credentials. */
export function describeProxy(proxy: string): string {
  try {
    const url = new URL(proxy);
    return `${url.protocol}//${url.host}`;
  } catch {
    return "the configured proxy";
  }
}
