/**
 * The daemon's tunnels: at most one `Supervisor` at a time (none before start-up is done and none
 * while the connector is revoked), which alone knows the live tunnels. Everything else asks through
 * here (`upCount`, `tunnels`, `current`) or listens (`subscribe`): the events of whichever supervisor
 * is current, so a wait started before a revocation still hears the supervisor started after it.
 */
import type { Supervisor, SupervisorEvent } from "../supervisor/supervisor.ts";
import type { Tunnel } from "../supervisor/connection.ts";

export type TunnelEvent = SupervisorEvent<Tunnel>;
export type TunnelListener = (event: TunnelEvent) => void;

export class LiveTunnels {
  #current: Supervisor<Tunnel> | undefined;
  readonly #listeners = new Set<TunnelListener>();

  /** `create` builds a supervisor that reports its events to `onEvent`; it is started here. */
  constructor(private readonly create: (onEvent: TunnelListener) => Supervisor<Tunnel>) {}

  /** The supervisor serving now, if any. */
  get current(): Supervisor<Tunnel> | undefined {
    return this.#current;
  }

  get running(): boolean {
    return this.#current !== undefined;
  }

  /** Starts a supervisor unless one runs. */
  start(): void {
    if (this.#current) return;
    const supervisor = this.create((event) => this.#emit(event));
    this.#current = supervisor;
    supervisor.start();
  }

  /** Closes every tunnel now; a later `start` begins afresh. */
  stop(reason?: string): void {
    const supervisor = this.#current;
    this.#current = undefined;
    supervisor?.stop(reason);
  }

  upCount(): number {
    return this.#current?.upCount() ?? 0;
  }

  /** The tunnels serving the slots now. */
  tunnels(): Tunnel[] {
    return [...(this.#current?.tunnels().values() ?? [])];
  }

  /** Hears every supervisor event from now on; returns the function that stops it. */
  subscribe(listener: TunnelListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: TunnelEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
  }
}
