/**
 * The WebSocket close codes (RFC 6455 §7.4.1) the connector sends or interprets: one table for the
 * WebSocket layer, which closes on a framing fault, and for the session above it, which closes on a
 * frame fault, a dead tunnel or a revocation. docs/PROTOCOL.md §5.11 says which code means what.
 */
export const CloseCode = {
  /** Clean close (local close or both sides done). */
  NORMAL: 1000,
  /** Going away: a tunnel declared dead by heartbeats, or this process stopping. */
  GOING_AWAY: 1001,
  /** Protocol error: a malformed WebSocket frame or tunnel frame (PROTOCOL §5.11). */
  PROTOCOL_ERROR: 1002,
  /** A data type this endpoint cannot take (a text message: the tunnel carries binary only). */
  UNSUPPORTED_DATA: 1003,
  /** The close frame carried no code; never sent on the wire. */
  NO_STATUS: 1005,
  /** The connection dropped without a close frame; never sent on the wire. */
  ABNORMAL: 1006,
  /** A text payload that is not UTF-8. */
  INVALID_PAYLOAD: 1007,
  /** Policy violation: the gateway no longer accepts this connector (revoked). */
  POLICY_VIOLATION: 1008,
  /** A message larger than the agreed maximum. */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected failure inside this process. */
  INTERNAL_ERROR: 1011,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
