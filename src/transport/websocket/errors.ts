/**
 * Typed errors of the tunnel transport. `WebSocketProtocolError` is a protocol violation by the
 * peer (or a caller bug) and carries the RFC 6455 close code to send; `TunnelDialError` explains why
 * a tunnel could not be opened, with a stable `code` an operator and a supervisor can act on.
 * Messages never contain secrets (tokens, proxy passwords).
 */
import { ConnectorError, ExitCode } from "../../errors.ts";

export type WsErrorCode =
  | "WS_RSV_SET"
  | "WS_BAD_OPCODE"
  | "WS_MASK_EXPECTED"
  | "WS_MASK_UNEXPECTED"
  | "WS_CONTROL_FRAGMENTED"
  | "WS_CONTROL_TOO_LONG"
  | "WS_BAD_CONTINUATION"
  | "WS_BAD_LENGTH"
  | "WS_MESSAGE_TOO_BIG"
  | "WS_BAD_CLOSE_PAYLOAD"
  | "WS_INVALID_UTF8"
  | "WS_TEXT_MESSAGE";

export class WebSocketProtocolError extends ConnectorError {
  override readonly name = "WebSocketProtocolError";
  constructor(
    code: WsErrorCode,
    message: string,
    /** Close code to send to the peer. */
    readonly closeCode: number,
  ) {
    super(code, message);
  }
}

export type TunnelErrorCode =
  | "TUNNEL_DNS"
  | "TUNNEL_REFUSED"
  | "TUNNEL_TIMEOUT"
  | "TUNNEL_TLS"
  | "TUNNEL_TLS_HOSTNAME"
  | "TUNNEL_TLS_PURPOSE"
  | "TUNNEL_TLS_CLOCK"
  | "TUNNEL_TLS_VERSION"
  | "TUNNEL_PROXY"
  | "TUNNEL_HANDSHAKE";

const EXIT: Record<TunnelErrorCode, number> = {
  TUNNEL_DNS: ExitCode.dnsFailure,
  TUNNEL_REFUSED: ExitCode.connectionRefused,
  TUNNEL_TIMEOUT: ExitCode.timeout,
  TUNNEL_TLS: ExitCode.failure,
  TUNNEL_TLS_HOSTNAME: ExitCode.failure,
  TUNNEL_TLS_PURPOSE: ExitCode.failure,
  TUNNEL_TLS_CLOCK: ExitCode.failure,
  TUNNEL_TLS_VERSION: ExitCode.failure,
  TUNNEL_PROXY: ExitCode.proxyFailure,
  TUNNEL_HANDSHAKE: ExitCode.failure,
};

export class TunnelDialError extends ConnectorError {
  override readonly name = "TunnelDialError";
  /** HTTP status of a refused upgrade or proxy CONNECT, when there was one. */
  readonly status: number | undefined;
  /** For a 426: the subprotocols the gateway listed as supported. */
  readonly supportedProtocols: readonly string[];
  constructor(
    override readonly code: TunnelErrorCode,
    message: string,
    options: { cause?: unknown; status?: number; supportedProtocols?: readonly string[] } = {},
  ) {
    super(code, message, EXIT[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.supportedProtocols = options.supportedProtocols ?? [];
  }
}

/** A malformed HTTP head (upgrade request/response, proxy answer). Internal; mapped by callers. */
export class HttpHeadError extends Error {
  override readonly name = "HttpHeadError";
}
