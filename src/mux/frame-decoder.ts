/**
 * Frame decoder: turns one transport message into typed frames (PROTOCOL §5), with no I/O and no state between
 * messages (a frame never spans two messages, PROTOCOL §4). Every violation of PROTOCOL §4–§5.2 throws a `ProtocolError`
 * and nothing else: the decoder never trusts a length before checking it against both the type's
 * maximum and the bytes left. DATA payloads are views into the message (no copy), valid as long as the
 * message buffer is (for a `Transport`, only during its `message` callback).
 */
import * as v from "valibot";
import { peerText } from "../peer-text.ts";
import { Secret } from "../secret.ts";
import {
  DATA_FLAGS_MASK,
  DataFlag,
  FrameType,
  type GoAwayCode,
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD,
  MAX_REASON_BYTES,
  OFFSET_LENGTH,
  OFFSET_RESERVED,
  OFFSET_STREAM_ID,
  PING_PAYLOAD_BYTES,
  type StreamCode,
  toGoAwayCode,
  toStreamCode,
  WINDOW_UPDATE_PAYLOAD_BYTES,
} from "./const.ts";
import { ProtocolError, ProtocolErrorCode as E } from "./errors.ts";
import { ConfigChangedSchema, type HealthReport, HealthReportSchema } from "./payloads.ts";

export interface OpenFrame {
  readonly type: typeof FrameType.OPEN;
  readonly streamId: number;
  readonly app: string;
  readonly host: string;
  readonly port: number;
  /**
   * Set when app or host is not valid UTF-8 (then both are ""): the frame is well formed and names its
   * stream, so the fault is that stream's, answered RESET PROTOCOL, not the tunnel's.
   */
  readonly malformed?: string;
}
export interface OpenResultFrame {
  readonly type: typeof FrameType.OPEN_RESULT;
  readonly streamId: number;
  readonly code: StreamCode;
  readonly message: string;
}
export interface DataFrame {
  readonly type: typeof FrameType.DATA;
  readonly streamId: number;
  /** A view into the message buffer. */
  readonly payload: Uint8Array;
  /** The sender used its last credit with this frame (`DataFlag.CREDIT_EXHAUSTED`). */
  readonly creditExhausted: boolean;
}
export interface WindowUpdateFrame {
  readonly type: typeof FrameType.WINDOW_UPDATE;
  readonly streamId: number;
  readonly increment: number;
}
export interface FinFrame {
  readonly type: typeof FrameType.FIN;
  readonly streamId: number;
}
export interface ResetFrame {
  readonly type: typeof FrameType.RESET;
  readonly streamId: number;
  readonly code: StreamCode;
  readonly message: string;
}
export interface PingFrame {
  readonly type: typeof FrameType.PING;
  readonly streamId: 0;
  /** The 8 opaque bytes (a view into the message buffer). */
  readonly opaque: Uint8Array;
}
export interface PongFrame {
  readonly type: typeof FrameType.PONG;
  readonly streamId: 0;
  /** The 8 bytes of the PING it answers (a view into the message buffer). */
  readonly opaque: Uint8Array;
}
export interface GoAwayFrame {
  readonly type: typeof FrameType.GO_AWAY;
  readonly streamId: 0;
  readonly code: GoAwayCode;
  readonly message: string;
}
export interface TokenUpdateFrame {
  readonly type: typeof FrameType.TOKEN_UPDATE;
  readonly streamId: 0;
  readonly token: Secret;
}
export interface HealthReportFrame {
  readonly type: typeof FrameType.HEALTH_REPORT;
  readonly streamId: 0;
  readonly report: HealthReport;
}
export interface ConfigChangedFrame {
  readonly type: typeof FrameType.CONFIG_CHANGED;
  readonly streamId: 0;
  readonly catalogVersion: string;
}

export type Frame =
  | OpenFrame
  | OpenResultFrame
  | DataFrame
  | WindowUpdateFrame
  | FinFrame
  | ResetFrame
  | PingFrame
  | PongFrame
  | GoAwayFrame
  | TokenUpdateFrame
  | HealthReportFrame
  | ConfigChangedFrame;

/** Receives each frame in order; return `false` to stop decoding the rest of the message. */
export type FrameHandler = (frame: Frame) => boolean | undefined;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function text(bytes: Uint8Array, start: number, end: number): string {
  if (start === end) return "";
  try {
    return utf8.decode(bytes.subarray(start, end));
  } catch {
    throw new ProtocolError(E.BAD_UTF8, "text field is not valid UTF-8");
  }
}

function json<T>(bytes: Uint8Array, start: number, end: number, schema: v.GenericSchema<unknown, T>, what: string): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text(bytes, start, end));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(E.BAD_JSON, `${what} is not valid JSON`);
  }
  const result = v.safeParse(schema, parsed);
  if (!result.success) throw new ProtocolError(E.BAD_JSON, `${what} does not match its schema`);
  return result.output;
}

function badPayload(type: string, detail: string): ProtocolError {
  return new ProtocolError(E.BAD_PAYLOAD, `${type} payload ${detail}`);
}

/** Checks the header fields that do not depend on the payload bytes. */
function checkHeader(type: number, flags: number, reserved: number, streamId: number, length: number): void {
  const max = MAX_PAYLOAD[type as FrameType];
  if (max === undefined) throw new ProtocolError(E.UNKNOWN_TYPE, `unknown frame type 0x${type.toString(16)}`);
  const known = type === FrameType.DATA ? DATA_FLAGS_MASK : 0;
  if ((flags & ~known) !== 0) throw new ProtocolError(E.UNKNOWN_FLAGS, `frame type ${type} has unknown flags ${flags}`);
  if (reserved !== 0) throw new ProtocolError(E.RESERVED_NOT_ZERO, `frame type ${type} has reserved bits set`);
  const isStreamFrame = type <= FrameType.RESET;
  if (isStreamFrame === (streamId === 0)) {
    throw new ProtocolError(E.BAD_STREAM_ID, `frame type ${type} on stream id ${streamId}`);
  }
  if (length > max) {
    throw new ProtocolError(E.LENGTH_EXCEEDS_MAX, `frame type ${type} length ${length} exceeds its maximum ${max}`);
  }
}

function decodeOpen(bytes: Uint8Array, view: DataView, streamId: number, start: number, end: number): OpenFrame {
  const appLen = start < end ? bytes[start]! : -1;
  const hostAt = start + 1 + appLen;
  const hostLen = appLen >= 0 && hostAt < end ? bytes[hostAt]! : -1;
  const portAt = hostAt + 1 + hostLen;
  if (hostLen < 0 || portAt + 2 !== end) throw badPayload("OPEN", "does not match app, host and port lengths");
  const port = view.getUint16(portAt);
  try {
    return {
      type: FrameType.OPEN,
      streamId,
      app: text(bytes, start + 1, hostAt),
      host: text(bytes, hostAt + 1, portAt),
      port,
    };
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return {
      type: FrameType.OPEN,
      streamId,
      app: "",
      host: "",
      port,
      malformed: "OPEN app or host is not valid UTF-8",
    };
  }
}

/** Code byte followed by a UTF-8 reason (OPEN_RESULT, RESET, GO_AWAY). */
function codeAndMessage(bytes: Uint8Array, start: number, end: number, name: string): [number, string] {
  if (end - start < 1) throw badPayload(name, "has no code");
  // The gateway's words end up in logs, errors and status: made printable here, where they enter.
  return [bytes[start]!, peerText(text(bytes, start + 1, end), MAX_REASON_BYTES)];
}

function decodePayload(
  type: number,
  flags: number,
  streamId: number,
  bytes: Uint8Array,
  view: DataView,
  start: number,
  end: number,
): Frame {
  switch (type) {
    case FrameType.DATA:
      return {
        type,
        streamId,
        payload: bytes.subarray(start, end),
        creditExhausted: (flags & DataFlag.CREDIT_EXHAUSTED) !== 0,
      };
    case FrameType.WINDOW_UPDATE: {
      if (end - start !== WINDOW_UPDATE_PAYLOAD_BYTES) throw badPayload("WINDOW_UPDATE", "is not 4 bytes");
      // A zero increment is that stream's fault (RESET PROTOCOL, see Stream.handleWindowUpdate), not the tunnel's.
      return { type, streamId, increment: view.getUint32(start) };
    }
    case FrameType.FIN:
      return { type, streamId };
    case FrameType.OPEN:
      return decodeOpen(bytes, view, streamId, start, end);
    case FrameType.OPEN_RESULT:
    case FrameType.RESET: {
      const [code, message] = codeAndMessage(bytes, start, end, type === FrameType.RESET ? "RESET" : "OPEN_RESULT");
      return { type, streamId, code: toStreamCode(code), message };
    }
    case FrameType.PING:
    case FrameType.PONG: {
      if (end - start !== PING_PAYLOAD_BYTES) throw badPayload("PING/PONG", "is not 8 bytes");
      const opaque = bytes.subarray(start, end);
      return type === FrameType.PING ? { type, streamId: 0, opaque } : { type, streamId: 0, opaque };
    }
    case FrameType.GO_AWAY: {
      const [code, message] = codeAndMessage(bytes, start, end, "GO_AWAY");
      return { type, streamId: 0, code: toGoAwayCode(code), message };
    }
    case FrameType.TOKEN_UPDATE:
      if (end === start) throw badPayload("TOKEN_UPDATE", "is empty");
      return { type, streamId: 0, token: new Secret(text(bytes, start, end)) };
    case FrameType.HEALTH_REPORT:
      return { type, streamId: 0, report: json(bytes, start, end, HealthReportSchema, "HEALTH_REPORT") };
    case FrameType.CONFIG_CHANGED: {
      const { catalogVersion } = json(bytes, start, end, ConfigChangedSchema, "CONFIG_CHANGED");
      return { type, streamId: 0, catalogVersion };
    }
    default:
      throw new ProtocolError(E.UNKNOWN_TYPE, `unknown frame type 0x${type.toString(16)}`);
  }
}

/**
 * Decodes every frame of one message, calling `onFrame` for each in order. Throws `ProtocolError` at
 * the first violation; frames before it have already been delivered. Returns the number delivered.
 */
export function decodeMessage(bytes: Uint8Array, onFrame: FrameHandler): number {
  const size = bytes.length;
  if (size === 0) throw new ProtocolError(E.EMPTY_MESSAGE, "message carries no frame");
  if (size > MAX_MESSAGE_BYTES) {
    throw new ProtocolError(E.MESSAGE_TOO_LARGE, `message of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  let offset = 0;
  let count = 0;
  while (offset < size) {
    if (size - offset < HEADER_BYTES) {
      throw new ProtocolError(E.TRUNCATED_HEADER, `${size - offset} bytes left where a 12-byte header starts`);
    }
    const type = bytes[offset]!;
    const streamId = view.getUint32(offset + OFFSET_STREAM_ID);
    const length = view.getUint32(offset + OFFSET_LENGTH);
    const flags = bytes[offset + 1]!;
    checkHeader(type, flags, view.getUint16(offset + OFFSET_RESERVED), streamId, length);
    const start = offset + HEADER_BYTES;
    if (length > size - start) {
      throw new ProtocolError(
        E.LENGTH_EXCEEDS_MESSAGE,
        `frame length ${length} exceeds the ${size - start} bytes left`,
      );
    }
    offset = start + length;
    count++;
    if (onFrame(decodePayload(type, flags, streamId, bytes, view, start, offset)) === false) break;
  }
  return count;
}
