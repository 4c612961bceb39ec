/**
 * Frame encoder: one function per frame type (PROTOCOL §5.2), pure, no I/O. Control frames come back as one
 * small buffer each; DATA is sent as a 12-byte header written by `writeHeader` into a shared slab,
 * followed by views of the stream's own chunks, so payload bytes are never copied here.
 * Inputs beyond the protocol's limits throw `FrameEncodeError`, except reason texts, which are cut
 * at a UTF-8 character boundary to fit their 512 bytes (they are informative only).
 */
import type { Secret } from "../secret.ts";
import {
  DataFlag,
  FrameType,
  type GoAwayCode,
  HEADER_BYTES,
  MAX_DATA_PAYLOAD,
  MAX_OPEN_FIELD_BYTES,
  MAX_PAYLOAD,
  MAX_REASON_BYTES,
  PING_PAYLOAD_BYTES,
  type StreamCode,
} from "./const.ts";
import { truncateUtf8 } from "../utf8.ts";
import { FrameEncodeError } from "./errors.ts";
import type { Frame } from "./frame-decoder.ts";
import type { HealthReport } from "./payloads.ts";

const utf8 = new TextEncoder();
const MAX_U32 = 0xffff_ffff;

/** Writes a v1 header (reserved zero) at `offset` of `target`; `flags` only on DATA (`DataFlag`). */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  type: FrameType,
  streamId: number,
  length: number,
  flags = 0,
): void {
  target[offset] = type;
  target[offset + 1] = flags;
  target[offset + 2] = 0;
  target[offset + 3] = 0;
  target[offset + 4] = streamId >>> 24;
  target[offset + 5] = streamId >>> 16;
  target[offset + 6] = streamId >>> 8;
  target[offset + 7] = streamId;
  target[offset + 8] = length >>> 24;
  target[offset + 9] = length >>> 16;
  target[offset + 10] = length >>> 8;
  target[offset + 11] = length;
}

function checkStreamId(streamId: number): void {
  if (!Number.isInteger(streamId) || streamId < 1 || streamId > MAX_U32) {
    throw new FrameEncodeError(`stream id ${streamId} is not in 1..2^32-1`);
  }
}

/** A frame with its header filled and room for `length` payload bytes at offset 12. */
function frame(type: FrameType, streamId: number, length: number): Uint8Array {
  if (length > MAX_PAYLOAD[type])
    throw new FrameEncodeError(`frame type ${type}: ${length} bytes exceed ${MAX_PAYLOAD[type]}`);
  const out = new Uint8Array(HEADER_BYTES + length);
  writeHeader(out, 0, type, streamId, length);
  return out;
}

function codeAndReason(type: FrameType, streamId: number, code: number, reason: string): Uint8Array {
  const text = truncateUtf8(reason, MAX_REASON_BYTES);
  const out = frame(type, streamId, 1 + text.length);
  out[HEADER_BYTES] = code;
  out.set(text, HEADER_BYTES + 1);
  return out;
}

function utf8Field(value: string, name: string, max: number): Uint8Array {
  const bytes = utf8.encode(value);
  if (bytes.length > max) throw new FrameEncodeError(`${name} is ${bytes.length} bytes, at most ${max} allowed`);
  return bytes;
}

export function encodeOpen(streamId: number, app: string, host: string, port: number): Uint8Array {
  checkStreamId(streamId);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new FrameEncodeError(`port ${port} is not 0..65535`);
  const appBytes = utf8Field(app, "app name", MAX_OPEN_FIELD_BYTES);
  const hostBytes = utf8Field(host, "host", MAX_OPEN_FIELD_BYTES);
  const out = frame(FrameType.OPEN, streamId, 4 + appBytes.length + hostBytes.length);
  let at = HEADER_BYTES;
  out[at++] = appBytes.length;
  out.set(appBytes, at);
  at += appBytes.length;
  out[at++] = hostBytes.length;
  out.set(hostBytes, at);
  at += hostBytes.length;
  out[at] = port >>> 8;
  out[at + 1] = port & 0xff;
  return out;
}

export function encodeOpenResult(streamId: number, code: StreamCode, message = ""): Uint8Array {
  checkStreamId(streamId);
  return codeAndReason(FrameType.OPEN_RESULT, streamId, code, message);
}

/** A whole DATA frame in one new buffer (copies; for tests and raw frames, not the data path). */
export function encodeData(streamId: number, payload: Uint8Array, creditExhausted = false): Uint8Array {
  checkStreamId(streamId);
  if (payload.length > MAX_DATA_PAYLOAD)
    throw new FrameEncodeError(`DATA of ${payload.length} bytes exceeds ${MAX_DATA_PAYLOAD}`);
  const out = frame(FrameType.DATA, streamId, payload.length);
  if (creditExhausted) out[1] = DataFlag.CREDIT_EXHAUSTED;
  out.set(payload, HEADER_BYTES);
  return out;
}

export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  checkStreamId(streamId);
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_U32) {
    throw new FrameEncodeError(`window increment ${increment} is not in 1..2^32-1`);
  }
  const out = frame(FrameType.WINDOW_UPDATE, streamId, 4);
  new DataView(out.buffer).setUint32(HEADER_BYTES, increment);
  return out;
}

export function encodeFin(streamId: number): Uint8Array {
  checkStreamId(streamId);
  return frame(FrameType.FIN, streamId, 0);
}

export function encodeReset(streamId: number, code: StreamCode, message = ""): Uint8Array {
  checkStreamId(streamId);
  return codeAndReason(FrameType.RESET, streamId, code, message);
}

function pingLike(type: FrameType, opaque: Uint8Array): Uint8Array {
  if (opaque.length !== PING_PAYLOAD_BYTES) throw new FrameEncodeError("PING/PONG payload must be 8 bytes");
  const out = frame(type, 0, PING_PAYLOAD_BYTES);
  out.set(opaque, HEADER_BYTES);
  return out;
}

export function encodePing(opaque: Uint8Array): Uint8Array {
  return pingLike(FrameType.PING, opaque);
}

export function encodePong(opaque: Uint8Array): Uint8Array {
  return pingLike(FrameType.PONG, opaque);
}

export function encodeGoAway(code: GoAwayCode, message = ""): Uint8Array {
  return codeAndReason(FrameType.GO_AWAY, 0, code, message);
}

function textFrame(type: FrameType, value: string, name: string): Uint8Array {
  const bytes = utf8Field(value, name, MAX_PAYLOAD[type]);
  const out = frame(type, 0, bytes.length);
  out.set(bytes, HEADER_BYTES);
  return out;
}

export function encodeTokenUpdate(token: Secret): Uint8Array {
  const value = token.reveal();
  if (value.length === 0) throw new FrameEncodeError("access token is empty");
  return textFrame(FrameType.TOKEN_UPDATE, value, "access token");
}

export function encodeHealthReport(report: HealthReport): Uint8Array {
  return textFrame(FrameType.HEALTH_REPORT, JSON.stringify(report), "health report");
}

export function encodeConfigChanged(catalogVersion: string): Uint8Array {
  return textFrame(FrameType.CONFIG_CHANGED, JSON.stringify({ catalogVersion }), "config-changed payload");
}

/** Encodes any frame value (the inverse of the decoder; used by tests and tools). */
export function encodeFrame(f: Frame): Uint8Array {
  switch (f.type) {
    case FrameType.OPEN:
      return encodeOpen(f.streamId, f.app, f.host, f.port);
    case FrameType.OPEN_RESULT:
      return encodeOpenResult(f.streamId, f.code, f.message);
    case FrameType.DATA:
      return encodeData(f.streamId, f.payload, f.creditExhausted);
    case FrameType.WINDOW_UPDATE:
      return encodeWindowUpdate(f.streamId, f.increment);
    case FrameType.FIN:
      return encodeFin(f.streamId);
    case FrameType.RESET:
      return encodeReset(f.streamId, f.code, f.message);
    case FrameType.PING:
    case FrameType.PONG:
      return pingLike(f.type, f.opaque);
    case FrameType.GO_AWAY:
      return encodeGoAway(f.code, f.message);
    case FrameType.TOKEN_UPDATE:
      return encodeTokenUpdate(f.token);
    case FrameType.HEALTH_REPORT:
      return encodeHealthReport(f.report);
    case FrameType.CONFIG_CHANGED:
      return encodeConfigChanged(f.catalogVersion);
  }
}
