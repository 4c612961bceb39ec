/**
 * Why a tunnel is down, as a stable code: what `connector status` shows next to a down tunnel, what
 * the logs carry (`code`) and what the metrics count by (`reason`). Every code is listed here with what
 * it means, so the metrics start each one at 0 and their label values are a closed set: a hostile
 * gateway's text never becomes a label. docs/OPERATIONS.md "Troubleshooting tunnels" is keyed by these.
 */
import { ConnectorError } from "../errors.ts";
import { ControlBacklogError, HeartbeatTimeoutError, ProtocolError } from "../mux/errors.ts";
import type { SessionClosed } from "../mux/session-types.ts";
import { CloseCode } from "../transport/close-code.ts";
import { TunnelDialError, WebSocketProtocolError } from "../transport/websocket/errors.ts";

/** A tunnel could not be opened. */
export const CONNECT_FAILURE_REASONS = {
  TUNNEL_DNS: "the gateway's name does not resolve",
  TUNNEL_REFUSED: "the gateway refused or reset the connection, or is unreachable",
  TUNNEL_TIMEOUT: "no answer in time (TCP connect, TLS handshake or WebSocket upgrade)",
  TUNNEL_TLS: "the gateway's certificate is not from the cloud's CA (TLS inspection?), or the port speaks no TLS",
  TUNNEL_TLS_HOSTNAME: "the gateway's certificate is for another name",
  TUNNEL_TLS_PURPOSE: "the gateway's certificate is not a server certificate",
  TUNNEL_TLS_CLOCK: "a certificate is expired or not yet valid: check this host's clock",
  TUNNEL_TLS_VERSION: "no common TLS version (TLS 1.2 or later is required)",
  TUNNEL_PROXY: "the HTTP proxy is unreachable, refused the CONNECT or broke the connection",
  TUNNEL_UNAUTHORIZED: "the gateway did not accept the access token (401); a fresh one is requested",
  TUNNEL_FORBIDDEN: "the gateway refused this connector (403): revoked or disabled?",
  TUNNEL_VERSION: "no common tunnel protocol version (426): upgrade the connector",
  TUNNEL_GATEWAY_BUSY: "the gateway is overloaded or unavailable (429 or 5xx)",
  TUNNEL_HANDSHAKE: "the gateway answered the WebSocket upgrade with something else",
  NO_ACCESS_TOKEN: "no access token from the control plane yet (the control plane is unreachable?)",
  OTHER: "another failure: the message says what",
} as const;
export type ConnectFailureReason = keyof typeof CONNECT_FAILURE_REASONS;

/** A tunnel that was up went down. */
export const DISCONNECT_REASONS = {
  TUNNEL_DEAD: "nothing came from the gateway for the heartbeat timeout (network path or gateway hung)",
  TUNNEL_LOST: "the connection broke without a close (reset, cut by a firewall or NAT)",
  GATEWAY_CLOSED: "the gateway closed the tunnel",
  GATEWAY_POLICY: "the gateway closed the tunnel for policy (1008): revoked or disabled?",
  GATEWAY_DRAINING: "the gateway drained the tunnel (GO_AWAY: restart or rebalance)",
  PROTOCOL_ERROR: "the gateway broke the tunnel protocol; the connector closed the tunnel",
  TUNNEL_BACKLOG: "the gateway stopped reading; the connector closed the tunnel",
  CONNECTOR_CLOSED: "the connector closed it (stopping, or moving to a renewed certificate)",
  OTHER: "another failure: the message says what",
} as const;
export type DisconnectReason = keyof typeof DISCONNECT_REASONS;

export type DownReason = ConnectFailureReason | DisconnectReason;

/** What a refused upgrade's HTTP status means for the operator. */
function statusReason(status: number): ConnectFailureReason | undefined {
  if (status === 401) return "TUNNEL_UNAUTHORIZED";
  if (status === 403) return "TUNNEL_FORBIDDEN";
  if (status === 426) return "TUNNEL_VERSION";
  if (status === 429 || status >= 500) return "TUNNEL_GATEWAY_BUSY";
  return undefined;
}

/** The reason a dial failed, from whatever it threw. */
export function connectFailureReason(err: unknown): ConnectFailureReason {
  if (err instanceof TunnelDialError) {
    if (err.code === "TUNNEL_HANDSHAKE" && err.status !== undefined) return statusReason(err.status) ?? err.code;
    return err.code;
  }
  if (err instanceof ConnectorError && err.code in CONNECT_FAILURE_REASONS) return err.code as ConnectFailureReason;
  return "OTHER";
}

/** The reason an open tunnel's session ended. */
export function disconnectReason(info: SessionClosed): DisconnectReason {
  const { error } = info;
  if (error instanceof HeartbeatTimeoutError) return "TUNNEL_DEAD";
  if (error instanceof ControlBacklogError) return "TUNNEL_BACKLOG";
  if (error instanceof ProtocolError || info.transportError instanceof WebSocketProtocolError) return "PROTOCOL_ERROR";
  if (info.initiator === "local") return error ? "OTHER" : "CONNECTOR_CLOSED";
  if (info.code === CloseCode.POLICY_VIOLATION) return "GATEWAY_POLICY";
  if (info.code === CloseCode.ABNORMAL || info.transportError) return "TUNNEL_LOST";
  return "GATEWAY_CLOSED";
}
