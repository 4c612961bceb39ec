/**
 * `Daemon` is `connector run` (§3) put together: identity → app catalog → N tunnels under the
 * supervisor → streams through the dataplane, with status on the admin socket and a graceful stop.
 * It holds no protocol logic itself; it wires modules and owns the process-level lifecycle.
 *
 * Stop: the first SIGTERM/SIGINT sends GO_AWAY on every tunnel (gateways route no new streams here),
 * waits until open streams finish or the grace period ends, closes and resolves 0. A second signal
 * resolves at once with 128+signal.
 */
import { describeError } from "../errors.ts";
import { sleep, systemClock, type Clock, type TimerHandle } from "../clock.ts";
import { CatalogSource } from "../apps/catalog.ts";
import { CatalogStore } from "../apps/catalog-store.ts";
import { HealthMonitor } from "../apps/health.ts";
import type { Settings } from "../config/settings.ts";
import type { Catalog } from "../control/api.ts";
import { ControlClient } from "../control/client.ts";
import { AllowList } from "../dataplane/allow-list.ts";
import { nameRuleResolver } from "../dataplane/name-answers.ts";
import { createOpenHandler, type DataplaneCounters } from "../dataplane/open-handler.ts";
import type { OpenStreams } from "../dataplane/open-streams.ts";
import type { AdmissionGate } from "../dataplane/admission.ts";
import { createDataplaneState } from "./dataplane-setup.ts";
import { certificateNotAfter, type Identity } from "../identity/identity.ts";
import type { Logger } from "../log.ts";
import type { Tunnel } from "../tunnel/connection.ts";
import type { Supervisor } from "../tunnel/supervisor.ts";
import { createTunnelSupervisor } from "./tunnel-supervisor.ts";
import type { HealthReport } from "../tunnel/payloads.ts";
import { buildInfo } from "../version.ts";
import { startAdminServer, type AdminServer } from "./admin-server.ts";
import { isLoopbackListen, startMetricsServer, type MetricsServer } from "../status/metrics.ts";
import { obtainIdentity } from "./identity-source.ts";
import { lockStateDir } from "./state-dir-lock.ts";
import type { DaemonLock } from "../state/daemon-lock.ts";
import { renewIdentity } from "../identity/renew.ts";
import { CertificateRenewal } from "./certificate-renewal.ts";
import { rollTunnels } from "./identity-rollover.ts";
import { CatalogRefresh, REVOKED_RETRY_MS } from "./catalog-refresh.ts";
import { StatusModel } from "./status-model.ts";
import type { AccessTokens } from "./access-tokens.ts";
import { startAccessTokens } from "./access-token-setup.ts";
import { systemdNotifier } from "../host/sd-notify.ts";

/** §3: a status summary line every 5 minutes (and on every tunnel change). */
const SUMMARY_INTERVAL_MS = 5 * 60_000;
/** Fallback when CONFIG_CHANGED is missed: revalidate the catalog (ETag, usually a 304). */
const CATALOG_POLL_MS = 5 * 60_000;
/** Steps of the graceful stop's wait for open streams. */
const DRAIN_POLL_MS = 100;

export interface DaemonOptions {
  settings: Settings;
  env: Record<string, string | undefined>;
  log: Logger;
  clock?: Clock;
}

export class Daemon {
  readonly #options: DaemonOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #counters: DataplaneCounters = { failures: {} };
  readonly #tunnels = new Map<number, Tunnel>();
  #allowList = AllowList.empty();
  #openStreams?: OpenStreams;
  #gate?: AdmissionGate;
  #supervisor?: Supervisor;
  #status?: StatusModel;
  #admin?: AdminServer;
  #metrics?: MetricsServer;
  #health?: HealthMonitor;
  #catalogSource?: CatalogSource;
  #catalog?: CatalogRefresh;
  #timers: TimerHandle[] = [];
  #identity?: Identity;
  #renewal?: CertificateRenewal;
  #tokens?: AccessTokens;
  #revocationTimer?: TimerHandle;
  #stopRequested?: (code: number) => void;
  #signals = 0;
  #lock?: DaemonLock;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
  }

  /** Runs until stopped by a signal; resolves with the process exit code. */
  async run(): Promise<number> {
    const stopped = new Promise<number>((resolve) => (this.#stopRequested = resolve));
    const onSignal = (signal: NodeJS.Signals) => this.#onSignal(signal);
    // Last resort: a bug in one stream or tunnel must not take every tunnel down with the process.
    const onUnhandled = (reason: unknown) =>
      this.#log.error("unexpected error (kept running)", { error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) });
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { settings, env, log } = this.#options;
      // Held until exit, taken before enrolling: one daemon per state dir (ALREADY_RUNNING otherwise).
      this.#lock = await lockStateDir({ stateDir: settings.stateDir, log, clock: this.#clock, signal: this.#abort.signal });
      if (!this.#lock) return await stopped;
      const identity = await obtainIdentity({
        stateDir: settings.stateDir,
        env,
        name: settings.name,
        proxy: settings.proxy,
        noProxy: settings.noProxy,
        log,
        clock: this.#clock,
        signal: this.#abort.signal,
      });
      if (!identity || this.#abort.signal.aborted) return await stopped;
      log.info("starting", { version: buildInfo.version, connectorId: identity.connectorId, name: identity.name, group: identity.group, tunnels: settings.tunnels });
      // A signal during start-up (catalog fetch) must not wait for it.
      return await Promise.race([this.#start(identity).then(() => stopped), stopped]);
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      process.off("unhandledRejection", onUnhandled);
      this.#shutdown();
      this.#lock?.release();
    }
  }

  async #start(identity: Identity): Promise<void> {
    const { settings, log } = this.#options;
    const status = (this.#status = new StatusModel(identity, () => this.#counters.failures as Record<string, number>));
    this.#admin = await startAdminServer(settings.stateDir, () => status.snapshot());
    // Type=notify: ready once status answers, not once tunnels are up, so a cloud outage never fails the unit start.
    const unready = systemdNotifier(this.#options.env).send({ READY: 1, STATUS: `started as ${identity.connectorId}; tunnels connecting` });
    if (unready) log.warn("readiness not reported to systemd", { reason: unready });
    if (settings.metrics) {
      this.#metrics = startMetricsServer(settings.metrics, () => status.snapshot(), buildInfo);
      log.info("metrics served", { url: `${this.#metrics.url}/metrics` });
      if (!isLoopbackListen(settings.metrics)) {
        log.warn("metrics are served beyond loopback without authentication: they name apps and internal addresses", { listen: settings.metrics });
      }
    }
    this.#catalogSource = new CatalogSource(this.#controlClient(identity));
    this.#catalog = new CatalogRefresh({
      source: this.#catalogSource,
      status,
      log,
      clock: this.#clock,
      signal: this.#abort.signal,
      changed: (catalog) => this.#applyCatalog(catalog),
      served: () => {
        if (status.state() === "revoked") this.#reinstated();
      },
      revoked: () => this.#revoked(),
      store: { catalogs: new CatalogStore(settings.stateDir), connectorId: identity.connectorId },
    });
    // Server names resolve as for streams: never to this host's loopback or link-local addresses, so
    // health never vouches for an address the dataplane would not dial.
    this.#health = new HealthMonitor({ clock: this.#clock, resolve: nameRuleResolver(), onChange: (report) => this.#broadcastHealth(report) });
    const catalog = await this.#catalog.first();
    if (!catalog || this.#abort.signal.aborted) return;
    this.#renewal = new CertificateRenewal(identity, {
      clock: this.#clock,
      log: log.withTag("identity"),
      renew: (current) => renewIdentity(current, { stateDir: settings.stateDir, proxy: settings.proxy, noProxy: settings.noProxy, log: log.withTag("identity") }),
      onRenewed: (renewed) => this.#useIdentity(renewed),
    });
    this.#renewal.start();
    ({ gate: this.#gate, openStreams: this.#openStreams } = createDataplaneState(settings, this.#clock, log.withTag("dataplane"), status));
    const renewal = this.#renewal;
    status.showRenewal(() => renewal.view());
    this.#applyCatalog(catalog);
    this.#health.start();

    this.#identity = identity;
    // Tunnels need an access token (docs/PROTOCOL.md §4): the first is fetched now, and dials wait for it
    // unless the one kept from the last run is still good.
    this.#tokens = startAccessTokens({
      stateDir: settings.stateDir,
      clock: this.#clock,
      log: log.withTag("token"),
      identity: () => this.#identity ?? identity,
      client: (current) => this.#controlClient(current),
      status,
      onRevoked: () => this.#revoked(),
    });
    this.#startTunnels();
    this.#every(SUMMARY_INTERVAL_MS, () => log.info("status", status.summary()));
    // A revoked connector asks only on its own slow schedule (#revoked), not on the poll.
    this.#every(CATALOG_POLL_MS, () => {
      if (status.state() !== "revoked") void this.#refreshCatalog();
    });
  }


  #controlClient(identity: Identity): ControlClient {
    const { settings } = this.#options;
    return new ControlClient({
      controlUrl: identity.controlUrl,
      proxy: settings.proxy,
      noProxy: settings.noProxy,
      caCertificate: identity.caCertificate,
      clientCertificate: { certificate: identity.certificate, chain: identity.chain, privateKeyPem: identity.privateKeyPem },
    });
  }

  /** A renewed certificate: used for everything new at once; tunnels move onto it one at a time. */
  #useIdentity(identity: Identity): void {
    const previous = this.#identity;
    this.#identity = identity;
    this.#status?.useIdentity(identity);
    this.#catalogSource?.useClient(this.#controlClient(identity));
    this.#tokens?.certificateChanged();
    const supervisor = this.#supervisor;
    if (!supervisor) return;
    supervisor.setGateways(identity.gateways);
    void rollTunnels({
      supervisor,
      tunnels: this.#tunnels,
      status: this.#status!,
      clock: this.#clock,
      log: this.#log,
      // Streams on a replaced tunnel may run until the old certificate expires (long-lived sessions
      // should not be cut by a routine renewal); the stop grace period is the floor.
      graceMs: Math.max(this.#options.settings.gracePeriod * 1000, previous ? certificateNotAfter(previous).getTime() - this.#clock.wallNow().getTime() : 0),
      stopping: () => this.#abort.signal.aborted,
    });
  }

  /** Starts the supervisor: N tunnels to distinct gateways, each serving OPENs through the dataplane. */
  #startTunnels(): void {
    const { settings, log } = this.#options;
    this.#supervisor = createTunnelSupervisor({
      identity: () => this.#identity!,
      settings,
      log,
      clock: this.#clock,
      status: this.#status!,
      tunnels: this.#tunnels,
      health: () => this.#health,
      onOpen: createOpenHandler({
        allowList: () => this.#allowList,
        log: log.withTag("dataplane"),
        counters: this.#counters,
        dialTimeoutMs: settings.dialTimeout * 1000,
        clock: this.#clock,
        openStreams: this.#openStreams,
        gate: this.#gate,
        onDialResult: (app, address, ok) => this.#health?.observe(app, address, ok),
      }),
      refreshCatalog: () => void this.#refreshCatalog(),
      stopping: () => this.#abort.signal.aborted,
      tokens: this.#tokens!,
    });
    this.#supervisor.start();
  }

  /** §3: a revoked connector stops its tunnels, says so in status and logs, and retries only slowly. */
  #refreshCatalog(): Promise<void> {
    return this.#catalog?.refresh() ?? Promise.resolve();
  }

  #revoked(): void {
    if (this.#status?.state() === "revoked") return;
    this.#status?.revoked();
    this.#log.error("this connector has been revoked by the cloud: tunnels stopped; re-enroll it with a new key (connector enroll --force)", {
      checkAgainInMs: REVOKED_RETRY_MS,
    });
    this.#supervisor?.stop("connector revoked");
    this.#supervisor = undefined;
    this.#recheckIfRevoked();
  }

  /** While revoked, the catalog is asked again every REVOKED_RETRY_MS (and only then). */
  #recheckIfRevoked(): void {
    if (this.#status?.state() !== "revoked" || this.#abort.signal.aborted) return;
    this.#revocationTimer = this.#clock.setTimeout(() => void this.#refreshCatalog().then(() => this.#recheckIfRevoked()), REVOKED_RETRY_MS);
  }

  /** The control plane serves us again (the revocation was lifted): tunnels come back. */
  #reinstated(): void {
    this.#status?.reinstated();
    this.#log.info("the control plane accepts this connector again: starting tunnels");
    this.#revocationTimer?.cancel();
    if (!this.#supervisor && !this.#abort.signal.aborted) this.#startTunnels();
  }

  #applyCatalog(catalog: Catalog): void {
    const compiled = AllowList.compile(catalog);
    for (const issue of compiled.issues) this.#log.warn("app catalog entry ignored", { issue });
    this.#allowList = compiled;
    // Removing access ends access: streams already open are held to the new catalog too.
    this.#openStreams?.recheck(compiled);
    this.#log.info("app catalog loaded", { version: catalog.version, apps: catalog.apps.length });
    // Health checks run in the background: a server that does not answer must not delay the tunnels.
    this.#health?.setCatalog(catalog).catch((err: unknown) => this.#log.warn("health check failed", { error: describeError(err) }));
  }

  #broadcastHealth(report: HealthReport): void {
    this.#status?.health(report);
    for (const tunnel of this.#tunnels.values()) {
      try {
        tunnel.session.sendHealthReport(report);
      } catch (err) {
        this.#log.warn("health report not sent", { error: describeError(err) });
      }
    }
  }

  #every(ms: number, fn: () => void): void {
    const index = this.#timers.length;
    const loop = () => {
      fn();
      this.#timers[index] = this.#clock.setTimeout(loop, ms);
    };
    this.#timers[index] = this.#clock.setTimeout(loop, ms);
  }

  #onSignal(signal: NodeJS.Signals): void {
    this.#signals += 1;
    const code = 128 + (signal === "SIGINT" ? 2 : 15);
    if (this.#signals > 1) {
      this.#log.warn("second signal: stopping now", { signal });
      this.#stopRequested?.(code);
      return;
    }
    this.#abort.abort();
    void this.#drain(signal).then(() => this.#stopRequested?.(0));
  }

  async #drain(signal: string): Promise<void> {
    const supervisor = this.#supervisor;
    const graceMs = this.#options.settings.gracePeriod * 1000;
    if (!supervisor) return;
    this.#log.info("stopping: gateways told to send no new streams", { signal, openStreams: supervisor.activeStreams(), gracePeriodSeconds: graceMs / 1000 });
    supervisor.drain();
    const deadline = this.#clock.now() + graceMs;
    while (supervisor.activeStreams() > 0 && this.#clock.now() < deadline && this.#signals < 2) {
      await sleep(this.#clock, DRAIN_POLL_MS);
    }
    const left = supervisor.activeStreams();
    if (left > 0) this.#log.warn("grace period over: closing remaining streams", { openStreams: left });
    else this.#log.info("all streams finished");
  }

  #shutdown(): void {
    for (const timer of this.#timers) timer.cancel();
    this.#revocationTimer?.cancel();
    this.#health?.stop();
    this.#openStreams?.stop();
    this.#renewal?.stop();
    this.#tokens?.stop();
    this.#supervisor?.stop();
    this.#admin?.stop();
    this.#metrics?.stop();
    this.#log.info("stopped");
  }
}
