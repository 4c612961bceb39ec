/**
 * `ProxyBypass` is the compiled `NO_PROXY` list: it decides whether a connection to `host:port`
 * goes direct instead of through the HTTP proxy. Parse once per settings value, ask per connection.
 * It is transport-neutral (no URL scheme assumptions beyond default ports in `bypassesUrl`), so the
 * tunnel dialer and the control-plane client can share one list and one meaning.
 *
 * Entries, separated by commas and/or whitespace, case-insensitive:
 * - `*`                              everything bypasses the proxy;
 * - `gw.example.com`                 exactly that name (not its subdomains: "exact domains");
 * - `*.example.com`, `.example.com`  names strictly below `example.com`, not `example.com` itself;
 * - `10.1.2.3`, `::1`, `[::1]`       that address;
 * - `10.0.0.0/8`, `fd00::/8`         any address in the block;
 * - a name or an address may end in `:PORT` (`gw.example.com:8443`, `[::1]:443`) to bypass only that
 *   port; such an entry never matches a connection whose port is not given.
 * Names are never resolved: an IP entry does not match a name, whatever it resolves to. Addresses are
 * compared as addresses (`::0:1` equals `::1`, `::ffff:10.1.2.3` is inside `10.0.0.0/8`), names after
 * normalisation (case, trailing dot), all with src/netaddr. Entries that parse as none of the above are
 * ignored, as curl and Go do, and listed in `ignored` so the caller can warn about them.
 */
import {
  type Cidr,
  cidrContains,
  type DomainPattern,
  domainMatches,
  parseDomainPattern,
  parseHost,
  parseIpOrCidr,
  splitHostPort,
} from "./index.ts";

export type BypassRule =
  | { readonly kind: "all" }
  | { readonly kind: "name"; readonly pattern: DomainPattern; readonly port: number | undefined }
  | { readonly kind: "ip"; readonly cidr: Cidr; readonly port: number | undefined };

/** Default ports of the URL schemes the connector dials. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { "https:": 443, "wss:": 443, "http:": 80, "ws:": 80 };

/** Parses one entry into a rule, or undefined when it means nothing we know. */
export function parseBypassEntry(entry: string): BypassRule | undefined {
  const text = entry.trim().toLowerCase();
  if (text === "*") return { kind: "all" };
  if (text.includes("/")) {
    const cidr = parseIpOrCidr(text);
    return cidr ? { kind: "ip", cidr, port: undefined } : undefined;
  }
  const split = splitHostPort(text);
  if (!split || split.port === 0) return undefined;
  const cidr = parseIpOrCidr(split.host);
  if (cidr) return { kind: "ip", cidr, port: split.port };
  // A name entry written in brackets (`[example.com]`) is not an address: refuse it.
  if (text.startsWith("[")) return undefined;
  const pattern = parseDomainPattern(split.host, true);
  return pattern ? { kind: "name", pattern, port: split.port } : undefined;
}

export class ProxyBypass {
  private constructor(
    readonly rules: readonly BypassRule[],
    /** Entries that were not understood and are ignored. */
    readonly ignored: readonly string[],
  ) {}

  /** Compiles a list: the raw setting (`"a.example,10.0.0.0/8"`) or entries already split. */
  static parse(list: string | readonly string[]): ProxyBypass {
    const entries = (typeof list === "string" ? [list] : list)
      .flatMap((item) => item.split(/[\s,]+/))
      .filter((entry) => entry !== "");
    const rules: BypassRule[] = [];
    const ignored: string[] = [];
    for (const entry of entries) {
      const rule = parseBypassEntry(entry);
      if (rule) rules.push(rule);
      else ignored.push(entry);
    }
    return new ProxyBypass(rules, ignored);
  }

  /** True when a connection to `host` (name, IP, or bracketed IPv6) on `port` must not use the proxy. */
  bypasses(host: string, port?: number): boolean {
    if (this.rules.length === 0) return false;
    const target = parseHost(host);
    return this.rules.some((rule) => {
      if (rule.kind === "all") return true;
      if (!target || (rule.port !== undefined && rule.port !== port)) return false;
      if (rule.kind === "name") return target.kind === "name" && domainMatches(rule.pattern, target.name);
      return target.kind === "ip" && cidrContains(rule.cidr, target.ip);
    });
  }

  /** `bypasses` for a URL, with the scheme's default port when the URL has none. */
  bypassesUrl(url: URL): boolean {
    const port = url.port !== "" ? Number(url.port) : DEFAULT_PORTS[url.protocol];
    return this.bypasses(url.hostname, port);
  }
}

/**
 * The warning for bypass entries that mean nothing (a typo, a URL, a port range): they are ignored, so
 * the destination they were meant for goes through the proxy. Undefined when every entry is understood.
 */
export function ignoredBypassWarning(list: readonly string[]): { message: string; ignored: string[] } | undefined {
  const { ignored } = ProxyBypass.parse(list);
  if (ignored.length === 0) return undefined;
  return {
    message:
      "proxy bypass entries not understood are ignored (expected a name, *.suffix, .suffix, an IP, a CIDR or *, each with an optional :PORT)",
    ignored: ignored.slice(0, 20).map((e) => e.slice(0, 100)),
  };
}
