/**
 * `Daemon` is `connector run` put together: identity → app catalog → N tunnels under the
 * supervisor → streams through the dataplane, with status on the admin socket and a graceful stop.
 * It holds no protocol logic itself; it wires modules and owns the process-level lifecycle.
 *
 * Stop: the first SIGTERM/SIGINT sends GO_AWAY on every tunnel (gateways route no new streams here),
 * waits until open streams finish or the grace period ends, closes and resolves 0. A second signal
 * resolves at once with 128+signal.
 *
 * Hand-over (an upgraded binary takes over): `handOver()` starts the successor and keeps serving until
 * it is ready, then drains the same way and resolves 0; started as a successor (`successor` set), the
 * daemon runs without the lock until its tunnels are up, then takes over (src/daemon/handover*.ts).
 */
import { describeError, ExitCode } from "../errors.ts";
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
import type { Tunnel } from "../supervisor/connection.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import { createTunnelSupervisor } from "./tunnel-supervisor.ts";
import type { HealthReport } from "../mux/payloads.ts";
import { buildInfo } from "../version.ts";
import { startAdminServer, type AdminServer } from "./admin-server.ts";
import { isLoopbackListen, startMetricsServer, type MetricsServer } from "../status/metrics.ts";
import { obtainIdentity } from "./identity-source.ts";
import { lockStateDir } from "./state-dir-lock.ts";
import type { DaemonLock } from "../state/daemon-lock.ts";
import { ensureStateDir } from "../state/atomic-file.ts";
import { systemdNotifier } from "../host/sd-notify.ts";
import { takeOver, type SuccessorRole } from "./handover-child.ts";
import { handOverTo, type HandoverOutcome, type Successor } from "./handover.ts";
import { UpgradeFlow } from "./upgrade-flow.ts";
import { trustedRoots } from "../upgrade/trust-roots.ts";
import { renewIdentity } from "../identity/renew.ts";
import { CertificateRenewal } from "./certificate-renewal.ts";
import { rollTunnels } from "./identity-rollover.ts";
import { CatalogRefresh, REVOKED_RETRY_MS } from "./catalog-refresh.ts";
import { StatusModel } from "./status-model.ts";
import type { AccessTokens } from "./access-tokens.ts";
import { startAccessTokens } from "./access-token-setup.ts";

/** A status summary line every 5 minutes (and on every tunnel change). */
const SUMMARY_INTERVAL_MS = 5 * 60_000;
/** Fallback when CONFIG_CHANGED is missed: revalidate the catalog (ETag, usually a 304). */
const CATALOG_POLL_MS = 5 * 60_000;
/** A successor's retry of the metrics port its previous process still holds. */
const METRICS_RETRY_MS = 1_000;
/** Steps of the graceful stop's wait for open streams. */
const DRAIN_POLL_MS = 100;

export interface DaemonOptions {
  settings: Settings;
  env: Record<string, string | undefined>;
  log: Logger;
  clock?: Clock;
  /** Started by a running daemon to take over from it (src/daemon/handover-child.ts). */
  successor?: SuccessorRole;
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
  #supervisor?: Supervisor<Tunnel>;
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
  /** The hand-over in progress (old side), and the process taking over. */
  #handover?: Promise<HandoverOutcome>;
  #successor?: Successor;
  /** The successor is serving: this process drains and exits. */
  #handedOver = false;
  #upgrades?: UpgradeFlow;

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
      this.#log.error("unexpected error (kept running)", {
        error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
      });
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { settings, env, log } = this.#options;
      // Held until exit, taken before enrolling: one daemon per state dir (ALREADY_RUNNING otherwise).
      // A successor takes it once its predecessor lets go (takeOver); the state dir exists then.
      if (this.#options.successor) ensureStateDir(settings.stateDir);
      else
        this.#lock = await lockStateDir({
          stateDir: settings.stateDir,
          log,
          clock: this.#clock,
          signal: this.#abort.signal,
        });
      if (!this.#lock && !this.#options.successor) return await stopped;
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
      this.#upgrades = this.#upgradeFlow(identity);
      // A new version that keeps crashing before it proved itself goes back to the previous binary.
      if (await this.#upgrades.guardStart()) return ExitCode.failure;
      log.info("starting", {
        version: buildInfo.version,
        connectorId: identity.connectorId,
        name: identity.name,
        group: identity.group,
        tunnels: settings.tunnels,
        ...(this.#options.successor ? { handover: true } : {}),
      });
      // A signal during start-up (catalog fetch) must not wait for it.
      return await Promise.race([this.#start(identity).then(() => stopped), stopped]);
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      process.off("unhandledRejection", onUnhandled);
      this.#shutdown();
      this.#lock?.release();
      await this.#successor?.stop();
    }
  }

  async #start(identity: Identity): Promise<void> {
    const { settings, log } = this.#options;
    const status = new StatusModel(identity, () => this.#counters.failures as Record<string, number>);
    this.#status = status;
    // A successor binds the admin socket and the metrics port only once it takes over (takeOver).
    if (!this.#options.successor) {
      await this.#bindAdmin(false);
      // Type=notify: ready once status answers, not once tunnels are up, so a cloud outage never fails the unit start.
      this.#announceReady(`started as ${identity.connectorId}; tunnels connecting`);
      await this.#startMetrics();
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
    this.#health = new HealthMonitor({
      clock: this.#clock,
      resolve: nameRuleResolver(),
      onChange: (report) => this.#broadcastHealth(report),
    });
    const catalog = await this.#catalog.first();
    if (!catalog || this.#abort.signal.aborted) return;
    this.#renewal = new CertificateRenewal(identity, {
      clock: this.#clock,
      log: log.withTag("identity"),
      renew: (current) =>
        renewIdentity(current, {
          stateDir: settings.stateDir,
          proxy: settings.proxy,
          noProxy: settings.noProxy,
          log: log.withTag("identity"),
        }),
      onRenewed: (renewed) => this.#useIdentity(renewed),
    });
    // Renewal writes the identity: only the lock holder may (a successor starts it in takeOver).
    if (this.#lock) this.#renewal.start();
    ({ gate: this.#gate, openStreams: this.#openStreams } = createDataplaneState(
      settings,
      this.#clock,
      log.withTag("dataplane"),
      status,
    ));
    const renewal = this.#renewal;
    status.showRenewal(() => renewal.view());
    const upgrades = this.#upgrades;
    if (upgrades) status.showUpgrade(() => upgrades.auto.view());
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
    const successor = this.#options.successor;
    if (successor) {
      void takeOver(successor, {
        stateDir: settings.stateDir,
        ownTunnels: settings.tunnels,
        log,
        clock: this.#clock,
        signal: this.#abort.signal,
        upCount: () => this.#supervisor?.upCount() ?? 0,
        takeAdminSocket: () => this.#bindAdmin(true),
        announceReady: () => this.#announceReady(),
        locked: (lock) => {
          this.#lock = lock;
          this.#renewal?.start();
          this.#startMetrics().catch((err: unknown) => log.error("metrics not served", { error: describeError(err) }));
          this.#upgrades?.start();
        },
      });
    } else {
      this.#upgrades?.start();
    }
  }

  /**
   * A successor's previous process holds the port until it exits (at most the grace period after the
   * hand-over): it tries again every second meanwhile.
   */
  async #startMetrics(): Promise<void> {
    const { settings, log } = this.#options;
    const status = this.#status;
    if (!settings.metrics || !status) return;
    for (;;) {
      try {
        this.#metrics = startMetricsServer(settings.metrics, () => status.snapshot(), buildInfo);
        break;
      } catch (err) {
        if (!this.#options.successor || this.#abort.signal.aborted) throw err;
        log.debug("metrics port still held by the previous process; trying again", { error: describeError(err) });
        await sleep(this.#clock, METRICS_RETRY_MS, this.#abort.signal);
      }
    }
    log.info("metrics served", { url: `${this.#metrics.url}/metrics` });
    if (!isLoopbackListen(settings.metrics)) {
      log.warn("metrics are served beyond loopback without authentication: they name apps and internal addresses", {
        listen: settings.metrics,
      });
    }
  }

  /** Tells systemd (Type=notify) that the service is up; a successor also says it is the main process now. */
  #announceReady(status?: string): void {
    // A successor says only who the main process is now: systemd keeps the status line it had.
    const fields: Record<string, string | number> = this.#options.successor
      ? { MAINPID: process.pid, READY: 1 }
      : { READY: 1, ...(status ? { STATUS: status } : {}) };
    const problem = systemdNotifier(this.#options.env).send(fields);
    if (problem) this.#log.warn("could not tell the service manager that the connector is ready", { error: problem });
  }

  /** Upgrades: the schedule, the hand-over on a new binary, rollback and crash-loop guard (upgrade-flow.ts). */
  #upgradeFlow(identity: Identity): UpgradeFlow {
    const { settings, log } = this.#options;
    const flow = new UpgradeFlow({
      settings,
      connectorId: identity.connectorId,
      installed: process.execPath,
      roots: trustedRoots,
      running: { version: buildInfo.version, target: buildInfo.target },
      log: log.withTag("upgrade"),
      clock: this.#clock,
      signal: this.#abort.signal,
      report: (o) =>
        this.#controlClient(this.#identity ?? identity).reportUpgrade({
          from: o.from,
          to: o.to,
          result: o.result,
          code: o.code,
          message: o.message,
          at: o.at,
        }),
      handOver: () => this.handOver(),
      tunnelsUp: () => this.#supervisor?.upCount() ?? 0,
    });
    return flow;
  }

  /**
   * Hands over to `<binary> <this process's arguments>` (src/daemon/handover.ts): serves until the
   * successor is ready, then drains and resolves the run with 0. When the successor is not ready
   * within --upgrade-health-timeout, or exits, it is stopped and this process carries on.
   */
  handOver(binary: string = process.execPath): Promise<HandoverOutcome> {
    const { settings, env, log } = this.#options;
    this.#handover ??= handOverTo(binary, {
      env,
      log,
      clock: this.#clock,
      healthTimeoutSeconds: settings.upgradeHealthTimeout,
      refusal: () =>
        this.#abort.signal.aborted || this.#handedOver
          ? "this process is stopping"
          : !this.#lock || !this.#supervisor
            ? "this process is not serving yet"
            : undefined,
      tunnelsUp: () => this.#supervisor?.upCount() ?? 0,
      stopping: () => this.#abort.signal.aborted,
      track: (successor) => (this.#successor = successor),
      handedOver: () => {
        this.#handedOver = true;
        this.#abort.abort();
        this.#upgrades?.stop();
        this.#renewal?.stop(); // the identity is the successor's to renew from now on
        void this.#drain("hand-over", () => this.#lock?.release()).then(() => this.#stopRequested?.(0));
      },
      reclaimAdminSocket: async () => {
        if (this.#admin?.owned() !== false || this.#abort.signal.aborted) return;
        this.#admin.stop();
        await this.#bindAdmin(true);
      },
    }).finally(() => (this.#handover = undefined));
    return this.#handover;
  }

  /** The admin socket; `takeOver`: in place of another process's (a hand-over), without asking it first. */
  async #bindAdmin(takeOver: boolean): Promise<void> {
    const status = this.#status!;
    this.#admin = await startAdminServer(this.#options.settings.stateDir, () => status.snapshot(), { takeOver });
  }

  #controlClient(identity: Identity): ControlClient {
    const { settings } = this.#options;
    return new ControlClient({
      controlUrl: identity.controlUrl,
      proxy: settings.proxy,
      noProxy: settings.noProxy,
      caCertificate: identity.caCertificate,
      clientCertificate: {
        certificate: identity.certificate,
        chain: identity.chain,
        privateKeyPem: identity.privateKeyPem,
      },
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
      graceMs: Math.max(
        this.#options.settings.gracePeriod * 1000,
        previous ? certificateNotAfter(previous).getTime() - this.#clock.wallNow().getTime() : 0,
      ),
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

  /** A revoked connector stops its tunnels, says so in status and logs, and retries only slowly. */
  #refreshCatalog(): Promise<void> {
    return this.#catalog?.refresh() ?? Promise.resolve();
  }

  #revoked(): void {
    if (this.#status?.state() === "revoked") return;
    this.#status?.revoked();
    this.#log.error(
      "this connector has been revoked by the cloud: tunnels stopped; re-enroll it with a new key (connector enroll --force)",
      {
        checkAgainInMs: REVOKED_RETRY_MS,
      },
    );
    this.#supervisor?.stop("connector revoked");
    this.#supervisor = undefined;
    this.#recheckIfRevoked();
  }

  /** While revoked, the catalog is asked again every REVOKED_RETRY_MS (and only then). */
  #recheckIfRevoked(): void {
    if (this.#status?.state() !== "revoked" || this.#abort.signal.aborted) return;
    this.#revocationTimer = this.#clock.setTimeout(
      () => void this.#refreshCatalog().then(() => this.#recheckIfRevoked()),
      REVOKED_RETRY_MS,
    );
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
    this.#health
      ?.setCatalog(catalog)
      .catch((err: unknown) => this.#log.warn("health check failed", { error: describeError(err) }));
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
    // A successor not ready yet is stopped with us (run() waits for it to exit).
    this.#successor?.cancel(`stopping on ${signal}`);
    if (this.#handedOver) {
      this.#log.info("already draining after the hand-over; a second signal stops now", { signal });
      return;
    }
    this.#abort.abort();
    void this.#drain(signal).then(() => this.#stopRequested?.(0));
  }

  /** `afterGoAway`: a hand-over lets go of the lock once the gateways have been told. */
  async #drain(signal: string, afterGoAway?: () => void): Promise<void> {
    const supervisor = this.#supervisor;
    const graceMs = this.#options.settings.gracePeriod * 1000;
    if (!supervisor) return afterGoAway?.();
    this.#log.info("stopping: gateways told to send no new streams", {
      signal,
      openStreams: supervisor.activeStreams(),
      gracePeriodSeconds: graceMs / 1000,
    });
    supervisor.drain();
    afterGoAway?.();
    const deadline = this.#clock.now() + graceMs;
    while (supervisor.activeStreams() > 0 && this.#clock.now() < deadline && this.#signals < 2) {
      await sleep(this.#clock, DRAIN_POLL_MS);
    }
    const left = supervisor.activeStreams();
    if (left > 0) this.#log.warn("grace period over: closing remaining streams", { openStreams: left });
    else this.#log.info("all streams finished");
  }

  #shutdown(): void {
    this.#upgrades?.stop();
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
