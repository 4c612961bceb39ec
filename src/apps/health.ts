/**
 * App health: each app's servers are resolved to addresses and each address is checked with a
 * TCP connect every interval; real streams add passive results in between. Whenever any address
 * changes health the monitor emits a report, which the daemon sends to every tunnel so gateways route
 * users only to connectors that can reach the app.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Catalog } from "../control/api.ts";
import { dialDestination } from "../dataplane/dial.ts";
import { DialError } from "../dataplane/errors.ts";
import { describeError } from "../errors.ts";
import { systemResolver, type Resolver } from "../dataplane/resolve.ts";
import { formatHost, formatHostPort, parseHost, splitHostPort } from "../netaddr/index.ts";
import type { HealthReport } from "../mux/payloads.ts";

/** By default a TCP connect check every 30 s. */
export const HEALTH_CHECK_INTERVAL_MS = 30_000;
/** A check that has not connected within this is a failure; short, as an app that slow is not healthy. */
export const HEALTH_CHECK_TIMEOUT_MS = 5_000;

export type ProbeFn = (host: string, port: number) => Promise<boolean>;

/** A TCP connect check: undefined when it connected, why not otherwise (for the log). */
export async function tcpCheck(host: string, port: number): Promise<string | undefined> {
  try {
    const socket = await dialDestination(host, port, {}, { data: undefined, timeoutMs: HEALTH_CHECK_TIMEOUT_MS });
    socket.end();
    return undefined;
  } catch (err) {
    // Out of fds says nothing about the server: fail the round, which keeps the previous results.
    if (err instanceof DialError && err.failure === "BUSY") throw err;
    return describeError(err);
  }
}

/** TCP connect probe: connected means healthy. */
export const tcpProbe: ProbeFn = async (host, port) => (await tcpCheck(host, port)) === undefined;

/** A server's health as a check found it: the first result, then each change (not every check). */
export interface HealthTransition {
  readonly app: string;
  /** `ip:port` as shown in status (or the catalog's text when it could not be resolved). */
  readonly server: string;
  readonly healthy: boolean;
  /** Unhealthy: why. */
  readonly detail?: string;
}

interface ServerEntry {
  app: string;
  /** `ip:port` as shown in status. */
  address: string;
  host: string;
  port: number;
  healthy: boolean;
  /** Unhealthy: why (the check's error, or why there was nothing to check). */
  detail?: string;
}

export class HealthMonitor {
  #servers: ServerEntry[] = [];
  #catalog?: Catalog;
  #timer?: TimerHandle;
  #stopped = false;
  #checked = false;
  /** What each server was last told to be (`onTransition`), by app and address. */
  readonly #told = new Map<string, boolean>();

  constructor(
    private readonly options: {
      clock: Clock;
      onChange: (report: HealthReport) => void;
      /**
       * A check found a server's health for the first time or changed: once per change, so a log of
       * these is not a line per check. Passive results (`observe`) change routing at once but are not
       * told here: a flaky server would flip on every stream, and failed streams are logged already.
       */
      onTransition?: (transition: HealthTransition) => void;
      /** The check (a TCP connect by default); a test's probe answers only healthy or not. */
      probe?: ProbeFn;
      resolve?: Resolver;
      intervalMs?: number;
    },
  ) {}

  /** Replaces the catalog and checks at once. */
  async setCatalog(catalog: Catalog): Promise<void> {
    this.#catalog = catalog;
    this.#checked = false;
    await this.checkAll();
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }

  /** True once a check of the current catalog has completed (before that there is nothing to report). */
  get ready(): boolean {
    return this.#checked;
  }

  report(): HealthReport {
    const apps = (this.#catalog?.apps ?? []).map((app) => ({
      name: app.name,
      servers: this.#servers.filter((s) => s.app === app.name).map((s) => ({ address: s.address, healthy: s.healthy })),
    }));
    return { apps };
  }

  /** Passive result of a real stream's dial. */
  observe(app: string, address: string, ok: boolean): void {
    const entry = this.#servers.find((s) => s.app === app && s.address === address);
    if (entry && entry.healthy !== ok) {
      entry.healthy = ok;
      this.options.onChange(this.report());
    }
  }

  async checkAll(): Promise<void> {
    const catalog = this.#catalog;
    if (!catalog) return;
    const resolved = await Promise.all(
      catalog.apps.flatMap((app) => app.servers.map((server) => this.#resolve(app.name, server))),
    );
    const next = resolved.flat();
    await Promise.all(next.map((s) => this.#check(s)));
    if (catalog !== this.#catalog) return; // replaced meanwhile; that check reports
    const before = this.#checked ? JSON.stringify(this.report()) : undefined;
    this.#servers = next;
    this.#checked = true;
    if (JSON.stringify(this.report()) !== before) this.options.onChange(this.report());
    this.#tellTransitions(next);
  }

  async #check(server: ServerEntry): Promise<void> {
    if (server.detail !== undefined) return; // nothing to connect to (not host:port, or no address)
    const probe = this.options.probe;
    if (probe) {
      server.healthy = await probe(server.host, server.port);
      if (!server.healthy) server.detail = "connect failed";
      return;
    }
    server.detail = await tcpCheck(server.host, server.port);
    server.healthy = server.detail === undefined;
  }

  /** Each server's first result and each change since; servers no longer checked are forgotten. */
  #tellTransitions(servers: readonly ServerEntry[]): void {
    const seen = new Set<string>();
    for (const s of servers) {
      const key = `${s.app}\n${s.address}`;
      seen.add(key);
      if (this.#told.get(key) === s.healthy) continue;
      this.#told.set(key, s.healthy);
      this.options.onTransition?.({
        app: s.app,
        server: s.address,
        healthy: s.healthy,
        ...(s.healthy || s.detail === undefined ? {} : { detail: s.detail }),
      });
    }
    for (const key of this.#told.keys()) if (!seen.has(key)) this.#told.delete(key);
  }

  async #resolve(app: string, server: string): Promise<ServerEntry[]> {
    const split = splitHostPort(server);
    const parsed = split ? parseHost(split.host) : undefined;
    const port = split?.port;
    if (!split || !parsed || port === undefined)
      return [{ app, address: server, host: server, port: 0, healthy: false, detail: "not a host:port" }];
    // Canonical, as the dialler reports passive results (IPv4-mapped unmapped, IPv6 lower-case).
    if (parsed.kind !== "name")
      return [
        { app, address: formatHostPort(formatHost(parsed), port), host: formatHost(parsed), port, healthy: false },
      ];
    try {
      const lookup = (this.options.resolve ?? systemResolver)(parsed.name);
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("DNS timeout")), HEALTH_CHECK_TIMEOUT_MS).unref(),
      );
      const addresses = await Promise.race([lookup, timeout]);
      return addresses.map((a) => ({
        app,
        address: formatHostPort(a.address, port),
        host: a.address,
        port,
        healthy: false,
      }));
    } catch (err) {
      return [
        {
          app,
          address: server,
          host: parsed.name,
          port,
          healthy: false,
          detail: `not resolved: ${describeError(err)}`,
        },
      ];
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.options.clock.setTimeout(() => {
      this.checkAll()
        .catch(() => undefined) // a failed round leaves the previous results; the next round retries
        .finally(() => this.#schedule());
    }, this.options.intervalMs ?? HEALTH_CHECK_INTERVAL_MS);
  }
}
