/**
 * One reference gateway, as it runs inside its own process (process.ts is the IPC glue): the tunnel
 * endpoint, the router and the user listeners, fed by the cloud process's messages. Everything the
 * gateway knows of the cloud arrives as a message (catalog snapshots, revocations, answers to
 * connector lookups), so a gateway killed with kill -9 and started again rebuilds its state from
 * `init` and the tunnels its connectors bring back.
 */
import type { Logger } from "../../../src/log.ts";
import type { Stream } from "../../../src/mux/stream.ts";
import { CLOSE_FLUSH_MS, CONNECTOR_LOOKUP_TIMEOUT_MS } from "./config.ts";
import type {
  ChildMessage,
  ConnectorInfo,
  GatewayCounters,
  GatewayDescription,
  InitMessage,
  ParentMessage,
} from "./messages.ts";
import { Router } from "./router.ts";
import { TunnelServer } from "./tunnels.ts";
import { UserListeners } from "./users.ts";

export interface GatewayDeps {
  /** Sends a message to the cloud process. */
  readonly send: (message: ChildMessage) => void;
  readonly log: Logger;
}

interface PendingLookup {
  readonly resolve: (info: ConnectorInfo | undefined) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class Gateway {
  readonly #init: InitMessage;
  readonly #deps: GatewayDeps;
  readonly #router: Router<Stream>;
  readonly #users: UserListeners;
  readonly #tunnels: TunnelServer;
  readonly #tunnelCounters = {
    tunnelsAccepted: 0,
    tunnelsRefused: 0,
    tokenUpdates: 0,
    tokenUpdatesRefused: 0,
    tunnelsExpired: 0,
  };
  readonly #lookups = new Map<number, PendingLookup>();
  #nextRequest = 0;

  constructor(init: InitMessage, deps: GatewayDeps) {
    this.#init = init;
    this.#deps = deps;
    this.#router = new Router<Stream>({ onRoutableChange: (app) => this.#users.routableChanged(app) });
    this.#users = new UserListeners({ router: this.#router, onState: deps.send, log: deps.log });
    this.#tunnels = new TunnelServer({
      port: init.tunnelPort,
      tls: { cert: init.tls.certPem, key: init.tls.keyPem, ca: init.tls.caPem },
      tokenPublicKeyPem: init.tokenPublicKeyPem,
      tokenMaxTtlSeconds: init.tokenMaxTtlSeconds,
      lookup: (id) => this.#lookup(id),
      router: this.#router,
      counters: this.#tunnelCounters,
      log: deps.log,
    });
  }

  /** Binds the tunnel port (throws if it cannot) and takes the catalog; returns the tunnel port. */
  start(): number {
    this.#tunnels.refuseVersions(this.#init.refusedVersions);
    const port = this.#tunnels.listen();
    this.#setApps(this.#init.apps, this.#init.appPorts);
    this.#deps.log.info(`gateway ${this.#init.id} listening for tunnels on 127.0.0.1:${port}`);
    return port;
  }

  /** Handles every message of the cloud but `init` and `stop` (see process.ts). */
  handle(message: ParentMessage): void {
    switch (message.type) {
      case "catalog":
        this.#setApps(message.apps, {});
        if (message.changed) this.#tunnels.configChanged(message.changed.group, message.changed.version);
        break;
      case "revoked":
        this.#tunnels.revoke(message.connectorId);
        break;
      case "lookupResult":
        this.#settleLookup(message.reqId, message.connector ?? undefined);
        break;
      case "hold":
        this.#users.hold(message.app, message.port);
        break;
      case "release":
        this.#users.release(message.app);
        break;
      case "describe":
        this.#deps.send({ type: "description", reqId: message.reqId, description: this.describe() });
        break;
      case "refuseVersions":
        this.#tunnels.refuseVersions(message.versions);
        this.#deps.send({ type: "ack", reqId: message.reqId });
        break;
      case "init":
      case "stop":
        break;
    }
  }

  describe(): GatewayDescription {
    return {
      tunnels: this.#tunnels.tunnels.map((t) => t.info()),
      counters: this.counters(),
      apps: this.#users.describe(),
    };
  }

  counters(): GatewayCounters {
    const r = this.#router.counters;
    return { ...this.#users.counters, ...r, opensFailed: { ...r.opensFailed }, ...this.#tunnelCounters };
  }

  /**
   * Graceful stop (PROTOCOL §5.7): no new tunnels or users, GO_AWAY on every tunnel, then up to `graceMs` for
   * open user connections to finish, then every tunnel is closed (waiting briefly for the close
   * handshakes, so connectors see a clean 1001 rather than a dropped connection).
   */
  async stop(graceMs: number): Promise<void> {
    this.#tunnels.drain();
    this.#users.closeListeners();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.#users.whenIdle(), graceOver]);
    clearTimeout(timer);
    this.#tunnels.close();
    await this.#tunnels.whenClosed(CLOSE_FLUSH_MS);
    for (const id of [...this.#lookups.keys()]) this.#settleLookup(id, undefined);
  }

  #setApps(apps: InitMessage["apps"], knownPorts: Readonly<Record<string, number>>): void {
    this.#users.setApps(
      apps.map((a) => a.name),
      knownPorts,
    );
    this.#router.setApps(apps);
  }

  #lookup(connectorId: string): Promise<ConnectorInfo | undefined> {
    const reqId = this.#nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#lookups.delete(reqId);
        reject(new Error(`no answer about connector ${connectorId} within ${CONNECTOR_LOOKUP_TIMEOUT_MS} ms`));
      }, CONNECTOR_LOOKUP_TIMEOUT_MS);
      this.#lookups.set(reqId, { resolve, timer });
      this.#deps.send({ type: "lookup", reqId, connectorId });
    });
  }

  #settleLookup(reqId: number, info: ConnectorInfo | undefined): void {
    const pending = this.#lookups.get(reqId);
    if (!pending) return;
    this.#lookups.delete(reqId);
    clearTimeout(pending.timer);
    pending.resolve(info);
  }
}
