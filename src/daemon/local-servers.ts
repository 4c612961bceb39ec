/**
 * The daemon's local faces: the admin socket (status), the optional metrics port, and the readiness
 * message to systemd. A hand-over successor binds them only once it takes over; the metrics port is
 * still held by its predecessor until that one exits (at most the grace period later), so the
 * successor retries the bind every METRICS_RETRY_MS meanwhile — a retry against another process,
 * which sends no event this one could wait for.
 */
import { sleep, type Clock } from "../clock.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { isLoopbackListen, type MetricsServer } from "../status/metrics-server.ts";
import type { StatusSnapshot } from "../status/schema.ts";
import type { AdminServer } from "./admin-server.ts";
import type { DaemonDeps } from "./daemon-deps.ts";

/** A successor's retry of the metrics port its previous process still holds. */
export const METRICS_RETRY_MS = 1_000;

export interface LocalServerOptions {
  readonly deps: Pick<DaemonDeps, "servers" | "notifier" | "pid">;
  readonly stateDir: string;
  /** HOST:PORT, or undefined for no metrics. */
  readonly metrics: string | undefined;
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

  async startMetrics(): Promise<void> {
    const { deps, metrics, log, signal } = this.options;
    if (!metrics) return;
    for (;;) {
      try {
        this.#metrics = deps.servers.metrics(metrics, this.options.snapshot);
        break;
      } catch (err) {
        if (!this.options.successor || signal.aborted) throw err;
        log.debug("metrics port still held by the previous process; trying again", { error: describeError(err) });
        await sleep(this.options.clock, METRICS_RETRY_MS, signal);
      }
    }
    log.info("metrics served", { url: `${this.#metrics.url}/metrics` });
    if (!isLoopbackListen(metrics)) {
      log.warn("metrics are served beyond loopback without authentication: they name apps and internal addresses", {
        listen: metrics,
      });
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
  }
}
