/**
 * What a *name* rule may resolve to. A catalog rule such as `*.corp.example` trusts DNS for the
 * addresses; a record pointing at this host's loopback, a link-local address (cloud metadata at
 * 169.254.169.254 holds instance credentials) or the unspecified address would turn the connector
 * into a way into the host itself. Such answers are dropped for name destinations; an operator who
 * means them writes an IP or CIDR rule, which is checked as written.
 */
import { cidrContains, parseIp, parseIpOrCidr, unmapIp, type Cidr } from "../netaddr/index.ts";
import { systemResolver, type Resolver } from "./resolve.ts";

const HOST_ONLY: readonly Cidr[] = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128"].map(
  (text) => parseIpOrCidr(text)!,
);

export function isHostOnlyAddress(address: string): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  const plain = unmapIp(ip);
  return HOST_ONLY.some((cidr) => cidrContains(cidr, plain));
}

/** A resolver that drops host-only answers; rejects (a DNS failure) when nothing else is left. */
export function nameRuleResolver(resolve: Resolver = systemResolver): Resolver {
  return async (name) => {
    const answers = await resolve(name);
    const usable = answers.filter((a) => !isHostOnlyAddress(a.address));
    if (usable.length === 0 && answers.length > 0) {
      throw new Error(`${name} resolves only to loopback or link-local addresses, which a name rule does not reach (use an IP rule)`);
    }
    return usable;
  };
}
