/**
 * What `Daemon` is given rather than builds: time, randomness, the process's signals, the control
 * plane, the local servers, the tunnel dialler, the service manager, the state dir's lock and the
 * identity. `assemble.ts` puts the real ones together; unit tests pass fakes (test/daemon/daemon-fakes.ts),
 * so a daemon can be run, revoked, renewed and stopped on a fake clock without a socket.
 */
import type { Clock } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import type { ControlClient } from "../control/client.ts";
import type { Notifier } from "../host/sd-notify.ts";
import type { Identity } from "../identity/identity.ts";
import type { Logger } from "../log.ts";
import type { DaemonLock } from "../state/daemon-lock.ts";
import type { MetricsServer } from "../status/metrics-server.ts";
import type { StatusSnapshot } from "../status/schema.ts";
import type { TunnelConnector } from "../supervisor/connection.ts";
import type { AdminServer, AdminServerOptions } from "./admin-server.ts";
import type { SuccessorRole } from "./handover-child.ts";

export interface DaemonOptions {
  settings: Settings;
  env: Record<string, string | undefined>;
  log: Logger;
  /** Started by a running daemon to take over from it (src/daemon/handover-child.ts). */
  successor?: SuccessorRole;
}

/** The signals that stop the daemon: the first drains, a second stops at once. */
export type StopSignal = "SIGTERM" | "SIGINT";

/** The process's events, as the daemon hears them (process.on in production, a test's calls otherwise). */
export interface ProcessEvents {
  /** Starts listening; returns the function that stops it. */
  listen(handlers: { signal(signal: StopSignal): void; unhandled(reason: unknown): void }): () => void;
}

/** The control-plane calls the daemon makes once enrolled (mutual TLS with the current identity). */
export type DaemonControlClient = Pick<ControlClient, "request" | "token" | "reportUpgrade">;

/** The local listeners: the admin socket (status) and the optional metrics and health ports. */
export interface DaemonServers {
  admin(stateDir: string, snapshot: () => StatusSnapshot, options: AdminServerOptions): Promise<AdminServer>;
  /** Throws when the address cannot be bound (a hand-over's predecessor may still hold it). */
  metrics(listen: string, snapshot: () => StatusSnapshot): MetricsServer;
  /** /healthz and /readyz only: given whether a tunnel is up, never the status (no names to leak). */
  health(listen: string, ready: () => boolean): MetricsServer;
}

export interface DaemonDeps {
  readonly clock: Clock;
  /** Jitter for every backoff and schedule (tokens, renewal, tunnels, upgrades). */
  readonly random: () => number;
  readonly signals: ProcessEvents;
  readonly controlClient: (identity: Identity) => DaemonControlClient;
  readonly servers: DaemonServers;
  readonly connectTunnel: TunnelConnector;
  /** systemd's readiness protocol (a no-op outside systemd). */
  readonly notifier: Notifier;
  /** One daemon per state dir: waits while the dir is unusable; undefined when stopped first. */
  readonly lockStateDir: (signal: AbortSignal) => Promise<DaemonLock | undefined>;
  /** The stored identity, or a fresh enrollment; undefined when stopped first. */
  readonly obtainIdentity: (signal: AbortSignal) => Promise<Identity | undefined>;
  /** Renews and stores the certificate; resolves with the new identity. */
  readonly renewIdentity: (current: Identity) => Promise<Identity>;
  /** This binary: what a hand-over starts and an upgrade replaces. */
  readonly installedBinary: string;
  /** The process id systemd is told is the main one after a hand-over. */
  readonly pid: number;
}
