/**
 * `startGatewayFleet` is the reference cloud's `StartGateways` (gateway-api.ts): N gateways, each in
 * its own process (process.ts), so a test can kill one with kill -9 and restart it through the admin
 * API while users go on through the others.
 *
 * The cloud process owns what is shared: it issues each gateway's server certificate once (kept for
 * restarts, like its tunnel port, so the URL never changes), answers connector lookups from the
 * registry, forwards revocations and catalog snapshots (with the change, for CONFIG_CHANGED), and
 * keeps the book of user ports (user-ports.ts: who holds which port, per listen-policy.ts).
 */
import type { IssuedServerCert } from "../ca.ts";
import { createLogger, type Logger, type LogLevelName } from "../../../src/log.ts";
import type { CloudState, GatewayFleet, GatewayHandle, StartGateways, Unsubscribe } from "../gateway-api.ts";
import type { GatewayAdmin, GatewayStatus, GatewaySummary } from "./admin-types.ts";
import { GatewayProcess } from "./child.ts";
import {
  APP_LISTEN_TIMEOUT_MS,
  CLOUD_STOP_GRACE_MS,
  DEFAULT_STOP_GRACE_MS,
  DESCRIBE_TIMEOUT_MS,
  GATEWAY_READY_TIMEOUT_MS,
  MAX_REFUSED_VERSIONS,
  RESTART_EXIT_WAIT_MS,
  SETTINGS_ACK_TIMEOUT_MS,
} from "./config.ts";
import type { ChildMessage, GatewayApp, InitMessage, ParentMessage } from "./messages.ts";
import { UserPorts } from "./user-ports.ts";

const admins = new WeakMap<GatewayFleet, GatewayAdmin>();

/** The admin interface of a fleet made by `startGatewayFleet`, undefined for any other fleet. */
export function fleetAdmin(fleet: GatewayFleet): GatewayAdmin | undefined {
  return admins.get(fleet);
}

function levelName(level: number): LogLevelName {
  if (level < 0) return "silent";
  return (["error", "warn", "warn", "info", "debug", "trace"] as const)[Math.min(level, 5)]!;
}

class ManagedGateway implements GatewayHandle {
  process: GatewayProcess | undefined;
  tunnelPort = 0;
  /** Set before a stop we asked for, so the exit is not reported as a crash. */
  expectExit = false;
  /** Serialises restart and stop of this gateway. */
  queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly cert: IssuedServerCert,
    private readonly stopOne: (id: string) => Promise<unknown>,
  ) {}

  get url(): string {
    return `wss://127.0.0.1:${this.tunnelPort}/v1/tunnel`;
  }
  get pid(): number | undefined {
    return this.process?.running ? this.process.pid : undefined;
  }
  get summary(): GatewaySummary {
    return { id: this.id, url: this.url, pid: this.pid ?? null, running: this.process?.running ?? false };
  }
  async stop(): Promise<void> {
    await this.stopOne(this.id);
  }
}

class Fleet implements GatewayAdmin {
  readonly gateways: ManagedGateway[] = [];
  readonly #state: CloudState;
  readonly #log: Logger;
  readonly #groups = new Set<string>(["default"]);
  #apps: GatewayApp[] = [];
  readonly #ports: UserPorts;
  readonly #changeListeners = new Set<() => void>();
  readonly #unsubscribes: Unsubscribe[] = [];
  #stopping = false;
  /** Kept here so a gateway (re)started later refuses them too. */
  #refusedVersions: string[] = [];

  constructor(state: CloudState, log: Logger) {
    this.#state = state;
    this.#log = log;
    this.#ports = new UserPorts({
      gateways: () => this.gateways.map((g) => ({ id: g.id, alive: g.process?.ready ?? false })),
      send: (id, message) => this.gateways.find((g) => g.id === id)?.process?.send(message),
      log,
    });
  }

  async start(count: number, initialApps: readonly string[]): Promise<void> {
    for (const name of initialApps) {
      const group = this.#state.catalog.groupOf(name);
      if (group !== undefined) this.#groups.add(group);
    }
    this.#apps = this.#snapshot();
    this.#unsubscribes.push(
      this.#state.catalog.subscribe((change) => this.#onCatalogChange(change)),
      this.#state.connectors.onRevoked((connectorId) => this.#broadcast({ type: "revoked", connectorId })),
    );
    for (let i = 1; i <= count; i++) {
      this.gateways.push(new ManagedGateway(`gw-${i}`, this.#state.ca.issueServerCert(), (id) => this.stop(id)));
    }
    await Promise.all(this.gateways.map((g) => this.#spawn(g)));
    this.#ports.setApps(this.#apps.map((a) => a.name));
    const ports = await Promise.all(this.#apps.map((a) => this.#ports.waitAddress(a.name, GATEWAY_READY_TIMEOUT_MS)));
    const missing = this.#apps.filter((_, i) => ports[i] === null).map((a) => a.name);
    if (missing.length > 0) throw new Error(`no gateway could listen for users of ${missing.join(", ")}`);
  }

  listenAddress(app: string): string | null {
    return this.#ports.address(app);
  }

  waitListenAddress(app: string, timeoutMs = APP_LISTEN_TIMEOUT_MS): Promise<string | null> {
    return this.#ports.waitAddress(app, timeoutMs);
  }

  async describe(): Promise<GatewayStatus[]> {
    return Promise.all(
      this.gateways.map(async (g) => {
        // The summary is taken before asking: an exit reported here was handled (its consequences,
        // e.g. another gateway told to hold a port, sent) before any description was asked for.
        const summary = g.summary;
        const d = g.process?.ready ? await g.process.describe(DESCRIBE_TIMEOUT_MS) : undefined;
        return {
          ...summary,
          answering: d !== undefined,
          tunnels: d?.tunnels ?? [],
          counters: d?.counters ?? null,
          apps: d?.apps ?? {},
        };
      }),
    );
  }

  restart(id: string): Promise<GatewaySummary | undefined> {
    return this.#serial(id, async (g) => {
      if (g.process?.running && !(await g.process.waitExit(RESTART_EXIT_WAIT_MS))) {
        g.expectExit = true;
        await g.process.stop(DEFAULT_STOP_GRACE_MS);
      }
      await this.#spawn(g);
      return g.summary;
    });
  }

  stop(id: string, graceMs = DEFAULT_STOP_GRACE_MS): Promise<GatewaySummary | undefined> {
    return this.#serial(id, async (g) => {
      if (g.process?.running) {
        g.expectExit = true;
        await g.process.stop(graceMs);
      }
      return g.summary;
    });
  }

  get refusedVersions(): readonly string[] {
    return this.#refusedVersions;
  }

  async setRefusedVersions(versions: readonly string[]): Promise<void> {
    if (versions.length > MAX_REFUSED_VERSIONS) throw new Error(`at most ${MAX_REFUSED_VERSIONS} refused versions`);
    this.#refusedVersions = [...new Set(versions)];
    const running = this.gateways.filter((g) => g.process?.ready);
    const acked = await Promise.all(
      running.map((g) => g.process!.refuseVersions(this.#refusedVersions, SETTINGS_ACK_TIMEOUT_MS)),
    );
    // A gateway that died meanwhile gets the set with its next `init`; one that is up and silent is a failure.
    const silent = running.filter((g, i) => !acked[i] && g.process?.ready).map((g) => g.id);
    if (silent.length > 0) throw new Error(`gateway ${silent.join(", ")} did not acknowledge the refused versions`);
  }

  onChange(listener: () => void): Unsubscribe {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Stops every gateway (gracefully, bounded) and forgets the cloud's state. */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    this.#ports.freeze();
    for (const unsubscribe of this.#unsubscribes.splice(0)) unsubscribe();
    await Promise.all(
      this.gateways.map(async (g) => {
        g.expectExit = true;
        await g.process?.stop(CLOUD_STOP_GRACE_MS);
      }),
    );
  }

  #serial(id: string, operation: (g: ManagedGateway) => Promise<GatewaySummary>): Promise<GatewaySummary | undefined> {
    const g = this.gateways.find((x) => x.id === id);
    if (!g) return Promise.resolve(undefined);
    if (this.#stopping) return Promise.reject(new Error("the cloud is stopping"));
    const run = g.queue.then(() => operation(g));
    g.queue = run.catch(() => undefined);
    return run;
  }

  async #spawn(g: ManagedGateway): Promise<void> {
    g.expectExit = false;
    const proc: GatewayProcess = new GatewayProcess({
      id: g.id,
      log: this.#log,
      onMessage: (message) => this.#onMessage(g, message),
      onExit: (code) => this.#onExit(g, proc, code),
    });
    g.process = proc;
    g.tunnelPort = await proc.start(this.#initFor(g));
    this.#log.debug(`gateway ${g.id} ready (pid ${proc.pid}, ${g.url})`);
    this.#emitChange();
    this.#ports.reconcileAll(); // a new gateway may have to hold a port, or may let another go
  }

  #initFor(g: ManagedGateway): InitMessage {
    return {
      type: "init",
      id: g.id,
      tunnelPort: g.tunnelPort,
      logLevel: levelName(this.#log.level),
      tls: { certPem: g.cert.certPem, keyPem: g.cert.keyPem, caPem: this.#state.ca.certPem },
      tokenPublicKeyPem: this.#state.tokenPublicKeyPem,
      tokenMaxTtlSeconds: this.#state.tokenMaxTtlSeconds,
      apps: this.#apps,
      appPorts: this.#ports.known(),
      refusedVersions: this.#refusedVersions,
    };
  }

  #onMessage(g: ManagedGateway, message: ChildMessage): void {
    if (message.type === "lookup") {
      const record = this.#state.connectors.get(message.connectorId);
      const connector = record ? { id: record.id, group: record.group, revoked: record.revoked } : null;
      g.process?.send({ type: "lookupResult", reqId: message.reqId, connector });
    } else if (message.type === "listenState") {
      this.#ports.reported(g.id, message);
    }
  }

  #onExit(g: ManagedGateway, proc: GatewayProcess, code: number | null): void {
    if (g.process !== proc) return;
    if (!g.expectExit && !this.#stopping) this.#log.warn(`gateway ${g.id} (pid ${proc.pid}) exited with code ${code}`);
    this.#emitChange();
    this.#ports.gatewayGone(g.id);
  }

  #onCatalogChange(change: { group: string; version: string }): void {
    this.#groups.add(change.group);
    this.#apps = this.#snapshot();
    this.#broadcast({ type: "catalog", apps: this.#apps, changed: change });
    this.#ports.setApps(this.#apps.map((a) => a.name));
  }

  /** Every app of every group the cloud has mentioned (an app lives in exactly one group). */
  #snapshot(): GatewayApp[] {
    return [...this.#groups].flatMap((group) =>
      this.#state.catalog.forGroup(group).apps.map((a) => ({ name: a.name, group, servers: a.servers })),
    );
  }

  #broadcast(message: ParentMessage): void {
    for (const g of this.gateways) g.process?.send(message);
  }

  #emitChange(): void {
    for (const listener of this.#changeListeners) listener();
  }
}

export interface GatewayFleetOptions {
  readonly count: number;
  /** Names of the catalog's initial apps: each gets its user port before the fleet is returned. */
  readonly apps?: readonly string[];
  readonly log?: Logger;
}

/** The reference cloud's `StartGateways` (the default of `startCloud`). */
export async function startGatewayFleet(state: CloudState, options: GatewayFleetOptions): Promise<GatewayFleet> {
  const log = options.log ?? createLogger({ level: "info", format: "pretty" });
  const fleet = new Fleet(state, log.withTag("gateways"));
  const handle: GatewayFleet = {
    gateways: fleet.gateways,
    listenAddress: (app) => fleet.listenAddress(app),
    stop: () => fleet.stopAll(),
  };
  admins.set(handle, fleet);
  try {
    await fleet.start(options.count, options.apps ?? []);
  } catch (err) {
    await fleet.stopAll();
    throw err;
  }
  return handle;
}

startGatewayFleet satisfies StartGateways;
