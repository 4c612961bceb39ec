/**
 * What a *name* rule may resolve to. A catalog rule such as `*.corp.example` trusts DNS for the
 * addresses; a record pointing at this host would turn the connector into a way into the host itself:
 * its loopback, its own interface addresses (services bound to them, the admin socket's neighbours),
 * the unspecified address, link-local (cloud metadata at 169.254.169.254 holds instance credentials)
 * and the metadata endpoints clouds put elsewhere: AWS's IPv6 fd00:ec2::254, Alibaba's
 * 100.100.100.200 and Azure's wire server 168.63.129.16. Such answers are dropped for name
 * destinations; an operator who means them writes an IP or CIDR rule, which is checked as written.
 * A name that resolves to nothing else is refused NOT_ALLOWED (the catalog does not allow where it
 * points), not DNS_FAILURE.
 */
import { networkInterfaces } from "node:os";
import {
  cidrContains,
  type Cidr,
  type IpAddress,
  ipEquals,
  parseIp,
  parseIpOrCidr,
  unmapIp,
} from "../netaddr/index.ts";
import { DialError } from "./errors.ts";
import { systemResolver, type Resolver } from "./resolve.ts";

const HOST_ONLY: readonly Cidr[] = [
  "127.0.0.0/8",
  "::1/128",
  "169.254.0.0/16",
  "fe80::/10",
  "0.0.0.0/8",
  "::/128",
  "fd00:ec2::254/128",
  "100.100.100.200/32",
  "168.63.129.16/32",
].map((text) => parseIpOrCidr(text)!);

/** This host's interface addresses; read per lookup, so an address added at run time is covered. */
export type HostAddresses = () => readonly string[];

/**
 * How long one read of the interfaces serves lookups: a host with hundreds of virtual interfaces (a
 * Kubernetes node) would otherwise pay a getifaddrs and a parse of each per OPEN; an address added at
 * run time is covered within a second.
 */
const HOST_ADDRESSES_TTL_MS = 1_000;
let hostAddressCache: { readonly at: number; readonly addresses: readonly string[] } | undefined;

export const systemHostAddresses: HostAddresses = () => {
  const now = performance.now();
  if (!hostAddressCache || now - hostAddressCache.at >= HOST_ADDRESSES_TTL_MS) {
    hostAddressCache = {
      at: now,
      addresses: Object.values(networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => entry.address)),
    };
  }
  return hostAddressCache.addresses;
};

function parsedAll(addresses: readonly string[]): IpAddress[] {
  return addresses.flatMap((a) => {
    const ip = parseIp(a.replace(/%.*$/, ""));
    return ip ? [unmapIp(ip)] : [];
  });
}

/** True for addresses a name rule never reaches; `own` are this host's interface addresses. */
export function isHostOnlyAddress(address: string, own: readonly string[] = []): boolean {
  return hostOnly(address, parsedAll(own));
}

function hostOnly(address: string, own: readonly IpAddress[]): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  const plain = unmapIp(ip);
  return HOST_ONLY.some((cidr) => cidrContains(cidr, plain)) || own.some((mine) => ipEquals(mine, plain));
}

/** A resolver that drops host-only answers; fails NOT_ALLOWED when nothing else is left. */
export function nameRuleResolver(
  resolve: Resolver = systemResolver,
  hostAddresses: HostAddresses = systemHostAddresses,
): Resolver {
  return async (name) => {
    const answers = await resolve(name);
    const own = parsedAll(hostAddresses()); // parsed once per lookup, not once per answer
    const usable = answers.filter((a) => !hostOnly(a.address, own));
    if (usable.length === 0 && answers.length > 0) {
      throw new DialError(
        "NOT_ALLOWED",
        `${name} resolves only to addresses of this host or cloud metadata, which a name rule does not reach (use an IP rule)`,
      );
    }
    return usable;
  };
}
