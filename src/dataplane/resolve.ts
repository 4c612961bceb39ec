/**
 * Name resolution for stream dials: the host's own resolver (getaddrinfo through node:dns `lookup`,
 * so /etc/hosts, nsswitch and search domains apply as for any program on the host), both families,
 * and the order in which the dialer tries the answers.
 */
import { lookup } from "node:dns/promises";
import { type IpAddress, ipEquals, parseIp } from "../netaddr/index.ts";

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * Resolves a host name to its addresses. May reject (any rejection counts as a DNS failure) and may
 * never settle: the dialer bounds it with its deadline. Injected in tests.
 */
export type Resolver = (name: string) => Promise<readonly ResolvedAddress[]>;

/** The host's resolver: every IPv4 and IPv6 address, in the order the system returns them. */
export const systemResolver: Resolver = async (name) => {
  const answers = await lookup(name, { all: true, family: 0 });
  return answers.flatMap((a) => (a.family === 4 || a.family === 6 ? [{ address: a.address, family: a.family }] : []));
};

/**
 * The order to dial in: duplicates and non-addresses dropped, then families alternated starting with
 * the family of the first answer (RFC 8305 §4), so a host whose IPv6 is broken still reaches an IPv4
 * address on the second try; at most `max` addresses.
 */
export function dialOrder(answers: readonly ResolvedAddress[], max: number): ResolvedAddress[] {
  const unique: ResolvedAddress[] = [];
  const seen: IpAddress[] = [];
  for (const answer of answers) {
    const ip = parseIp(answer.address);
    if (!ip || seen.some((other) => ipEquals(other, ip))) continue;
    seen.push(ip);
    unique.push({ address: answer.address, family: ip.family });
  }
  const first = unique[0]?.family;
  const primary = unique.filter((a) => a.family === first);
  const secondary = unique.filter((a) => a.family !== first);
  const ordered: ResolvedAddress[] = [];
  for (let i = 0; i < Math.max(primary.length, secondary.length); i++) {
    if (primary[i]) ordered.push(primary[i]!);
    if (secondary[i]) ordered.push(secondary[i]!);
  }
  return ordered.slice(0, max);
}
