/**
 * Minimal HTTP/1.1 head handling for the upgrade and proxy exchanges: collect bytes up to the blank
 * line (bounded), parse a request or status line plus headers, and serialise heads. Only what an
 * upgrade needs: no bodies, no chunking. Malformed input is an `HttpHeadError`.
 */
import { HttpHeadError } from "./errors.ts";

export interface HttpHead {
  /** Lower-cased header name → value; repeated headers are joined with ", " (RFC 9110 §5.3). */
  readonly headers: ReadonlyMap<string, string>;
}
export interface HttpRequestHead extends HttpHead {
  readonly method: string;
  readonly target: string;
  readonly version: string;
}
export interface HttpResponseHead extends HttpHead {
  readonly status: number;
  readonly reason: string;
}

const CRLFCRLF = [13, 10, 13, 10] as const;

/**
 * Accumulates bytes until the end of an HTTP head. `push` returns null while incomplete, then the
 * head (latin1 text, without the blank line) and the bytes that followed it in the same chunk.
 */
export class HeadCollector {
  #buf = new Uint8Array(0);
  constructor(private readonly maxBytes: number) {}

  push(chunk: Uint8Array): { head: string; rest: Uint8Array } | null {
    const scanFrom = Math.max(0, this.#buf.length - 3);
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    const end = findHeadEnd(joined, scanFrom);
    if (end < 0) {
      if (joined.length > this.maxBytes) throw new HttpHeadError(`HTTP head longer than ${this.maxBytes} bytes`);
      this.#buf = joined;
      return null;
    }
    if (end > this.maxBytes) throw new HttpHeadError(`HTTP head longer than ${this.maxBytes} bytes`);
    this.#buf = new Uint8Array(0);
    return {
      head: Buffer.from(joined.buffer, joined.byteOffset, end).toString("latin1"),
      rest: joined.subarray(end + 4),
    };
  }
}

function findHeadEnd(buf: Uint8Array, from: number): number {
  for (let i = buf.indexOf(13, from); i >= 0 && i + 3 < buf.length; i = buf.indexOf(13, i + 1)) {
    if (buf[i + 1] === CRLFCRLF[1] && buf[i + 2] === CRLFCRLF[2] && buf[i + 3] === CRLFCRLF[3]) return i;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseHeaderLines(lines: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) throw new HttpHeadError("malformed header line");
    const key = name.toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(key);
    headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return headers;
}

export function parseRequestHead(head: string): HttpRequestHead {
  const [first = "", ...lines] = head.split("\r\n");
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(first);
  if (!m) throw new HttpHeadError("malformed request line");
  return { method: m[1] ?? "", target: m[2] ?? "", version: m[3] ?? "", headers: parseHeaderLines(lines) };
}

export function parseResponseHead(head: string): HttpResponseHead {
  const [first = "", ...lines] = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(first);
  if (!m) throw new HttpHeadError("malformed status line");
  return { status: Number(m[1]), reason: m[2] ?? "", headers: parseHeaderLines(lines) };
}

/** Comma-separated header value → trimmed, non-empty elements. */
export function headerList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** True when the comma-separated header contains `token` (case-insensitive). */
export function headerHasToken(value: string | undefined, token: string): boolean {
  const t = token.toLowerCase();
  return headerList(value).some((v) => v.toLowerCase() === t);
}

/** Serialises a head; refuses CR/LF in names or values (header injection). */
export function serializeHead(firstLine: string, headers: ReadonlyArray<readonly [string, string]>): Uint8Array {
  let text = `${firstLine}\r\n`;
  for (const [name, value] of headers) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) throw new HttpHeadError(`invalid header ${name}`);
    text += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, "latin1");
}

const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Status";
}
