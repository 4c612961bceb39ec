/**
 * The tunnel's WebSocket opening handshake (RFC 6455 §4, docs/PROTOCOL.md §4) as pure functions:
 * build and check the client's upgrade request, build and check the gateway's answer. No I/O, so
 * both sides are tested with fixtures; the access token only ever travels as a `Secret`.
 */
import { createHash, randomBytes } from "node:crypto";
import { peerText } from "../../peer-text.ts";
import { Secret } from "../../secret.ts";
import { HttpHeadError } from "./errors.ts";
import { formatHostPort } from "../../netaddr/index.ts";
import {
  headerHasToken,
  headerList,
  reasonPhrase,
  serializeHead,
  type HttpRequestHead,
  type HttpResponseHead,
} from "./http-head.ts";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64. */
export function generateWebSocketKey(): string {
  return randomBytes(16).toString("base64");
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2: base64 SHA-1 of key ‖ GUID). */
export function computeAcceptKey(key: string): string {
  return createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64");
}

/** `Host` / CONNECT authority: IPv6 literals in brackets. */
export const formatAuthority = formatHostPort;

export interface UpgradeRequestInput {
  /** host:port for the Host header. */
  authority: string;
  path: string;
  key: string;
  /** Offered subprotocols, preferred first. */
  protocols: readonly string[];
  accessToken?: Secret<string> | undefined;
  connectorVersion: string;
}

export function buildUpgradeRequest(input: UpgradeRequestInput): Uint8Array {
  const headers: [string, string][] = [
    ["Host", input.authority],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", input.key],
    ["Sec-WebSocket-Version", "13"],
    ["Sec-WebSocket-Protocol", input.protocols.join(", ")],
  ];
  if (input.accessToken !== undefined) headers.push(["Authorization", `Bearer ${input.accessToken.reveal()}`]);
  headers.push(["X-Connector-Version", input.connectorVersion]);
  return serializeHead(`GET ${input.path} HTTP/1.1`, headers);
}

/** Why a 101 answer is not acceptable; the dialer maps it to TUNNEL_HANDSHAKE. */
export class UpgradeResponseError extends Error {
  override readonly name = "UpgradeResponseError";
}

/**
 * Checks a gateway's 101 answer against what we sent and returns the chosen subprotocol. Callers
 * handle non-101 statuses before calling this.
 */
export function checkUpgradeResponse(res: HttpResponseHead, key: string, offered: readonly string[]): string {
  const h = res.headers;
  if (res.status !== 101) throw new UpgradeResponseError(`expected status 101, got ${res.status}`);
  if (h.get("upgrade")?.toLowerCase() !== "websocket") throw new UpgradeResponseError("missing Upgrade: websocket");
  if (!headerHasToken(h.get("connection"), "upgrade")) throw new UpgradeResponseError("missing Connection: Upgrade");
  if (h.get("sec-websocket-accept") !== computeAcceptKey(key)) {
    throw new UpgradeResponseError("Sec-WebSocket-Accept does not match our key");
  }
  if (h.has("sec-websocket-extensions"))
    throw new UpgradeResponseError("gateway selected an extension we did not offer");
  const chosen = h.get("sec-websocket-protocol");
  if (chosen === undefined || !offered.includes(chosen)) {
    throw new UpgradeResponseError(
      `gateway selected subprotocol ${peerText(JSON.stringify(chosen ?? null), 80)}, not one we offered`,
    );
  }
  return chosen;
}

/** A valid upgrade request as the gateway sees it. */
export interface UpgradeRequest {
  readonly path: string;
  readonly host: string;
  readonly key: string;
  /** Offered subprotocols in the client's order of preference. */
  readonly protocols: readonly string[];
  readonly accessToken: Secret<string> | undefined;
  readonly connectorVersion: string | undefined;
  readonly headers: ReadonlyMap<string, string>;
}

/** An upgrade request the server refuses before authorisation, with the status to answer. */
export interface UpgradeRefusal {
  readonly status: number;
  readonly message: string;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

/** Validates an HTTP request as a WebSocket upgrade for `path`; returns the request or a refusal. */
export function checkUpgradeRequest(req: HttpRequestHead, path: string): UpgradeRequest | UpgradeRefusal {
  const h = req.headers;
  const targetPath = req.target.split("?")[0] ?? "";
  if (req.method !== "GET") return { status: 405, message: "only GET upgrades", headers: [["Allow", "GET"]] };
  if (targetPath !== path) return { status: 404, message: `no endpoint at ${targetPath}` };
  if (req.version !== "HTTP/1.1") return { status: 400, message: "HTTP/1.1 required" };
  const host = h.get("host");
  if (host === undefined || host === "") return { status: 400, message: "missing Host" };
  if (h.get("upgrade")?.toLowerCase() !== "websocket") return { status: 400, message: "missing Upgrade: websocket" };
  if (!headerHasToken(h.get("connection"), "upgrade")) return { status: 400, message: "missing Connection: Upgrade" };
  if (h.get("sec-websocket-version") !== "13") {
    return { status: 426, message: "WebSocket version 13 required", headers: [["Sec-WebSocket-Version", "13"]] };
  }
  const key = h.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return { status: 400, message: "invalid Sec-WebSocket-Key" };
  const auth = h.get("authorization");
  let accessToken: Secret<string> | undefined;
  if (auth !== undefined) {
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(auth);
    if (!m) return { status: 401, message: "Authorization must be a Bearer token" };
    accessToken = new Secret(m[1] ?? "");
  }
  return {
    path: targetPath,
    host,
    key,
    protocols: headerList(h.get("sec-websocket-protocol")),
    accessToken,
    connectorVersion: h.get("x-connector-version"),
    headers: h,
  };
}

export function isUpgradeRefusal(x: UpgradeRequest | UpgradeRefusal): x is UpgradeRefusal {
  return "status" in x;
}

/** Picks the first of `supported` (server's order of preference) that the client offered. */
export function negotiateProtocol(offered: readonly string[], supported: readonly string[]): string | undefined {
  return supported.find((p) => offered.includes(p));
}

export function buildSwitchingResponse(key: string, protocol: string): Uint8Array {
  return serializeHead("HTTP/1.1 101 Switching Protocols", [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", computeAcceptKey(key)],
    ["Sec-WebSocket-Protocol", protocol],
  ]);
}

/** A refusal with a short plain-text body; the connection is closed after it. */
export function buildRefusalResponse(
  status: number,
  message: string,
  headers: ReadonlyArray<readonly [string, string]> = [],
): Uint8Array {
  if (status < 300 || status > 599) throw new HttpHeadError(`not a refusal status: ${status}`);
  const body = Buffer.from(`${message}\n`, "utf8");
  const head = serializeHead(`HTTP/1.1 ${status} ${reasonPhrase(status)}`, [
    ...headers,
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Content-Length", String(body.length)],
    ["Connection", "close"],
  ]);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}
