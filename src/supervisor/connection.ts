/**
 * One tunnel to one gateway (cloudflared's `connection`): dial the WebSocket over TLS with the client
 * certificate, run a connector-role `Session` on it, and hand the supervisor a `TunnelHandle`. It
 * decides nothing about where streams go: OPENs are passed to the injected handler (the dataplane).
 */
import type { Clock } from "../clock.ts";
import type { Gateway } from "./supervisor-types.ts";
import type { Secret } from "../secret.ts";
import { dialTunnel } from "../transport/dial-tunnel.ts";
import { disconnectReason } from "./down-reason.ts";
import type { ProxyBypass } from "../netaddr/proxy-bypass.ts";
import { Session } from "../mux/session.ts";
import type { OpenHandler, SessionEvents } from "../mux/session-types.ts";
import type { SessionStats } from "../mux/session-stats.ts";
import type { HealthReport } from "../mux/payloads.ts";
import type { TunnelHandle } from "./supervisor.ts";

export interface TunnelCredentials {
  /** Client certificate followed by its chain, PEM. */
  readonly certificateChainPem: string;
  readonly privateKeyPem: Secret<string>;
  /** The pinned cloud CA: the only trust anchor for the gateway's certificate. */
  readonly caCertificatePem: string;
}

export interface ConnectTunnelOptions {
  readonly credentials: TunnelCredentials;
  readonly connectorVersion: string;
  /** Sent as `Authorization: Bearer` on the upgrade (docs/PROTOCOL.md §4); never logged. */
  readonly accessToken?: Secret<string> | undefined;
  readonly proxy?: string | undefined;
  readonly noProxy: ProxyBypass;
  readonly clock: Clock;
  readonly onOpen: OpenHandler;
  readonly timeoutMs?: number;
  readonly log?: { warn(message: string, ...args: unknown[]): void };
}

/** What the daemon uses of a tunnel's session (a `Session`; tests pass fakes). */
export interface TunnelSession {
  readonly isClosed: boolean;
  stats(): SessionStats;
  sendHealthReport(report: HealthReport): void;
  sendTokenUpdate(token: Secret<string>): void;
}

export interface Tunnel extends TunnelHandle {
  readonly gateway: Gateway;
  readonly session: TunnelSession;
}

/** How the daemon dials a tunnel: `connectTunnel` in production, a fake in unit tests. */
export type TunnelConnector = (
  gateway: Gateway,
  options: ConnectTunnelOptions,
  events?: SessionEvents,
) => Promise<Tunnel>;

/** Dials `gateway` and starts a session; `events` receives the session's events (rtt, go-away, …). */
export async function connectTunnel(
  gateway: Gateway,
  options: ConnectTunnelOptions,
  events: SessionEvents = {},
): Promise<Tunnel & { readonly session: Session }> {
  const useProxy = options.proxy !== undefined && !options.noProxy.bypassesUrl(new URL(gateway.url));
  const { transport } = await dialTunnel({
    url: gateway.url,
    tls: {
      cert: options.credentials.certificateChainPem,
      key: options.credentials.privateKeyPem,
      ca: options.credentials.caCertificatePem,
    },
    connectorVersion: options.connectorVersion,
    ...(options.accessToken === undefined ? {} : { accessToken: options.accessToken }),
    ...(useProxy ? { proxy: options.proxy } : {}),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  // The gateway's GO_AWAY may come in the same read as its 101, before the caller holds the tunnel:
  // a promise keeps it for whoever looks later (the supervisor, once the tunnel is in a slot).
  const peerDraining = Promise.withResolvers<{ code: number; message: string }>();
  // Waiters for "no stream open": woken by the session's streamEnded event, not by looking on a timer.
  let idleWaiters: (() => void)[] = [];
  const wakeIdle = () => {
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const wake of waiters) wake();
  };
  const session = new Session({
    role: "connector",
    transport,
    clock: options.clock,
    onOpen: options.onOpen,
    events: {
      ...events,
      goAway: (code, message) => {
        peerDraining.resolve({ code, message });
        events.goAway?.(code, message);
      },
      streamEnded: (active) => {
        if (active === 0) wakeIdle();
        events.streamEnded?.(active);
      },
    },
    ...(options.log ? { log: options.log } : {}),
  });
  void session.closed.then(wakeIdle);
  return {
    gateway,
    session,
    idle: () =>
      session.activeStreams === 0 || session.isClosed
        ? Promise.resolve()
        : new Promise<void>((resolve) => idleWaiters.push(resolve)),
    closed: session.closed.then((info) => ({
      code: disconnectReason(info),
      reason: info.error
        ? `${info.error.code}: ${info.error.message}`
        : `closed (${info.code}${info.reason ? ` ${info.reason}` : ""})`,
    })),
    peerDraining: peerDraining.promise,
    drain: () => session.goAway(),
    activeStreams: () => session.activeStreams,
    close: (reason) => session.close(1000, reason),
  };
}
