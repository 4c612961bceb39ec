/**
 * `Daemon` is `connector run` put together: identity → app catalog → N tunnels under the
 * supervisor → streams through the dataplane, with status on the admin socket and a graceful stop.
 * It holds no protocol logic itself: it owns the process-level lifecycle (the state dir's lock, the
 * local servers, signals, upgrades and hand-over) around `Service` (service.ts), the connector serving.
 * What it talks to outside the process (clock, signals, control plane, listeners, tunnels, systemd)
 * is given (`DaemonDeps`, daemon-deps.ts; assemble.ts has the real ones).
 *
 * Stop (stop-control.ts): the first SIGTERM/SIGINT sends GO_AWAY on every tunnel (gateways route no
 * new streams here), waits until open streams finish or the grace period ends (drain.ts), closes and
 * resolves 0. A second signal resolves at once with 128+signal.
 *
 * Hand-over (an upgraded binary takes over): the upgrade flow starts the successor and this process
 * keeps serving until it is ready, then drains the same way and resolves 0; started as a successor
 * (`successor` set), the daemon runs without the lock until its tunnels are up, then takes over
 * (src/daemon/handover*.ts).
 */
import { describeError, ExitCode } from "../errors.ts";
import type { Identity } from "../identity/identity.ts";
import { bindLogFields, type Logger, logToJournal, stderrIsJournal } from "../log.ts";
import type { DaemonLock } from "../state/daemon-lock.ts";
import { sleep } from "../clock.ts";
import { ensureStateDir } from "../state/atomic-file.ts";
import { buildInfo } from "../version.ts";
import type { DaemonDeps, DaemonOptions } from "./daemon-deps.ts";
import { drainTunnels } from "./drain.ts";
import { logEvents } from "./event-log.ts";
import { DaemonEvents } from "./events.ts";
import { takeOver, type SuccessorRole } from "./handover-child.ts";
import type { Successor } from "./handover.ts";
import { LocalServers } from "./local-servers.ts";
import { Service } from "./service.ts";
import { StatusModel } from "./status-model.ts";
import { StopControl } from "./stop-control.ts";
import type { UpgradeFlow } from "./upgrade-flow.ts";
import { startUpgrades, type UpgradeHost } from "./upgrade-wiring.ts";

export type { DaemonOptions } from "./daemon-deps.ts";

/** Longest wait at exit for closed tunnels to report so; a session closes at once, this is only a bound. */
const TUNNELS_CLOSED_WAIT_MS = 5_000;

export class Daemon {
  readonly #options: DaemonOptions;
  readonly #deps: DaemonDeps;
  readonly #log: Logger;
  /** Signals, hand-over and drain; `stopping` is aborted once a stop begins. */
  readonly #stop: StopControl;
  #servers?: LocalServers;
  #service?: Service;
  #upgrades?: UpgradeFlow;
  #lock?: DaemonLock;
  /** The process taking over (a hand-over in progress), stopped with this one while not ready. */
  #successor?: Successor;

  constructor(options: DaemonOptions, deps: DaemonDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#log = options.log;
    // Under systemd every line gets its priority (`<N>`), so `journalctl -p warning` finds warnings.
    if (stderrIsJournal(options.env)) logToJournal(options.log, true);
    this.#stop = new StopControl({
      log: this.#log,
      graceMs: options.settings.gracePeriod * 1000,
      cancelSuccessor: (why) => this.#successor?.cancel(why),
      drain: (reason, cut, afterGoAway) =>
        drainTunnels({
          tunnels: this.#service?.tunnels.current,
          graceMs: options.settings.gracePeriod * 1000,
          clock: deps.clock,
          log: this.#log,
          reason,
          cut,
          ...(afterGoAway ? { afterGoAway } : {}),
        }),
    });
  }

  /** Aborted once the daemon stops (a signal, or handed over): nothing new starts after. */
  get #stopping(): AbortSignal {
    return this.#stop.stopping;
  }

  /**
   * Runs until stopped by a signal; resolves with the process exit code. The log of a stop reads in
   * the order things happen: "stopping", "draining: N streams open", how the wait ended, the tunnels
   * going down, "tunnels closed", and "stopped" with the exit code as the very last line.
   */
  async run(): Promise<number> {
    const unlisten = this.#deps.signals.listen({
      signal: (signal) => this.#stop.signal(signal),
      // Last resort: a bug in one stream or tunnel must not take every tunnel down with the process.
      unhandled: (reason) =>
        this.#log.error("unexpected error (kept running)", {
          error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
        }),
    });
    let exitCode: number | undefined;
    try {
      exitCode = await this.#serve();
      return exitCode;
    } finally {
      unlisten();
      await this.#shutdown();
      this.#lock?.release();
      await this.#successor?.stop();
      // Without an exit code the error that ended the run is reported by the command (and exits 1).
      this.#log.info("stopped", exitCode === undefined ? {} : { exitCode });
    }
  }

  /** Everything up to the stop's exit code. */
  async #serve(): Promise<number> {
    const stopped = this.#stop.exitCode;
    const { settings, log, successor } = this.#options;
    // Held until exit, taken before enrolling: one daemon per state dir (ALREADY_RUNNING otherwise).
    // A successor takes it once its predecessor lets go (takeOver); the state dir exists then.
    if (successor) ensureStateDir(settings.stateDir);
    else this.#lock = await this.#deps.lockStateDir(this.#stopping);
    if (!this.#lock && !successor) return await stopped;
    const identity = await this.#deps.obtainIdentity(this.#stopping);
    if (!identity || this.#stopping.aborted) return await stopped;
    // Every line from here on names the connector (a fleet's logs are read together).
    bindLogFields(log, { connectorId: identity.connectorId });
    this.#upgrades = startUpgrades(this.#upgradeHost(identity));
    // A new version that keeps crashing before it proved itself goes back to the previous binary.
    if (await this.#upgrades.guardStart()) return ExitCode.failure;
    log.info("starting", {
      version: buildInfo.version,
      connectorId: identity.connectorId,
      name: identity.name,
      group: identity.group,
      tunnels: settings.tunnels,
      ...(successor ? { handover: true } : {}),
    });
    // A signal during start-up (catalog fetch) must not wait for it.
    return await Promise.race([this.#start(identity).then(() => stopped), stopped]);
  }

  async #start(identity: Identity): Promise<void> {
    const { settings, log, successor } = this.#options;
    const status = new StatusModel(
      identity,
      () => this.#service?.failures ?? {},
      () => this.#deps.clock.wallNow(),
    );
    const events = new DaemonEvents((err, event) =>
      log.error("event listener failed (kept running)", { event: event.type, error: describeError(err) }),
    );
    events.subscribe((event) => status.apply(event));
    events.subscribe(logEvents({ log, summary: () => status.summary() }));
    const servers = new LocalServers({
      deps: this.#deps,
      stateDir: settings.stateDir,
      metrics: settings.metrics,
      health: settings.health,
      snapshot: () => status.snapshot(),
      log,
      clock: this.#deps.clock,
      signal: this.#stopping,
      successor: successor !== undefined,
    });
    this.#servers = servers;
    // A successor binds the admin socket and the metrics and health ports only once it takes over (takeOver).
    if (!successor) {
      await servers.bindAdmin(false);
      // Type=notify: ready once status answers, not once tunnels are up, so a cloud outage never fails the unit start.
      servers.announceReady(`started as ${identity.connectorId}; tunnels connecting`);
      await servers.startListeners();
    }
    const service = new Service({
      options: this.#options,
      deps: this.#deps,
      identity,
      status,
      events,
      stopping: this.#stopping,
      holdsLock: () => this.#lock !== undefined,
    });
    this.#service = service;
    if (!(await service.start())) return;
    const upgrades = this.#upgrades;
    if (upgrades) status.showUpgrade(() => upgrades.auto.view());
    if (successor) this.#takeOver(successor, service, servers);
    else this.#upgrades?.start();
  }

  /** A successor: once its tunnels are up, the admin socket, then the lock, then what the lock holder runs. */
  #takeOver(role: SuccessorRole, service: Service, servers: LocalServers): void {
    const { settings, log } = this.#options;
    void takeOver(role, {
      stateDir: settings.stateDir,
      ownTunnels: settings.tunnels,
      log,
      clock: this.#deps.clock,
      signal: this.#stopping,
      upCount: () => service.tunnels.upCount(),
      tunnelEvents: (listener) => service.tunnels.subscribe(listener),
      takeAdminSocket: () => servers.bindAdmin(true),
      announceReady: () => servers.announceReady(),
      locked: (lock) => {
        this.#lock = lock;
        service.startRenewal();
        servers
          .startListeners()
          .catch((err: unknown) => log.error("metrics or health not served", { error: describeError(err) }));
        this.#upgrades?.start();
      },
    });
  }

  /** What the upgrade flow and a hand-over need of this daemon. */
  #upgradeHost(identity: Identity): UpgradeHost {
    const { settings, env, log } = this.#options;
    return {
      settings,
      env,
      log,
      clock: this.#deps.clock,
      random: this.#deps.random,
      signal: this.#stopping,
      connectorId: identity.connectorId,
      installedBinary: this.#deps.installedBinary,
      report: (report) => this.#deps.controlClient(this.#service?.identity ?? identity).reportUpgrade(report),
      tunnelsUp: () => this.#service?.tunnels.upCount() ?? 0,
      stopping: () => this.#stopping.aborted,
      refusal: () =>
        this.#stopping.aborted || this.#stop.handedOver
          ? "this process is stopping"
          : !this.#lock || !this.#service?.tunnels.running
            ? "this process is not serving yet"
            : undefined,
      track: (successor) => (this.#successor = successor),
      handedOver: () => {
        this.#upgrades?.stop();
        this.#service?.stopRenewal(); // the identity is the successor's to renew from now on
        this.#stop.handOver(() => this.#lock?.release());
      },
      reclaimAdminSocket: () => this.#servers?.reclaimAdmin() ?? Promise.resolve(),
    };
  }

  /** Closes the tunnels (what the drain left open ends now) and waits for them, then the local servers. */
  async #shutdown(): Promise<void> {
    this.#upgrades?.stop();
    const service = this.#service;
    const closing = service?.tunnels.tunnels().map((t) => t.closed) ?? [];
    service?.stop();
    if (service) {
      // A closed session settles at once; the bound only keeps a broken tunnel from holding the exit.
      const bound = new AbortController();
      await Promise.race([Promise.all(closing), sleep(this.#deps.clock, TUNNELS_CLOSED_WAIT_MS, bound.signal)]);
      bound.abort();
      this.#log.info("tunnels closed", { tunnels: closing.length });
    }
    this.#servers?.stop();
  }
}
