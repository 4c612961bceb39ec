/**
 * IP address parsing and formatting, strict and pure (no I/O, no node:net), so the allow-list and the
 * proxy bypass list agree byte for byte on what an address is.
 *
 * What is accepted, and why it is strict:
 * - IPv4: exactly four decimal parts 0–255, no leading zeros (`010.0.0.1` is refused: resolvers read
 *   it as octal, 8.0.0.1, so accepting it as 10.0.0.1 would let a request slip past a CIDR rule);
 *   no shorthand (`127.1`), no hex.
 * - IPv6: RFC 4291 text forms, compressed (`::`) or not, hex groups of 1–4 digits, an embedded IPv4
 *   tail (`64:ff9b::1.2.3.4`), any case. Zone ids (`fe80::1%eth0`) and brackets are refused: a zone
 *   names a local interface and has no meaning in a policy.
 * - IPv4-mapped IPv6 (`::ffff:10.1.2.3`) parses as IPv6; `unmapIp` turns it into the IPv4 address it
 *   stands for, which is how matching compares it (see cidr.ts).
 */

/** An IP address: 4 bytes for IPv4, 16 for IPv6, network order. Treat `bytes` as read-only. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** Longest IPv6 text we accept: eight groups with an IPv4 tail, `ffff:…:ffff:255.255.255.255`. */
const MAX_IPV6_TEXT = 45;
const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses dotted-quad IPv4, or returns undefined. */
export function parseIPv4(text: string): IpAddress | undefined {
  if (text.length > 15) return undefined;
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return { family: 4, bytes };
}

/** Parses one side of `::` into 16-bit groups; an IPv4 tail counts as two groups. */
function parseGroups(text: string, allowIpv4Tail: boolean): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (allowIpv4Tail && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (!v4) return undefined;
      groups.push((v4.bytes[0]! << 8) | v4.bytes[1]!, (v4.bytes[2]! << 8) | v4.bytes[3]!);
    } else {
      if (!HEX_GROUP.test(part)) return undefined;
      groups.push(parseInt(part, 16));
    }
  }
  return groups;
}

/** Parses IPv6 text (no brackets, no zone id), or returns undefined. */
export function parseIPv6(text: string): IpAddress | undefined {
  if (text.length < 2 || text.length > MAX_IPV6_TEXT || !text.includes(":")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 1) {
    const all = parseGroups(text, true);
    if (all?.length !== 8) return undefined;
    groups = all;
  } else {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    // `::` stands for at least one zero group, so at most seven are written.
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return { family: 6, bytes };
}

/** Parses an IPv4 or IPv6 address as written (mapped addresses stay IPv6), or returns undefined. */
export function parseIp(text: string): IpAddress | undefined {
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

/** True for `::ffff:a.b.c.d`: the first 80 bits zero, the next 16 bits one. */
export function isIPv4Mapped(ip: IpAddress): boolean {
  if (ip.family !== 6) return false;
  for (let i = 0; i < 10; i++) if (ip.bytes[i] !== 0) return false;
  return ip.bytes[10] === 0xff && ip.bytes[11] === 0xff;
}

/** The IPv4 address an IPv4-mapped IPv6 address stands for; any other address unchanged. */
export function unmapIp(ip: IpAddress): IpAddress {
  return isIPv4Mapped(ip) ? { family: 4, bytes: ip.bytes.slice(12, 16) } : ip;
}

/** True when both are the same address after unmapping (`::ffff:1.2.3.4` equals `1.2.3.4`). */
export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  const x = unmapIp(a);
  const y = unmapIp(b);
  return x.family === y.family && x.bytes.every((byte, i) => byte === y.bytes[i]);
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed, mapped as `::ffff:a.b.c.d`). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  if (isIPv4Mapped(ip)) return `::ffff:${Array.from(ip.bytes.subarray(12)).join(".")}`;
  const groups = Array.from({ length: 8 }, (_, i) => (ip.bytes[2 * i]! << 8) | ip.bytes[2 * i + 1]!);
  const run = longestZeroRun(groups);
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (!run) return hex(groups);
  return `${hex(groups.slice(0, run.start))}::${hex(groups.slice(run.start + run.length))}`;
}

/** RFC 5952 §4.2: the longest run of two or more zero groups, the first one on a tie. */
function longestZeroRun(groups: number[]): { start: number; length: number } | undefined {
  let best: { start: number; length: number } | undefined;
  let i = 0;
  while (i < groups.length) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    const start = i;
    while (i < groups.length && groups[i] === 0) i++;
    const length = i - start;
    if (length >= 2 && (!best || length > best.length)) best = { start, length };
  }
  return best;
}
