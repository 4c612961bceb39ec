/**
 * The daemon's local faces: the admin socket (status), the optional metrics and health ports, and the
 * readiness message to systemd. A hand-over successor binds them only once it takes over; the ports
 * are still held by its predecessor until that one exits (at most the grace period later), so the
 * successor retries each bind every METRICS_RETRY_MS meanwhile — a retry against another process,
 * which sends no event this one could wait for.
 */
import { sleep, type Clock } from "../clock.ts";
import { ConnectorError, describeError, ExitCode } from "../errors.ts";
import type { Logger } from "../log.ts";
import { isLoopbackListen, type MetricsServer } from "../status/metrics-server.ts";
import type { StatusSnapshot } from "../status/schema.ts";
import type { AdminServer } from "./admin-server.ts";
import type { DaemonDeps } from "./daemon-deps.ts";

/** A successor's retry of a port (metrics, health) its previous process still holds. */
export const METRICS_RETRY_MS = 1_000;

/** A metrics or health address that cannot be served (in use, not an address of this host). */
export class ListenError extends ConnectorError {
  override readonly name = "ListenError";
  constructor(what: string, address: string, cause: unknown) {
    super("LISTEN_FAILED", `cannot serve ${what} on ${address}: ${describeError(cause)}`, ExitCode.failure, { cause });
  }
}

export interface LocalServerOptions {
  readonly deps: Pick<DaemonDeps, "servers" | "notifier" | "pid">;
  readonly stateDir: string;
  /** HOST:PORT, or undefined for no metrics. */
  readonly metrics: string | undefined;
  /** HOST:PORT for /healthz and /readyz only, or undefined for none. */
  readonly health: string | undefined;
  readonly snapshot: () => StatusSnapshot;
  readonly log: Logger;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Started to take over from a running daemon. */
  readonly successor: boolean;
}

export class LocalServers {
  #admin: AdminServer | undefined;
  #metrics: MetricsServer | undefined;
  #health: MetricsServer | undefined;

  constructor(private readonly options: LocalServerOptions) {}

  /** The admin socket; `takeOver`: in place of another process's (a hand-over), without asking it first. */
  async bindAdmin(takeOver: boolean): Promise<void> {
    const { deps, stateDir, snapshot } = this.options;
    this.#admin = await deps.servers.admin(stateDir, snapshot, { takeOver });
  }

  /** After a failed hand-over: the admin socket back, if the successor had taken it over. */
  async reclaimAdmin(): Promise<void> {
    if (this.#admin?.owned() !== false || this.options.signal.aborted) return;
    this.#admin.stop();
    await this.bindAdmin(true);
  }

  /** The metrics and health ports (each when configured); throws when one cannot be bound. */
  async startListeners(): Promise<void> {
    const { deps, metrics, health, log, snapshot } = this.options;
    if (metrics) {
      this.#metrics = await this.#bind("metrics", metrics, () => deps.servers.metrics(metrics, snapshot));
      log.info("metrics served", { url: `${this.#metrics.url}/metrics` });
      if (!isLoopbackListen(metrics)) {
        log.warn("metrics are served beyond loopback without authentication: they name apps and internal addresses", {
          listen: metrics,
        });
      }
    }
    if (health) {
      const ready = () => snapshot().tunnels.some((t) => t.state === "up");
      this.#health = await this.#bind("health", health, () => deps.servers.health(health, ready));
      log.info("health probes served", { url: `${this.#health.url}/readyz` });
    }
  }

  /** A successor waits for its predecessor to let go of the port; anything else fails at once. */
  async #bind(what: string, address: string, start: () => MetricsServer): Promise<MetricsServer> {
    const { log, signal, successor, clock } = this.options;
    for (;;) {
      try {
        return start();
      } catch (err) {
        if (!successor || signal.aborted) throw new ListenError(what, address, err);
        log.debug(`${what} port still held by the previous process; trying again`, { error: describeError(err) });
        await sleep(clock, METRICS_RETRY_MS, signal);
      }
    }
  }

  /** Tells systemd (Type=notify) that the service is up; a successor also says it is the main process now. */
  announceReady(status?: string): void {
    // A successor says only who the main process is now: systemd keeps the status line it had.
    const fields: Record<string, string | number> = this.options.successor
      ? { MAINPID: this.options.deps.pid, READY: 1 }
      : { READY: 1, ...(status ? { STATUS: status } : {}) };
    const problem = this.options.deps.notifier.send(fields);
    if (problem)
      this.options.log.warn("could not tell the service manager that the connector is ready", { error: problem });
  }

  stop(): void {
    this.#admin?.stop();
    this.#metrics?.stop();
    this.#health?.stop();
  }
}
