/**
 * A destination host as written by a peer or an operator: an IP literal (IPv6 optionally in brackets,
 * as URLs write it) or a host name. Pure; nothing here resolves a name.
 */
import { normaliseDomain } from "./domain.ts";
import { formatIp, type IpAddress, parseIp, parseIPv6, unmapIp } from "./ip.ts";

export type Host = { readonly kind: "ip"; readonly ip: IpAddress } | { readonly kind: "name"; readonly name: string };

/** Parses an IP literal (`10.0.0.1`, `::1`, `[::1]`) or a host name (normalised), or returns undefined. */
export function parseHost(text: string): Host | undefined {
  if (text.startsWith("[") && text.endsWith("]")) {
    const ip = parseIPv6(text.slice(1, -1));
    return ip ? { kind: "ip", ip } : undefined;
  }
  const ip = parseIp(text);
  if (ip) return { kind: "ip", ip };
  const name = normaliseDomain(text);
  return name === undefined ? undefined : { kind: "name", name };
}

/**
 * Canonical text to dial or log: the normalised name, or the address with IPv4-mapped IPv6 written as
 * the IPv4 address it stands for (no brackets).
 */
export function formatHost(host: Host): string {
  return host.kind === "name" ? host.name : formatIp(unmapIp(host.ip));
}

/**
 * `host:port` text, IPv6 in brackets: how the dialler names the address it tried and health checks
 * name the servers they probe, so a passive result finds its server.
 */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

const PORT_TEXT = /^[0-9]{1,5}$/;

/** Parses a port number 0–65535 written in decimal, or returns undefined. */
export function parsePort(text: string): number | undefined {
  if (!PORT_TEXT.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/**
 * Splits `host:port`, `[v6]:port`, `[v6]`, a bare IPv6 address or a bare host. `port` is undefined
 * when none is written. Returns undefined for a malformed port or stray brackets/colons. The host part
 * is returned as written (brackets removed), not validated.
 */
export function splitHostPort(text: string): { host: string; port: number | undefined } | undefined {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return undefined;
    const host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after === "") return { host, port: undefined };
    const port = after.startsWith(":") ? parsePort(after.slice(1)) : undefined;
    return port === undefined ? undefined : { host, port };
  }
  const colons = text.split(":").length - 1;
  if (colons === 0) return { host: text, port: undefined };
  if (colons > 1) return { host: text, port: undefined }; // bare IPv6: a port needs brackets
  const [host = "", portText = ""] = text.split(":");
  const port = parsePort(portText);
  return port === undefined ? undefined : { host, port };
}
