/**
 * Network addresses for policy decisions: IP literals (v4, v6, IPv4-mapped), CIDR blocks, host names
 * and `*.` wildcard patterns. Pure functions, no I/O: the allow-list (src/dataplane/allow-list.ts) and
 * the proxy bypass list (src/netaddr/proxy-bypass.ts) both decide with these, so a destination means
 * the same thing to both.
 */
export { type Cidr, cidrContains, formatCidr, makeCidr, parseCidr, parseIpOrCidr } from "./cidr.ts";
export {
  type DomainPattern,
  domainMatches,
  formatDomainPattern,
  normaliseDomain,
  parseDomainPattern,
} from "./domain.ts";
export { formatHost, formatHostPort, type Host, parseHost, parsePort, splitHostPort } from "./host.ts";
export { formatIp, type IpAddress, ipEquals, isIPv4Mapped, parseIp, parseIPv4, parseIPv6, unmapIp } from "./ip.ts";
