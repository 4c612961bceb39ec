/**
 * Types at the edge of a `Session`: its options, the events it emits and how it ended. Kept apart
 * from `session.ts` so callers (supervisor, relay, reference gateway) can depend on them alone.
 */
import type { Clock } from "../clock.ts";
import type { ConnectorError } from "../errors.ts";
import type { Secret } from "../secret.ts";
import type { SessionConfig } from "./config.ts";
import { FrameType, type GoAwayCode } from "./const.ts";
import type { HealthReport } from "./payloads.ts";
import type { OpenRequest, Stream } from "./stream.ts";
import type { Transport } from "../transport/transport.ts";

/** The connector answers OPENs; the gateway sends them. */
export type SessionRole = "connector" | "gateway";

/** Connector: decides an OPEN; must later call `stream.accept()` or `stream.reject(code, message)`. */
export type OpenHandler = (request: OpenRequest, stream: Stream) => void;

export interface SessionClosed {
  /** WebSocket close code sent (local) or received (remote). */
  readonly code: number;
  readonly reason: string;
  readonly initiator: "local" | "remote";
  /** Why, as a typed error: ProtocolError, HeartbeatTimeoutError, TunnelClosedError… */
  readonly error?: ConnectorError;
  /** Remote closes: why the transport failed, when it did (a WebSocket protocol error, a reset). */
  readonly transportError?: Error;
}

/** Events out of a session. Each is optional; a listener that throws is logged, never fatal. */
export interface SessionEvents {
  /** The peer sent GO_AWAY (PROTOCOL §5.7). */
  goAway?(code: GoAwayCode, message: string): void;
  /** Gateway: the connector sent a new access token (PROTOCOL §5.8). */
  tokenUpdate?(token: Secret): void;
  /** Gateway: the connector's health report (PROTOCOL §5.9), already validated. */
  healthReport?(report: HealthReport): void;
  /** Connector: the app catalog changed (PROTOCOL §5.10). */
  configChanged?(catalogVersion: string): void;
  /** A new round-trip measurement from PING/PONG. */
  rtt?(ms: number): void;
  /** A stream was reset for a protocol or flow-control fault, or its consumer threw. */
  streamError?(streamId: number, error: ConnectorError): void;
  /** A stream ended; `active` streams are left (a graceful stop waits for 0 instead of polling). */
  streamEnded?(active: number): void;
  /** The tunnel is gone (once). */
  closed?(info: SessionClosed): void;
}

export interface SessionOptions {
  readonly role: SessionRole;
  readonly transport: Transport;
  readonly config?: Partial<SessionConfig>;
  /** Time and the one timer of the session; tests pass a fake. */
  readonly clock?: Clock;
  readonly events?: SessionEvents;
  /** Connector: called for every admitted OPEN. */
  readonly onOpen?: OpenHandler;
  /** Where listener failures go (they cannot be thrown into the transport). */
  readonly log?: { warn(message: string, ...args: unknown[]): void };
}

/** Frame types only one role may receive (PROTOCOL §5.2 "sender"); the other role receiving one closes the tunnel. */
export const ROLE_ONLY_FRAMES: Readonly<Record<SessionRole, ReadonlySet<number>>> = {
  connector: new Set([FrameType.OPEN, FrameType.CONFIG_CHANGED]),
  gateway: new Set([FrameType.OPEN_RESULT, FrameType.TOKEN_UPDATE, FrameType.HEALTH_REPORT]),
};
