/**
 * Wire constants of the tunnel protocol v1 (docs/PROTOCOL.md §4–§5): frame header layout, frame types,
 * per-type payload limits and the code tables. Everything here is fixed by the contract: changing a value
 * needs a new protocol version. Tunables (frame size we send, stream limits, heartbeats) live in
 * `config.ts`.
 */

/** The subprotocol that names this protocol version and the largest message (PROTOCOL §4) are enforced
 * by the WebSocket transport, which defines them; the tunnel protocol's constants include them. */
export { MAX_MESSAGE_BYTES, SUBPROTOCOL_V1 as SUBPROTOCOL } from "../transport/websocket/config.ts";

/** Header: type u8, flags u8, reserved u16, stream id u32, payload length u32 (PROTOCOL §5.1). */
export const HEADER_BYTES = 12;
export const OFFSET_TYPE = 0;
export const OFFSET_FLAGS = 1;
export const OFFSET_RESERVED = 2;
export const OFFSET_STREAM_ID = 4;
export const OFFSET_LENGTH = 8;

/**
 * DATA flags (PROTOCOL §5.5). CREDIT_EXHAUSTED: this frame used the last of the sender's credit, so the sender
 * now waits for a WINDOW_UPDATE. It is how a receiver learns that its window, not the link or the
 * application, limits the stream; no other frame type has flags.
 */
export const DataFlag = {
  CREDIT_EXHAUSTED: 0x01,
} as const;
export const DATA_FLAGS_MASK = DataFlag.CREDIT_EXHAUSTED;

/** Frame types (PROTOCOL §5.2). */
export const FrameType = {
  /** Gateway asks the connector to open a stream to app/host/port. */
  OPEN: 0x01,
  /** Connector answers an OPEN: OK or why not. */
  OPEN_RESULT: 0x02,
  /** Stream bytes, covered by the receiver's window. */
  DATA: 0x03,
  /** Receiver grants the sender more window. */
  WINDOW_UPDATE: 0x04,
  /** Half-close: the sender sends no more DATA on this stream. */
  FIN: 0x05,
  /** Abort the stream both ways. */
  RESET: 0x06,
  /** Liveness probe, 8 opaque bytes. */
  PING: 0x07,
  /** Answer to PING with the same 8 bytes. */
  PONG: 0x08,
  /** Sender is draining: no new streams on this tunnel. */
  GO_AWAY: 0x09,
  /** Connector hands the gateway a fresh access token. */
  TOKEN_UPDATE: 0x0a,
  /** Connector reports app server health (JSON). */
  HEALTH_REPORT: 0x0b,
  /** Gateway says the app catalog changed (JSON). */
  CONFIG_CHANGED: 0x0c,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FRAME_TYPE_NAMES: Readonly<Record<FrameType, string>> = {
  [FrameType.OPEN]: "OPEN",
  [FrameType.OPEN_RESULT]: "OPEN_RESULT",
  [FrameType.DATA]: "DATA",
  [FrameType.WINDOW_UPDATE]: "WINDOW_UPDATE",
  [FrameType.FIN]: "FIN",
  [FrameType.RESET]: "RESET",
  [FrameType.PING]: "PING",
  [FrameType.PONG]: "PONG",
  [FrameType.GO_AWAY]: "GO_AWAY",
  [FrameType.TOKEN_UPDATE]: "TOKEN_UPDATE",
  [FrameType.HEALTH_REPORT]: "HEALTH_REPORT",
  [FrameType.CONFIG_CHANGED]: "CONFIG_CHANGED",
};

/** Largest DATA payload any peer may send (PROTOCOL §5.2 `MAX_DATA_PAYLOAD`). */
export const MAX_DATA_PAYLOAD = 256 * 1024;
/** Window each direction of every stream starts with (PROTOCOL §5.5 `INITIAL_WINDOW`). */
export const INITIAL_WINDOW = 256 * 1024;
/** A receiver never grows a stream's window beyond this (PROTOCOL §5.5 `MAX_WINDOW`). */
export const MAX_WINDOW = 16 * 1024 * 1024;
/** A stream's outstanding credit may never exceed this; an update that would is a stream protocol error (PROTOCOL §5.5). */
export const MAX_CREDIT = 2 ** 31 - 1;
/** Longest reason message in OPEN_RESULT, RESET and GO_AWAY (PROTOCOL §5.2: 1 + 512). */
export const MAX_REASON_BYTES = 512;
/** OPEN app and host are u8-length-prefixed UTF-8. */
export const MAX_OPEN_FIELD_BYTES = 255;
export const PING_PAYLOAD_BYTES = 8;
export const WINDOW_UPDATE_PAYLOAD_BYTES = 4;

/** Largest payload of each type (PROTOCOL §5.2); a larger length closes the tunnel. */
export const MAX_PAYLOAD: Readonly<Record<FrameType, number>> = {
  [FrameType.OPEN]: 2 + 255 + 255 + 2,
  [FrameType.OPEN_RESULT]: 1 + MAX_REASON_BYTES,
  [FrameType.DATA]: MAX_DATA_PAYLOAD,
  [FrameType.WINDOW_UPDATE]: WINDOW_UPDATE_PAYLOAD_BYTES,
  [FrameType.FIN]: 0,
  [FrameType.RESET]: 1 + MAX_REASON_BYTES,
  [FrameType.PING]: PING_PAYLOAD_BYTES,
  [FrameType.PONG]: PING_PAYLOAD_BYTES,
  [FrameType.GO_AWAY]: 1 + MAX_REASON_BYTES,
  [FrameType.TOKEN_UPDATE]: 8 * 1024,
  [FrameType.HEALTH_REPORT]: 64 * 1024,
  [FrameType.CONFIG_CHANGED]: 1024,
};

/** Open-result and reset codes (PROTOCOL §5.3). Receivers treat an unknown code as INTERNAL. */
export const StreamCode = {
  /** Stream open (OPEN_RESULT only). */
  OK: 0,
  /** The app catalog does not permit this destination. */
  NOT_ALLOWED: 1,
  /** The name did not resolve. */
  DNS_FAILURE: 2,
  /** The destination refused the connection. */
  REFUSED: 3,
  /** The dial timed out. */
  TIMEOUT: 4,
  /** No route / host unreachable. */
  UNREACHABLE: 5,
  /** Open-stream limit reached, or the connector is draining. */
  BUSY: 6,
  /** Anything else. */
  INTERNAL: 7,
  /** (RESET only) the peer sent DATA beyond its window. */
  FLOW_CONTROL: 8,
  /** (RESET only) a frame not valid in the stream's state. */
  PROTOCOL: 9,
  /** (RESET only) the user or the app went away. */
  CANCELLED: 10,
} as const;
export type StreamCode = (typeof StreamCode)[keyof typeof StreamCode];
export type StreamCodeName = keyof typeof StreamCode;

const STREAM_CODE_NAMES = Object.keys(StreamCode) as StreamCodeName[];

/** Maps a received code byte to a known code (unknown → INTERNAL, PROTOCOL §5.3). */
export function toStreamCode(byte: number): StreamCode {
  return byte <= StreamCode.CANCELLED ? (byte as StreamCode) : StreamCode.INTERNAL;
}

export function streamCodeName(code: StreamCode): StreamCodeName {
  return STREAM_CODE_NAMES[code] ?? "INTERNAL";
}

/** GO_AWAY codes (PROTOCOL §5.7). */
export const GoAwayCode = {
  /** The sender is stopping; existing streams finish. */
  DRAINING: 0,
  /** The sender saw a protocol violation. */
  PROTOCOL_ERROR: 1,
  /** The tunnel's access token expired. */
  AUTH_EXPIRED: 2,
  /** Anything else. */
  INTERNAL: 3,
} as const;
export type GoAwayCode = (typeof GoAwayCode)[keyof typeof GoAwayCode];

export function toGoAwayCode(byte: number): GoAwayCode {
  return byte <= GoAwayCode.INTERNAL ? (byte as GoAwayCode) : GoAwayCode.INTERNAL;
}
