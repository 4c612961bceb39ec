/**
 * `Router` decides where a user connection for an app goes (test/cloud/README.md, docs/PROTOCOL.md §5.7,
 * PROTOCOL §5.9): to a tunnel of a connector in the app's group, round-robin over this gateway's tunnels that
 * are usable (up, no GO_AWAY either way) and whose connector's last health report for the app has a
 * healthy server (or that has not reported the app yet; when no tunnel qualifies, every usable one). The OPEN names one of the app's catalog
 * servers, round-robin too. An open refused BUSY, or lost to a tunnel draining or closing, is tried on
 * the next tunnel, at most `maxAttempts` tunnels in all; any other refusal is final (the destination
 * answered for itself).
 *
 * Pure: no sockets, no sessions. Tunnels are `RouteTarget`s, so tests drive it with fakes. It also
 * tells its owner when an app becomes routable here or stops being so (the user listener follows).
 */
import { ConnectorError } from "../../../src/errors.ts";
import { splitHostPort } from "../../../src/netaddr/index.ts";
import type { HealthReport } from "../../../src/mux/payloads.ts";
import type { OpenRequest } from "../../../src/mux/stream.ts";
import { MAX_OPEN_ATTEMPTS } from "./config.ts";
import type { GatewayApp } from "./messages.ts";

/** One tunnel as the router sees it. */
export interface RouteTarget<S> {
  readonly connectorId: string;
  /** The connector's group: it serves that group's apps. */
  readonly group: string;
  /** Up, and neither side has sent GO_AWAY. */
  readonly usable: boolean;
  /** Opens a stream; rejects with the session's typed errors. */
  open(request: OpenRequest): Promise<S>;
}

export type RouteFailure = "unknown-app" | "no-server" | "no-tunnel" | "failed";

export type RouteResult<S> =
  | { readonly ok: true; readonly stream: S; readonly target: RouteTarget<S> }
  | { readonly ok: false; readonly reason: RouteFailure; readonly error?: unknown };

export interface RouterCounters {
  routed: number;
  noTunnel: number;
  unknownApp: number;
  routeFailed: number;
  opensOk: number;
  opensFailed: Record<string, number>;
  retries: number;
}

/** Failures that say nothing about the destination, only about that tunnel: worth another tunnel. */
const RETRYABLE = new Set(["OPEN_BUSY", "TUNNEL_CLOSED", "TUNNEL_DRAINING"]);

interface AppEntry {
  readonly group: string;
  readonly servers: readonly { readonly host: string; readonly port: number }[];
  nextServer: number;
  nextTunnel: number;
}

export interface RouterOptions {
  readonly maxAttempts?: number;
  /** Called when `app` becomes routable here (a usable, healthy tunnel exists) or stops being so. */
  readonly onRoutableChange?: (app: string, routable: boolean) => void;
}

/** The stable code of an open failure, for counting and retry decisions. */
export function failureCode(error: unknown): string {
  return error instanceof ConnectorError ? error.code : "INTERNAL";
}

function parseServers(servers: readonly string[]): { host: string; port: number }[] {
  const parsed: { host: string; port: number }[] = [];
  for (const server of servers) {
    const split = splitHostPort(server);
    if (split?.port !== undefined && split.port > 0 && split.host !== "")
      parsed.push({ host: split.host, port: split.port });
  }
  return parsed;
}

/** The first of `candidates` not tried yet, walking round-robin from position `start`. */
function nextUntried<T>(candidates: readonly T[], start: number, tried: ReadonlySet<T>): T | undefined {
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[(start + i) % candidates.length]!;
    if (!tried.has(candidate)) return candidate;
  }
  return undefined;
}

export class Router<S> {
  readonly counters: RouterCounters = {
    routed: 0,
    noTunnel: 0,
    unknownApp: 0,
    routeFailed: 0,
    opensOk: 0,
    opensFailed: {},
    retries: 0,
  };
  readonly #apps = new Map<string, AppEntry>();
  /** In arrival order; round-robin walks it. */
  #targets: RouteTarget<S>[] = [];
  /** Per tunnel: app name → the last report had a healthy server for it. */
  readonly #health = new Map<RouteTarget<S>, Map<string, boolean>>();
  readonly #routable = new Map<string, boolean>();
  readonly #maxAttempts: number;
  readonly #onRoutableChange: (app: string, routable: boolean) => void;

  constructor(options: RouterOptions = {}) {
    this.#maxAttempts = options.maxAttempts ?? MAX_OPEN_ATTEMPTS;
    this.#onRoutableChange = options.onRoutableChange ?? (() => {});
  }

  /** Replaces the catalog; round-robin positions of apps that stay are kept. */
  setApps(apps: readonly GatewayApp[]): void {
    const names = new Set(apps.map((a) => a.name));
    for (const name of this.#apps.keys()) {
      if (!names.has(name)) {
        this.#apps.delete(name);
        this.#routable.delete(name);
      }
    }
    for (const app of apps) {
      const previous = this.#apps.get(app.name);
      this.#apps.set(app.name, {
        group: app.group,
        servers: parseServers(app.servers),
        nextServer: previous?.nextServer ?? 0,
        nextTunnel: previous?.nextTunnel ?? 0,
      });
    }
    this.refresh();
  }

  addTarget(target: RouteTarget<S>): void {
    this.#targets.push(target);
    this.refresh();
  }

  removeTarget(target: RouteTarget<S>): void {
    this.#targets = this.#targets.filter((t) => t !== target);
    this.#health.delete(target);
    this.refresh();
  }

  /** The connector's latest health report on `target` (PROTOCOL §5.9): replaces the previous one. */
  setHealth(target: RouteTarget<S>, report: HealthReport): void {
    this.#health.set(target, new Map(report.apps.map((app) => [app.name, app.servers.some((s) => s.healthy)])));
    this.refresh();
  }

  /** Re-evaluates which apps are routable; call after a target's `usable` changed (GO_AWAY). */
  refresh(): void {
    for (const [name, entry] of this.#apps) {
      const routable = this.#candidates(name, entry).length > 0;
      if (this.#routable.get(name) === routable) continue;
      this.#routable.set(name, routable);
      this.#onRoutableChange(name, routable);
    }
  }

  /** Apps whose last health report on `target` had no healthy server. */
  unhealthyApps(target: RouteTarget<S>): string[] {
    return [...(this.#health.get(target) ?? [])].filter(([, healthy]) => !healthy).map(([app]) => app);
  }

  isRoutable(app: string): boolean {
    return this.#routable.get(app) ?? false;
  }

  /** Tunnels that may take a stream for `app` now, in round-robin order of arrival. */
  candidates(app: string): RouteTarget<S>[] {
    const entry = this.#apps.get(app);
    return entry ? this.#candidates(app, entry) : [];
  }

  /** Opens a stream for one user connection of `app`, trying up to `maxAttempts` tunnels. */
  async route(app: string): Promise<RouteResult<S>> {
    const entry = this.#apps.get(app);
    if (!entry) {
      this.counters.unknownApp++;
      return { ok: false, reason: "unknown-app" };
    }
    if (entry.servers.length === 0) {
      this.counters.routeFailed++;
      return { ok: false, reason: "no-server" };
    }
    const start = entry.nextTunnel++;
    const tried = new Set<RouteTarget<S>>();
    let lastError: unknown;
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      // Taken afresh each time: tunnels come and go while an open is in flight.
      const target = nextUntried(this.#candidates(app, entry), start, tried);
      if (!target) break;
      if (attempt > 0) this.counters.retries++;
      tried.add(target);
      const server = entry.servers[entry.nextServer++ % entry.servers.length]!;
      try {
        const stream = await target.open({ app, host: server.host, port: server.port });
        this.counters.opensOk++;
        this.counters.routed++;
        return { ok: true, stream, target };
      } catch (err) {
        lastError = err;
        const code = failureCode(err);
        this.counters.opensFailed[code] = (this.counters.opensFailed[code] ?? 0) + 1;
        if (!RETRYABLE.has(code)) break;
      }
    }
    if (tried.size === 0) {
      this.counters.noTunnel++;
      return { ok: false, reason: "no-tunnel" };
    }
    this.counters.routeFailed++;
    return { ok: false, reason: "failed", error: lastError };
  }

  /**
   * Usable tunnels of the app's group whose connector reports a healthy server for it. When none does,
   * every usable tunnel (PROTOCOL §5.9's fallback, like Envoy's panic routing): a health check can be wrong,
   * and the user then gets the connector's typed failure, counted there, rather than silence.
   */
  #candidates(app: string, entry: AppEntry): RouteTarget<S>[] {
    const usable = this.#targets.filter((t) => t.group === entry.group && t.usable);
    const healthy = usable.filter((t) => this.#health.get(t)?.get(app) ?? true);
    return healthy.length > 0 ? healthy : usable;
  }
}
