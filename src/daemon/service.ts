/**
 * The connector serving under one identity, once the process is set up (daemon.ts): the app catalog
 * (first fetch, refreshes, the poll), revocation, certificate renewal and the roll of tunnels onto a
 * renewed certificate, the access tokens, the dataplane, and the tunnels — whose supervisor alone
 * knows the live ones (`tunnels`). Events drive it: catalog answers, supervisor events, renewal,
 * tokens; its only timers are the two slow schedules (status line, catalog poll).
 */
import { CatalogSource } from "../apps/catalog.ts";
import { CatalogStore } from "../apps/catalog-store.ts";
import type { TimerHandle } from "../clock.ts";
import { certificateNotAfter, type Identity } from "../identity/identity.ts";
import type { Tunnel } from "../supervisor/connection.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import type { AccessTokens } from "./access-tokens.ts";
import { startAccessTokens } from "./access-token-setup.ts";
import { CatalogRefresh } from "./catalog-refresh.ts";
import { CertificateRenewal } from "./certificate-renewal.ts";
import type { DaemonDeps, DaemonOptions } from "./daemon-deps.ts";
import { rollTunnels } from "./identity-rollover.ts";
import { LiveTunnels, type TunnelListener } from "./live-tunnels.ts";
import { Revocation } from "./revocation.ts";
import { ServedApps } from "./served-apps.ts";
import type { DaemonEvents } from "./events.ts";
import type { StatusModel } from "./status-model.ts";
import { createTunnelSupervisor } from "./tunnel-supervisor.ts";
import { tunnelEventsToStatus } from "./tunnel-events.ts";

/** A status summary line every 5 minutes (and on every tunnel change). */
export const SUMMARY_INTERVAL_MS = 5 * 60_000;
/** Fallback when CONFIG_CHANGED is missed: revalidate the catalog (ETag, usually a 304). */
export const CATALOG_POLL_MS = 5 * 60_000;

export interface ServiceOptions {
  readonly options: Pick<DaemonOptions, "settings" | "log">;
  readonly deps: DaemonDeps;
  readonly identity: Identity;
  readonly status: StatusModel;
  /** The daemon's event stream (events.ts): what happens here is told there. */
  readonly events: DaemonEvents;
  /** Aborted once the daemon stops: nothing new starts then. */
  readonly stopping: AbortSignal;
  /** Whether this process holds the daemon lock: only the holder renews (it writes the identity). */
  readonly holdsLock: () => boolean;
}

export class Service {
  readonly tunnels: LiveTunnels;
  readonly revocation: Revocation;
  readonly #o: ServiceOptions;
  readonly #catalogSource: CatalogSource;
  readonly #catalog: CatalogRefresh;
  #identity: Identity;
  #apps?: ServedApps;
  #renewal?: CertificateRenewal;
  #tokens?: AccessTokens;
  readonly #timers: TimerHandle[] = [];

  constructor(o: ServiceOptions) {
    const { settings, log } = o.options;
    const { clock } = o.deps;
    this.#o = o;
    this.#identity = o.identity;
    this.tunnels = new LiveTunnels((onEvent) => this.#createSupervisor(onEvent));
    this.#catalogSource = new CatalogSource(o.deps.controlClient(o.identity));
    this.revocation = new Revocation({
      clock,
      log,
      status: o.status,
      askControlPlane: () => this.#refreshCatalog(),
      tunnels: this.tunnels,
      stopping: () => o.stopping.aborted,
    });
    this.#catalog = new CatalogRefresh({
      source: this.#catalogSource,
      status: o.status,
      log,
      events: o.events,
      clock,
      signal: o.stopping,
      changed: (catalog) => this.#apps?.apply(catalog),
      revocation: this.revocation,
      store: { catalogs: new CatalogStore(settings.stateDir), connectorId: o.identity.connectorId },
    });
  }

  /** The identity in use (a renewal replaces it). */
  get identity(): Identity {
    return this.#identity;
  }

  /** Open failures by code, for status. */
  get failures(): Readonly<Record<string, number>> {
    return this.#apps?.failures ?? {};
  }

  /** The first catalog (retried until it comes), then everything else; false when stopped first. */
  async start(): Promise<boolean> {
    const { options, deps, status, stopping } = this.#o;
    const { settings, log } = options;
    const { clock, random } = deps;
    const catalog = await this.#catalog.first();
    if (!catalog || stopping.aborted) return false;
    const renewal = new CertificateRenewal(this.#identity, {
      clock,
      random,
      events: this.#o.events,
      renew: (current) => deps.renewIdentity(current),
      onRenewed: (renewed) => this.#useIdentity(renewed),
    });
    this.#renewal = renewal;
    if (this.#o.holdsLock()) renewal.start(); // a successor starts it once it holds the lock
    status.showRenewal(() => renewal.view());
    const apps = new ServedApps({
      settings,
      clock,
      log,
      status,
      events: this.#o.events,
      tunnels: () => this.tunnels.tunnels(),
    });
    this.#apps = apps;
    apps.apply(catalog);
    apps.start();
    // Tunnels need an access token (docs/PROTOCOL.md §4): the first is fetched now, and dials wait for it
    // unless the one kept from the last run is still good.
    this.#tokens = startAccessTokens({
      stateDir: settings.stateDir,
      clock,
      random,
      log: log.withTag("token"),
      identity: () => this.#identity,
      client: (current) => deps.controlClient(current),
      status,
      onRevoked: () => this.revocation.confirmed(),
    });
    this.tunnels.subscribe(
      tunnelEventsToStatus({ status, events: this.#o.events, clock, stopping: () => stopping.aborted }),
    );
    this.revocation.startTunnels();
    this.#every(SUMMARY_INTERVAL_MS, () => log.info("status", status.summary()));
    // A revoked connector asks only on its own slow schedule (revocation.ts), not on the poll.
    this.#every(CATALOG_POLL_MS, () => {
      if (!this.revocation.revoked) void this.#refreshCatalog();
    });
    return true;
  }

  /** This process holds the lock now (a successor that took over): renewal may write the identity. */
  startRenewal(): void {
    this.#renewal?.start();
  }

  /** Handed over: the identity is the successor's to renew from now on. */
  stopRenewal(): void {
    this.#renewal?.stop();
  }

  stop(): void {
    for (const timer of this.#timers) timer.cancel();
    this.revocation.stop();
    this.#apps?.stop();
    this.#renewal?.stop();
    this.#tokens?.stop();
    this.tunnels.stop();
  }

  #createSupervisor(onEvent: TunnelListener): Supervisor<Tunnel> {
    const { options, deps, status } = this.#o;
    const apps = this.#apps!;
    return createTunnelSupervisor(
      {
        identity: () => this.#identity,
        settings: options.settings,
        log: options.log,
        clock: deps.clock,
        random: deps.random,
        connect: deps.connectTunnel,
        status,
        health: () => apps.healthReport(),
        onOpen: apps.onOpen,
        refreshCatalog: () => void this.#refreshCatalog(),
        gatewayRefused: () => this.revocation.gatewayRefused(),
        tokens: this.#tokens!,
      },
      onEvent,
    );
  }

  /** A renewed certificate: used for everything new at once; tunnels move onto it one at a time. */
  #useIdentity(identity: Identity): void {
    const { deps, status, options, stopping } = this.#o;
    const previous = this.#identity;
    this.#identity = identity;
    status.useIdentity(identity);
    this.#catalogSource.useClient(deps.controlClient(identity));
    this.#tokens?.certificateChanged();
    const supervisor = this.tunnels.current;
    if (!supervisor) return;
    supervisor.setGateways(identity.gateways);
    void rollTunnels({
      supervisor,
      events: (listener) => this.tunnels.subscribe(listener),
      clock: deps.clock,
      log: options.log,
      // Streams on a replaced tunnel may run until the old certificate expires (long-lived sessions
      // should not be cut by a routine renewal); the stop grace period is the floor.
      graceMs: Math.max(
        options.settings.gracePeriod * 1000,
        certificateNotAfter(previous).getTime() - deps.clock.wallNow().getTime(),
      ),
      signal: stopping,
    });
  }

  #refreshCatalog(): Promise<void> {
    return this.#catalog.refresh();
  }

  #every(ms: number, fn: () => void): void {
    const index = this.#timers.length;
    const loop = () => {
      fn();
      this.#timers[index] = this.#o.deps.clock.setTimeout(loop, ms);
    };
    this.#timers[index] = this.#o.deps.clock.setTimeout(loop, ms);
  }
}
