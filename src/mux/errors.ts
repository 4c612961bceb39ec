/**
 * Tunnel errors as values with stable codes (like ws's `WS_ERR_*`): a `ProtocolError` carries the
 * WebSocket close code it maps to (1002), stream failures carry their PROTOCOL §5.3 code. Messages never
 * contain payload bytes or tokens, only sizes, types and ids.
 */
import { ConnectorError } from "../errors.ts";
import { CloseCode } from "../transport/close-code.ts";
import { type StreamCode, streamCodeName } from "./const.ts";

/** Why a peer's bytes broke the wire contract; each closes the tunnel with 1002 (PROTOCOL §5.1). */
export const ProtocolErrorCode = {
  /** A binary message with no frame in it (PROTOCOL §4: one or more whole frames). */
  EMPTY_MESSAGE: "PROTOCOL_EMPTY_MESSAGE",
  /** A message larger than MAX_MESSAGE_BYTES (PROTOCOL §4). */
  MESSAGE_TOO_LARGE: "PROTOCOL_MESSAGE_TOO_LARGE",
  /** A text WebSocket message (PROTOCOL §4); raised by the WebSocket transport. */
  TEXT_MESSAGE: "PROTOCOL_TEXT_MESSAGE",
  /** Fewer than 12 bytes left where a header should start. */
  TRUNCATED_HEADER: "PROTOCOL_TRUNCATED_HEADER",
  /** The payload length runs past the end of the message (PROTOCOL §5.1). */
  LENGTH_EXCEEDS_MESSAGE: "PROTOCOL_LENGTH_EXCEEDS_MESSAGE",
  /** The payload length is above the type's maximum (PROTOCOL §5.2). */
  LENGTH_EXCEEDS_MAX: "PROTOCOL_LENGTH_EXCEEDS_MAX",
  /** A type byte this version does not define (PROTOCOL §5.2). */
  UNKNOWN_TYPE: "PROTOCOL_UNKNOWN_TYPE",
  /** Flags must be 0 in v1 (PROTOCOL §5.1). */
  UNKNOWN_FLAGS: "PROTOCOL_UNKNOWN_FLAGS",
  /** The reserved u16 must be 0 (PROTOCOL §5.1). */
  RESERVED_NOT_ZERO: "PROTOCOL_RESERVED_NOT_ZERO",
  /** Stream frame on id 0, or tunnel frame on a non-zero id (PROTOCOL §5.2). */
  BAD_STREAM_ID: "PROTOCOL_BAD_STREAM_ID",
  /** A payload that does not have its type's structure (sizes). */
  BAD_PAYLOAD: "PROTOCOL_BAD_PAYLOAD",
  /** A text field that is not valid UTF-8. */
  BAD_UTF8: "PROTOCOL_BAD_UTF8",
  /** A JSON payload that does not parse or does not match its schema (PROTOCOL §5.9, §5.10). */
  BAD_JSON: "PROTOCOL_BAD_JSON",
  /** An OPEN whose id is not above every id seen before (PROTOCOL §5.2). */
  STREAM_ID_NOT_INCREASING: "PROTOCOL_STREAM_ID_NOT_INCREASING",
  /** A frame the peer's role may not send (e.g. OPEN from a connector, PROTOCOL §5.2 "sender"). */
  UNEXPECTED_FRAME: "PROTOCOL_UNEXPECTED_FRAME",
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/** The peer violated the wire contract; the tunnel is closed with `closeCode` (1002). */
export class ProtocolError extends ConnectorError {
  override readonly name = "ProtocolError";
  declare readonly code: ProtocolErrorCode;
  readonly closeCode: number = CloseCode.PROTOCOL_ERROR;
  constructor(code: ProtocolErrorCode, message: string) {
    super(code, message);
  }
}

/** The connector answered OPEN with a failure code (gateway side). */
export class OpenRejectedError extends ConnectorError {
  override readonly name = "OpenRejectedError";
  constructor(
    readonly result: StreamCode,
    readonly detail: string,
  ) {
    const name = streamCodeName(result);
    super(`OPEN_${name}`, detail ? `stream open refused: ${name}: ${detail}` : `stream open refused: ${name}`);
  }
}

/** No OPEN_RESULT arrived within `openTimeoutMs`; the stream was reset CANCELLED. */
export class OpenTimeoutError extends ConnectorError {
  override readonly name = "OpenTimeoutError";
  constructor(timeoutMs: number) {
    super("OPEN_TIMEOUT", `no answer to stream open within ${timeoutMs} ms`);
  }
}

/** A new stream was refused locally because a GO_AWAY was sent or received (PROTOCOL §5.7). */
export class TunnelDrainingError extends ConnectorError {
  override readonly name = "TunnelDrainingError";
  constructor() {
    super("TUNNEL_DRAINING", "tunnel is draining: no new streams");
  }
}

/** The tunnel went away; pending opens and open streams end with it. */
export class TunnelClosedError extends ConnectorError {
  override readonly name = "TunnelClosedError";
  constructor(reason: string) {
    super("TUNNEL_CLOSED", `tunnel closed: ${reason}`);
  }
}

/** Nothing was received for `missedHeartbeats` intervals (PROTOCOL §5.6). */
export class HeartbeatTimeoutError extends ConnectorError {
  override readonly name = "HeartbeatTimeoutError";
  constructor(silentMs: number) {
    super("TUNNEL_DEAD", `tunnel dead: nothing received for ${silentMs} ms`);
  }
}

/** A local caller used a stream in a way its state does not allow (a bug in the caller). */
export class StreamStateError extends ConnectorError {
  override readonly name = "StreamStateError";
  constructor(message: string) {
    super("STREAM_STATE", message);
  }
}

/** A value given to an encoder does not fit the protocol's limits (host too long, token too big…). */
export class FrameEncodeError extends ConnectorError {
  override readonly name = "FrameEncodeError";
  constructor(message: string) {
    super("FRAME_TOO_LARGE", message);
  }
}

/** Something inside this process failed while handling the tunnel (closes with 1011). */
export class SessionInternalError extends ConnectorError {
  override readonly name = "SessionInternalError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("TUNNEL_INTERNAL", message, undefined, options);
  }
}

/** A session method used by the wrong role (e.g. `open` on a connector): a bug in the caller. */
export class SessionUsageError extends ConnectorError {
  override readonly name = "SessionUsageError";
  constructor(message: string) {
    super("SESSION_USAGE", message);
  }
}

/** We reset a stream because the peer broke its rules (code PROTOCOL, PROTOCOL §5.4; code FLOW_CONTROL, §5.5); the tunnel stays up. */
export class StreamFaultError extends ConnectorError {
  override readonly name = "StreamFaultError";
  constructor(
    readonly result: StreamCode,
    detail: string,
  ) {
    super(`STREAM_${streamCodeName(result)}`, `stream reset ${streamCodeName(result)}: ${detail}`);
  }
}

/** Control frames piled up beyond `MAX_CONTROL_BACKLOG_BYTES` while the peer did not read (closes with 1011). */
export class ControlBacklogError extends ConnectorError {
  override readonly name = "ControlBacklogError";
  constructor(bytes: number) {
    super("TUNNEL_BACKLOG", `peer is not reading: ${bytes} bytes of control frames queued`);
  }
}
