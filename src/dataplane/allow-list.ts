/**
 * `AllowList` decides where a stream may go (PROTOCOL §3.3): the gateway asks for
 * `host:port` on behalf of an app, and the connector opens it only if one of that app's catalog
 * destinations matches. A catalog is compiled once per version; `allows` is then a pure lookup.
 *
 * The check is on what the gateway asked for, before any DNS lookup:
 * - a requested name matches only name rules (exact, or `*.suffix` for names strictly below the
 *   suffix). It is never compared with IP or CIDR rules, because the answer would depend on DNS at the
 *   moment of the check. Once a name is allowed, every address it resolves to may be dialed: naming
 *   `wiki.corp.example` in the catalog trusts the host's DNS for that name.
 * - a requested IP literal matches only IP and CIDR rules, never a name rule (no reverse lookups).
 *   IPv4-mapped IPv6 (`::ffff:10.1.2.3`) is compared as the IPv4 address (see src/netaddr/cidr.ts).
 * - the port must lie in the destination's port or inclusive range; port 0 is never allowed.
 * Requested names are normalised (case, one trailing dot) and validated as in src/netaddr/domain.ts;
 * anything that is neither a valid name nor an IP literal is refused.
 *
 * A catalog destination that does not parse is skipped and listed in `issues` (for a log line): a bad
 * rule may only ever narrow access, never widen it or take the other rules down with it.
 */
import type { App, Catalog } from "../control/api.ts";
import { peerText } from "../peer-text.ts";
import {
  type Cidr,
  cidrContains,
  type DomainPattern,
  domainMatches,
  formatHost,
  parseDomainPattern,
  parseHost,
  parseIpOrCidr,
} from "../netaddr/index.ts";

export type AllowDecision =
  | {
      readonly allowed: true;
      /** The host to dial: the normalised name, or the canonical IP text (mapped IPv6 as IPv4). */
      readonly host: string;
    }
  | { readonly allowed: false; readonly reason: string };

type HostRule =
  | { readonly kind: "name"; readonly pattern: DomainPattern }
  | { readonly kind: "ip"; readonly cidr: Cidr };

interface Rule {
  readonly host: HostRule;
  readonly fromPort: number;
  readonly toPort: number;
}

const MAX_PORT = 65535;
/** Peer-supplied text quoted in reasons is cut to this, so a reason fits an OPEN_RESULT (512 bytes). */
const MAX_QUOTED = 100;

/** Quotes peer-supplied text for a reason: escaped (no control characters reach logs) and bounded. */
function quote(text: string): string {
  return `"${peerText(text, MAX_QUOTED).replace(/"/g, '\\"')}"`;
}

/** Parses `PORT` or `FROM-TO` (inclusive). A range may start at 0 ("every port"); port 0 itself never matches. */
export function parsePortRange(text: string): { from: number; to: number } | undefined {
  const match = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const from = Number(match[1]);
  const to = match[2] === undefined ? from : Number(match[2]);
  if (to > MAX_PORT || from > to || to === 0) return undefined;
  return { from, to };
}

function parseHostRule(text: string): HostRule | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const cidr = parseIpOrCidr(bare);
  if (cidr) return { kind: "ip", cidr };
  const pattern = parseDomainPattern(text);
  return pattern ? { kind: "name", pattern } : undefined;
}

function compileApp(app: App, issues: string[]): Rule[] {
  const rules: Rule[] = [];
  for (const destination of app.destinations) {
    const host = parseHostRule(destination.host);
    const ports = parsePortRange(destination.ports);
    if (!host || !ports) {
      const what = host ? `port range "${destination.ports}"` : `host "${destination.host}"`;
      issues.push(`app "${app.name}": destination skipped, invalid ${what}`);
      continue;
    }
    rules.push({ host, fromPort: ports.from, toPort: ports.to });
  }
  return rules;
}

export class AllowList {
  readonly #apps: ReadonlyMap<string, readonly Rule[]>;

  private constructor(
    /** The catalog version this list was compiled from. */
    readonly version: string,
    apps: ReadonlyMap<string, readonly Rule[]>,
    /** One line per catalog entry that was skipped or merged, for the log. */
    readonly issues: readonly string[],
  ) {
    this.#apps = apps;
  }

  /** Compiles a catalog (already validated with `CatalogSchema`). */
  static compile(catalog: Catalog): AllowList {
    const issues: string[] = [];
    const apps = new Map<string, Rule[]>();
    for (const app of catalog.apps) {
      const rules = compileApp(app, issues);
      const existing = apps.get(app.name);
      if (existing) {
        // The cloud sent the same app twice; both lists are the cloud's word, so take their union.
        issues.push(`app "${app.name}" appears more than once; destinations merged`);
        existing.push(...rules);
      } else {
        apps.set(app.name, rules);
      }
    }
    return new AllowList(catalog.version, apps, issues);
  }

  /** An allow-list that refuses everything (before the first catalog arrives). */
  static empty(): AllowList {
    return new AllowList("", new Map(), []);
  }

  hasApp(app: string): boolean {
    return this.#apps.has(app);
  }

  /** Whether a stream for `app` may reach `host:port`, and the host to dial if so. */
  allows(app: string, host: string, port: number): AllowDecision {
    const rules = this.#apps.get(app);
    if (!rules) return { allowed: false, reason: `unknown app ${quote(app)}` };
    if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) {
      return { allowed: false, reason: `port ${port} is not a valid destination port` };
    }
    const target = parseHost(host);
    if (!target) return { allowed: false, reason: `${quote(host)} is neither a valid host name nor an IP address` };
    const hit = rules.some((rule) => {
      if (port < rule.fromPort || port > rule.toPort) return false;
      if (target.kind === "name") return rule.host.kind === "name" && domainMatches(rule.host.pattern, target.name);
      return rule.host.kind === "ip" && cidrContains(rule.host.cidr, target.ip);
    });
    const canonical = formatHost(target);
    if (!hit) return { allowed: false, reason: `app ${quote(app)} does not allow ${canonical} port ${port}` };
    return { allowed: true, host: canonical };
  }
}
