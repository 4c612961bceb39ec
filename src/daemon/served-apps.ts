/**
 * The apps this connector serves, for the daemon: the allow list compiled from the catalog, the
 * dataplane that relays each OPEN (one admission gate and one registry of relayed streams for all
 * tunnels), and app health, reported to status and to every tunnel the supervisor holds.
 */
import { HealthMonitor } from "../apps/health.ts";
import type { Clock } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import type { Catalog } from "../control/api.ts";
import { AllowList } from "../dataplane/allow-list.ts";
import { nameRuleResolver } from "../dataplane/name-answers.ts";
import { createOpenHandler, type DataplaneCounters } from "../dataplane/open-handler.ts";
import type { OpenStreams } from "../dataplane/open-streams.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { HealthReport } from "../mux/payloads.ts";
import type { OpenHandler } from "../mux/session-types.ts";
import type { Tunnel } from "../supervisor/connection.ts";
import { createDataplaneState } from "./dataplane-setup.ts";
import type { DaemonEvents } from "./events.ts";
import type { StatusModel } from "./status-model.ts";

export interface ServedAppsDeps {
  readonly settings: Settings;
  readonly clock: Clock;
  readonly log: Logger;
  readonly status: StatusModel;
  /** Health transitions and failed opens go there (`app-health`, `open-failed`). */
  readonly events: Pick<DaemonEvents, "emit">;
  /** The tunnels serving now (asked of the supervisor at each health change). */
  readonly tunnels: () => readonly Tunnel[];
}

export class ServedApps {
  readonly #counters: DataplaneCounters = { failures: {} };
  readonly #health: HealthMonitor;
  readonly #openStreams: OpenStreams;
  #allowList = AllowList.empty();
  /** Every tunnel's OPENs go here. */
  readonly onOpen: OpenHandler;

  constructor(private readonly deps: ServedAppsDeps) {
    const { settings, clock, log, status, events } = deps;
    // Server names resolve as for streams: never to this host's loopback or link-local addresses, so
    // health never vouches for an address the dataplane would not dial.
    this.#health = new HealthMonitor({
      clock,
      resolve: nameRuleResolver(),
      onChange: (r) => this.#broadcast(r),
      onTransition: (t) => events.emit({ type: "app-health", ...t }),
    });
    const dataplane = createDataplaneState(settings, clock, log.withTag("dataplane"), status);
    this.#openStreams = dataplane.openStreams;
    this.onOpen = createOpenHandler({
      allowList: () => this.#allowList,
      log: log.withTag("dataplane"),
      counters: this.#counters,
      dialTimeoutMs: settings.dialTimeout * 1000,
      clock,
      openStreams: dataplane.openStreams,
      gate: dataplane.gate,
      onDialResult: (app, address, ok) => this.#health.observe(app, address, ok),
      onFailure: (code, app) => events.emit({ type: "open-failed", code, app }),
    });
  }

  /** Open failures by code, for status. */
  get failures(): Readonly<Record<string, number>> {
    return this.#counters.failures as Record<string, number>;
  }

  /** The report a new tunnel gets; none before the first check is done ("no report" lets gateways route here). */
  healthReport(): HealthReport | undefined {
    return this.#health.ready ? this.#health.report() : undefined;
  }

  apply(catalog: Catalog): void {
    const { log } = this.deps;
    const compiled = AllowList.compile(catalog);
    for (const issue of compiled.issues) log.warn("app catalog entry ignored", { issue });
    this.#allowList = compiled;
    // Removing access ends access: streams already open are held to the new catalog too.
    this.#openStreams.recheck(compiled);
    // Health checks run in the background: a server that does not answer must not delay the tunnels.
    this.#health
      .setCatalog(catalog)
      .catch((err: unknown) => log.warn("health check failed", { error: describeError(err) }));
  }

  start(): void {
    this.#health.start();
  }

  stop(): void {
    this.#health.stop();
    this.#openStreams.stop();
  }

  #broadcast(report: HealthReport): void {
    this.deps.status.health(report);
    for (const tunnel of this.deps.tunnels()) {
      try {
        tunnel.session.sendHealthReport(report);
      } catch (err) {
        this.deps.log.warn("health report not sent", { error: describeError(err) });
      }
    }
  }
}
