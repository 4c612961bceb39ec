/**
 * `UserPorts` is the cloud process's book of the apps' user ports: which port each app has, what each
 * gateway last said about it (can it route the app, is it listening), and the `hold` / `release`
 * instructions that follow from listen-policy.ts. A new app's port is chosen by exactly one gateway
 * (told to hold port 0); once reported it is fixed for as long as the app exists.
 */
import type { Logger } from "../../../src/log.ts";
import { planListeners } from "./listen-policy.ts";
import type { ListenState, ParentMessage } from "./messages.ts";

export interface UserPortsDeps {
  /** The gateways in order, and whether each is up and ready for instructions. */
  readonly gateways: () => readonly { readonly id: string; readonly alive: boolean }[];
  readonly send: (gatewayId: string, message: ParentMessage) => void;
  readonly log: Logger;
}

type Reported = { routable: boolean; listening: boolean };

export class UserPorts {
  readonly #deps: UserPortsDeps;
  readonly #apps = new Set<string>();
  readonly #ports = new Map<string, number>();
  /** app → gateway id → what that gateway last reported. */
  readonly #reported = new Map<string, Map<string, Reported>>();
  /** app → the gateway told to bind port 0 for it, until its port is known: only one may choose. */
  readonly #choosing = new Map<string, string>();
  readonly #waiters = new Map<string, (() => void)[]>();
  #frozen = false;

  constructor(deps: UserPortsDeps) {
    this.#deps = deps;
  }

  /** The apps of the catalog now: new ones get a port, removed ones are forgotten (with their port). */
  setApps(names: readonly string[]): void {
    const next = new Set(names);
    for (const name of this.#apps) {
      if (next.has(name)) continue;
      this.#apps.delete(name);
      this.#ports.delete(name);
      this.#reported.delete(name);
      this.#choosing.delete(name);
      this.#wake(name);
    }
    for (const name of names) {
      if (this.#apps.has(name)) continue;
      this.#apps.add(name);
      this.reconcile(name);
    }
  }

  /** Known ports by app, for a starting gateway. */
  known(): Record<string, number> {
    return Object.fromEntries(this.#ports);
  }

  address(app: string): string | null {
    const port = this.#ports.get(app);
    return port === undefined ? null : `127.0.0.1:${port}`;
  }

  /** The app's address once its port is known; null if the app goes away or `timeoutMs` passes. */
  async waitAddress(app: string, timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.address(app) === null && this.#apps.has(app) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        const waiters = this.#waiters.get(app) ?? [];
        waiters.push(() => (clearTimeout(timer), resolve()));
        this.#waiters.set(app, waiters);
      });
    }
    return this.address(app);
  }

  /** A gateway's report about one app. */
  reported(gatewayId: string, state: ListenState): void {
    if (!this.#apps.has(state.app)) return;
    if (state.error) this.#deps.log.warn(`gateway ${gatewayId} cannot listen for ${state.app}: ${state.error}`);
    const byGateway = this.#reported.get(state.app) ?? new Map<string, Reported>();
    byGateway.set(gatewayId, { routable: state.routable, listening: state.listening });
    this.#reported.set(state.app, byGateway);
    if (state.listening && state.port !== null) this.#learn(gatewayId, state.app, state.port);
    this.reconcile(state.app);
  }

  /** A gateway exited: it listens for nothing any more; someone else may have to hold its ports. */
  gatewayGone(gatewayId: string): void {
    for (const byGateway of this.#reported.values()) byGateway.delete(gatewayId);
    this.reconcileAll();
  }

  /** No more instructions (the cloud is stopping). */
  freeze(): void {
    this.#frozen = true;
  }

  reconcileAll(): void {
    for (const app of this.#apps) this.reconcile(app);
  }

  /** Sends the instructions that move `app`'s listeners towards the policy. */
  reconcile(app: string): void {
    if (this.#frozen || !this.#apps.has(app)) return;
    const byGateway = this.#reported.get(app);
    const views = this.#deps
      .gateways()
      .map((g) => ({ ...g, ...(byGateway?.get(g.id) ?? { routable: false, listening: false }) }));
    const port = this.#ports.get(app);
    const chooser = this.#choosing.get(app);
    if (port === undefined && chooser !== undefined && views.some((v) => v.id === chooser && v.alive)) return;
    for (const { gateway, action } of planListeners(views, port !== undefined)) {
      if (action === "hold" && port === undefined) this.#choosing.set(app, gateway);
      this.#deps.send(gateway, action === "hold" ? { type: "hold", app, port: port ?? 0 } : { type: "release", app });
    }
  }

  #learn(gatewayId: string, app: string, port: number): void {
    const known = this.#ports.get(app);
    if (known === undefined) {
      this.#ports.set(app, port);
      this.#choosing.delete(app);
      this.#wake(app);
    } else if (known !== port) {
      this.#deps.log.warn(`gateway ${gatewayId} listens for ${app} on ${port}, not on its port ${known}`);
    }
  }

  #wake(app: string): void {
    for (const wake of this.#waiters.get(app) ?? []) wake();
    this.#waiters.delete(app);
  }
}
