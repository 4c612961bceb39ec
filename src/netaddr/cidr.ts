/**
 * CIDR blocks: parsing and membership, pure.
 *
 * IPv4 and IPv6 are separate spaces, as in Go's net/netip: an IPv4 address is never inside an IPv6
 * block such as `::/0`, which an operator writes to mean "all of IPv6". IPv4-mapped IPv6 is the one
 * bridge: a mapped address (`::ffff:10.1.2.3`) is compared as the IPv4 address it stands for, and a
 * block inside the mapped range (`::ffff:10.0.0.0/104`) as the IPv4 block it covers (`10.0.0.0/8`), so
 * the same destination cannot be written two ways to get past a rule.
 *
 * Host bits after the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`), as Go's `Prefix.Masked`.
 */
import { formatIp, type IpAddress, isIPv4Mapped, parseIp, unmapIp } from "./ip.ts";

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address, host bits zero (4 or 16 bytes). */
  readonly bytes: Uint8Array;
  /** Prefix length: 0–32 for IPv4, 0–128 for IPv6. */
  readonly bits: number;
}

const PREFIX_TEXT = /^(0|[1-9][0-9]{0,2})$/;
/** Bits of `::ffff:0:0/96`, the IPv4-mapped range. */
const MAPPED_PREFIX_BITS = 96;

/** Copies `bytes` with every bit after the first `bits` cleared. */
function masked(bytes: Uint8Array, bits: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** Builds a block from an address and prefix length, unmapping a block inside the IPv4-mapped range. */
export function makeCidr(ip: IpAddress, bits: number): Cidr | undefined {
  const max = ip.family === 4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) return undefined;
  if (isIPv4Mapped(ip) && bits >= MAPPED_PREFIX_BITS) return makeCidr(unmapIp(ip), bits - MAPPED_PREFIX_BITS);
  return { family: ip.family, bytes: masked(ip.bytes, bits), bits };
}

/** Parses `ADDRESS/BITS` (no brackets, no zone), or returns undefined. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0 || slash !== text.lastIndexOf("/")) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefix = text.slice(slash + 1);
  if (!ip || !PREFIX_TEXT.test(prefix)) return undefined;
  return makeCidr(ip, Number(prefix));
}

/** Parses a CIDR or a single address (as a /32 or /128 block), or returns undefined. */
export function parseIpOrCidr(text: string): Cidr | undefined {
  if (text.includes("/")) return parseCidr(text);
  const ip = parseIp(text);
  return ip ? makeCidr(ip, ip.family === 4 ? 32 : 128) : undefined;
}

/** True when `ip` (unmapped first) is inside `cidr`. */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  const address = unmapIp(ip);
  if (address.family !== cidr.family) return false;
  const whole = cidr.bits >> 3;
  for (let i = 0; i < whole; i++) if (address.bytes[i] !== cidr.bytes[i]) return false;
  const rest = cidr.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address.bytes[whole]! & mask) === cidr.bytes[whole];
}

/** `ADDRESS/BITS` with the canonical address text. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, bytes: cidr.bytes })}/${cidr.bits}`;
}
