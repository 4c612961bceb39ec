// @ts-check
/**
 * The tunnel frame codec of the interop gateway, written from docs/PROTOCOL.md §5 alone (header §5.1,
 * types and maxima §5.2, codes §5.3 and §5.7, errors §5.11). It shares nothing with src/: a misreading
 * of the document by the connector's codec shows up as a disagreement with this one.
 *
 * `encode` builds well-formed frames; `header` builds any 12 bytes, so tests can send what a gateway
 * must never send. `decodeMessage` reads one WebSocket message as a gateway does (frames the connector
 * may send) and throws `FrameError` with a `PROTOCOL_…` reason for anything §5.11 calls a tunnel fault.
 */

import {
  CREDIT_EXHAUSTED,
  HEADER_BYTES,
  isStreamType,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD,
  T,
  TYPE_NAMES,
  CODE_NAMES,
} from "./const.mjs";

export * from "./const.mjs";

/** A frame the gateway received that §5.11 calls a protocol error (the tunnel closes with 1002). */
export class FrameError extends Error {
  /** @param {string} reason `PROTOCOL_…`  @param {string} detail */
  constructor(reason, detail) {
    super(`${reason}: ${detail}`);
    this.reason = reason;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const enc = new TextEncoder();

/**
 * Twelve header bytes with any field values: a test can set flags, reserved bytes and lengths a
 * gateway must never send. @param {{ type: number, flags?: number, reserved?: number, streamId?: number, length: number }} h
 */
export function header(h) {
  const out = Buffer.alloc(HEADER_BYTES);
  out.writeUInt8(h.type, 0);
  out.writeUInt8(h.flags ?? 0, 1);
  out.writeUInt16BE(h.reserved ?? 0, 2);
  out.writeUInt32BE(h.streamId ?? 0, 4);
  out.writeUInt32BE(h.length, 8);
  return out;
}

/** @param {number} type @param {number} streamId @param {Uint8Array} payload @param {number} [flags] */
export function frame(type, streamId, payload, flags = 0) {
  return Buffer.concat([header({ type, flags, streamId, length: payload.length }), payload]);
}

/** code (u8) + UTF-8 text: OPEN_RESULT, RESET, GO_AWAY. @param {number} code @param {string} text */
const coded = (code, text) => Buffer.concat([Buffer.of(code), enc.encode(text)]);

/** @param {string} s one-byte-length-prefixed UTF-8 */
function lenText(s) {
  const bytes = enc.encode(s);
  if (bytes.length > 255) throw new RangeError("OPEN text over 255 bytes");
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

/** Well-formed frames, one function per §5.2 type. */
export const encode = {
  /** @param {number} id @param {string} app @param {string} host @param {number} port */
  open: (id, app, host, port) => {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(port);
    return frame(T.OPEN, id, Buffer.concat([lenText(app), lenText(host), p]));
  },
  /** @param {number} id @param {number} code @param {string} [message] */
  openResult: (id, code, message = "") => frame(T.OPEN_RESULT, id, coded(code, message)),
  /** @param {number} id @param {Uint8Array} bytes @param {boolean} [creditExhausted] */
  data: (id, bytes, creditExhausted = false) => frame(T.DATA, id, bytes, creditExhausted ? CREDIT_EXHAUSTED : 0),
  /** @param {number} id @param {number} increment */
  windowUpdate: (id, increment) => {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(increment);
    return frame(T.WINDOW_UPDATE, id, p);
  },
  /** @param {number} id */
  fin: (id) => frame(T.FIN, id, Buffer.alloc(0)),
  /** @param {number} id @param {number} code @param {string} [message] */
  reset: (id, code, message = "") => frame(T.RESET, id, coded(code, message)),
  /** @param {Uint8Array} opaque 8 bytes */
  ping: (opaque) => frame(T.PING, 0, opaque),
  /** @param {Uint8Array} opaque */
  pong: (opaque) => frame(T.PONG, 0, opaque),
  /** @param {number} code @param {string} [message] */
  goAway: (code, message = "") => frame(T.GO_AWAY, 0, coded(code, message)),
  /** @param {string} token */
  tokenUpdate: (token) => frame(T.TOKEN_UPDATE, 0, enc.encode(token)),
  /** @param {unknown} report */
  healthReport: (report) => frame(T.HEALTH_REPORT, 0, enc.encode(JSON.stringify(report))),
  /** @param {string} catalogVersion */
  configChanged: (catalogVersion) => frame(T.CONFIG_CHANGED, 0, enc.encode(JSON.stringify({ catalogVersion }))),
};

/**
 * @typedef {{ type: number, name: string, flags: number, streamId: number, length: number, payload: Buffer,
 *   app?: string, host?: string, port?: number, code?: number, message?: string, increment?: number,
 *   creditExhausted?: boolean, opaque?: Buffer, token?: string, json?: any, at?: number }} Frame
 */

/** @param {Buffer} b @param {string} what */
function text(b, what) {
  try {
    return utf8.decode(b);
  } catch {
    throw new FrameError("PROTOCOL_BAD_UTF8", `${what} is not UTF-8`);
  }
}

/** @param {Buffer} b @param {string} what */
function json(b, what) {
  try {
    return JSON.parse(text(b, what));
  } catch (err) {
    if (err instanceof FrameError) throw err;
    throw new FrameError("PROTOCOL_BAD_JSON", `${what} is not JSON`);
  }
}

const isObject = (/** @type {unknown} */ v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** §5.9: `{ apps: [ { name, servers: [ { address, healthy } ] } ] }`, each app once. @param {any} r */
export function healthReportProblem(r) {
  if (!isObject(r) || !Array.isArray(r.apps)) return "no apps array";
  const names = new Set();
  for (const app of r.apps) {
    if (!isObject(app) || typeof app.name !== "string" || !Array.isArray(app.servers))
      return "an app without name/servers";
    if (names.has(app.name)) return `app ${app.name} twice`;
    names.add(app.name);
    for (const s of app.servers) {
      if (!isObject(s) || typeof s.address !== "string" || typeof s.healthy !== "boolean") return "a bad server entry";
      if (!/^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):\d{1,5}$/.test(s.address))
        return `server address ${s.address} is not host:port`;
    }
  }
  return undefined;
}

/**
 * Reads the payload of one frame whose header already passed the §5.1 checks.
 * @param {Frame} f
 */
function readPayload(f) {
  const p = f.payload;
  switch (f.type) {
    case T.OPEN: {
      const appLen = p[0];
      const hostAt = 1 + (appLen ?? 0);
      const hostLen = p[hostAt];
      if (appLen === undefined || hostLen === undefined || hostAt + 1 + hostLen + 2 !== p.length)
        throw new FrameError("PROTOCOL_BAD_PAYLOAD", "OPEN lengths do not add up");
      f.app = text(p.subarray(1, hostAt), "OPEN app");
      f.host = text(p.subarray(hostAt + 1, hostAt + 1 + hostLen), "OPEN host");
      f.port = p.readUInt16BE(p.length - 2);
      return;
    }
    case T.OPEN_RESULT:
    case T.RESET:
    case T.GO_AWAY:
      if (p.length < 1) throw new FrameError("PROTOCOL_BAD_PAYLOAD", `${f.name} without a code`);
      f.code = p[0];
      f.message = text(p.subarray(1), `${f.name} message`);
      return;
    case T.DATA:
      f.creditExhausted = (f.flags & CREDIT_EXHAUSTED) !== 0;
      return;
    case T.WINDOW_UPDATE:
      if (p.length !== 4) throw new FrameError("PROTOCOL_BAD_PAYLOAD", "WINDOW_UPDATE is not 4 bytes");
      f.increment = p.readUInt32BE(0);
      return;
    case T.PING:
    case T.PONG:
      if (p.length !== 8) throw new FrameError("PROTOCOL_BAD_PAYLOAD", `${f.name} is not 8 bytes`);
      f.opaque = p;
      return;
    case T.TOKEN_UPDATE:
      f.token = text(p, "TOKEN_UPDATE");
      return;
    case T.HEALTH_REPORT: {
      f.json = json(p, "HEALTH_REPORT");
      const problem = healthReportProblem(f.json);
      if (problem) throw new FrameError("PROTOCOL_BAD_JSON", `HEALTH_REPORT: ${problem}`);
      return;
    }
    case T.CONFIG_CHANGED:
      f.json = json(p, "CONFIG_CHANGED");
      if (!isObject(f.json) || typeof f.json.catalogVersion !== "string")
        throw new FrameError("PROTOCOL_BAD_JSON", "CONFIG_CHANGED without catalogVersion");
      return;
  }
}

/**
 * Splits one WebSocket message into frames and checks each (§4: one or more whole frames; §5.1, §5.2).
 * `accepts(type)` says which types the receiving role takes; any other is PROTOCOL_UNEXPECTED_FRAME.
 * @param {Buffer} message @param {(type: number) => boolean} [accepts]
 * @returns {Frame[]}
 */
export function decodeMessage(message, accepts = () => true) {
  if (message.length === 0) throw new FrameError("PROTOCOL_EMPTY_MESSAGE", "a message carries at least one frame");
  if (message.length > MAX_MESSAGE_BYTES) throw new FrameError("PROTOCOL_MESSAGE_TOO_LARGE", `${message.length} bytes`);
  /** @type {Frame[]} */
  const frames = [];
  let at = 0;
  while (at < message.length) {
    if (message.length - at < HEADER_BYTES)
      throw new FrameError("PROTOCOL_TRUNCATED_HEADER", `${message.length - at} bytes left for a 12-byte header`);
    const type = message.readUInt8(at);
    const flags = message.readUInt8(at + 1);
    const reserved = message.readUInt16BE(at + 2);
    const streamId = message.readUInt32BE(at + 4);
    const length = message.readUInt32BE(at + 8);
    const name = TYPE_NAMES[type];
    if (name === undefined) throw new FrameError("PROTOCOL_UNKNOWN_TYPE", `type 0x${type.toString(16)}`);
    if (flags & ~(type === T.DATA ? CREDIT_EXHAUSTED : 0))
      throw new FrameError("PROTOCOL_UNKNOWN_FLAGS", `flags 0x${flags.toString(16)} on ${name}`);
    if (reserved !== 0) throw new FrameError("PROTOCOL_RESERVED_NOT_ZERO", `reserved 0x${reserved.toString(16)}`);
    if (isStreamType(type) === (streamId === 0))
      throw new FrameError("PROTOCOL_BAD_STREAM_ID", `${name} on stream ${streamId}`);
    if (length > MAX_PAYLOAD[type]) throw new FrameError("PROTOCOL_LENGTH_EXCEEDS_MAX", `${name} of ${length} bytes`);
    if (length > message.length - at - HEADER_BYTES)
      throw new FrameError("PROTOCOL_LENGTH_EXCEEDS_MESSAGE", `${name} of ${length} bytes`);
    if (!accepts(type)) throw new FrameError("PROTOCOL_UNEXPECTED_FRAME", `${name} is not for this role`);
    const payload = message.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
    /** @type {Frame} */
    const f = { type, name, flags, streamId, length, payload };
    readPayload(f);
    frames.push(f);
    at += HEADER_BYTES + length;
  }
  return frames;
}

/** What a gateway accepts (§5.2 "sender" column: connector or both). */
export const gatewayAccepts = (/** @type {number} */ type) => type !== T.OPEN && type !== T.CONFIG_CHANGED;
/** What a connector accepts. */
export const connectorAccepts = (/** @type {number} */ type) =>
  type !== T.OPEN_RESULT && type !== T.TOKEN_UPDATE && type !== T.HEALTH_REPORT;

/** One line per frame for the failure log. @param {Frame} f */
export function describe(f) {
  const parts = [f.name, `#${f.streamId}`];
  if (f.type === T.OPEN) parts.push(`${f.app} ${f.host}:${f.port}`);
  if (f.code !== undefined) parts.push(`${CODE_NAMES[f.code] ?? f.code}${f.message ? ` "${f.message}"` : ""}`);
  if (f.type === T.GO_AWAY) parts[2] = `code ${f.code}${f.message ? ` "${f.message}"` : ""}`;
  if (f.type === T.DATA) parts.push(`${f.length} B${f.creditExhausted ? " CREDIT_EXHAUSTED" : ""}`);
  if (f.increment !== undefined) parts.push(`+${f.increment}`);
  if (f.opaque) parts.push(f.opaque.toString("hex"));
  if (f.type === T.TOKEN_UPDATE) parts.push(`(${f.length} B token)`);
  if (f.json !== undefined && f.type !== T.TOKEN_UPDATE) parts.push(JSON.stringify(f.json).slice(0, 200));
  return parts.join(" ");
}
