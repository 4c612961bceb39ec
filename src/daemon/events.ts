/**
 * The daemon's one event stream: what happened, once, in order. Status (status-model.ts), the metrics
 * (read from status) and the logs (event-log.ts) all subscribe to it, so a tunnel that goes down is
 * counted, shown with its reason and logged from the same event and none of them can drift from the
 * others. Events are facts, not commands: a subscriber that throws is reported and the others still
 * hear the event.
 */
import type { DownReason } from "../supervisor/down-reason.ts";
import type { RedundancyEvent } from "../supervisor/supervisor-types.ts";

/** A tunnel slot changed state. `at` is wall time (status shows it; logs carry it). */
export interface TunnelStateEvent {
  readonly type: "tunnel";
  readonly slot: number;
  readonly gateway: string;
  readonly state: "connecting" | "up" | "down";
  readonly at: Date;
  /** Up: the slot had been up before (a reconnect, not the first connect). */
  readonly reconnect?: boolean;
  /** Down: why, as a stable code and in words; `after` says whether the dial failed or the tunnel was up. */
  readonly code?: DownReason;
  readonly error?: string;
  readonly after?: "connect" | "up";
  /** Down: when the slot dials again (absent while the daemon stops). */
  readonly retryAt?: Date;
  readonly retryInMs?: number;
  /** The daemon is stopping: tunnels going down is expected. */
  readonly stopping: boolean;
}

/** One app server's health check changed result (logged once per transition). */
export interface AppHealthEvent {
  readonly type: "app-health";
  readonly app: string;
  readonly server: string;
  readonly healthy: boolean;
  /** Unhealthy: why the check failed. */
  readonly detail?: string;
}

/**
 * The app catalog was fetched (or could not be). `during`: the first fetch at start (retried until a
 * catalog comes) or a later refresh (CONFIG_CHANGED, the poll), which keeps the current one on failure.
 */
export type CatalogEvent =
  | {
      readonly type: "catalog";
      readonly ok: true;
      readonly during: "start" | "refresh";
      readonly source: "control-plane" | "stored";
      readonly version: string;
      /** A version not served before (false: the control plane answered "not modified"). */
      readonly changed: boolean;
      /** Changed: how many apps it lists. */
      readonly apps?: number;
      /** Stored (the control plane unreachable at start): when it was served, and why it was not asked. */
      readonly fetchedAt?: Date;
      readonly ageSeconds?: number;
      readonly code?: string;
      readonly error?: string;
    }
  | {
      readonly type: "catalog";
      readonly ok: false;
      readonly during: "start" | "refresh";
      readonly code: string;
      readonly error: string;
      /** The control plane said this connector is revoked (revocation.ts says what that means). */
      readonly revoked: boolean;
      /** At start: the next try comes in this long. */
      readonly retryInMs?: number;
    };

/** The certificate was renewed, or a renewal failed and is retried. */
export type RenewalEvent =
  | { readonly type: "renewal"; readonly ok: true; readonly notAfter: Date }
  | {
      readonly type: "renewal";
      readonly ok: false;
      readonly code: string;
      readonly error: string;
      /** The current certificate's end; `expired`: it is past, tunnels fail until a renewal or a new enrollment. */
      readonly notAfter: Date;
      readonly expired: boolean;
      readonly retryAt: Date;
    };

/** A stream the gateway asked for could not be opened (refused, unreachable, not allowed, busy…). */
export interface OpenFailedEvent {
  readonly type: "open-failed";
  /** docs/PROTOCOL.md stream code name: NOT_ALLOWED, REFUSED, TIMEOUT, BUSY… */
  readonly code: string;
  readonly app?: string;
}

/** Tunnels share a gateway while another is unused: one is moved back (scheduled, moved, failed). */
export type RebalanceEvent = DistributiveOmit<RedundancyEvent, "gateway"> & { readonly gateway: string };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export type DaemonEvent =
  | TunnelStateEvent
  | RebalanceEvent
  | AppHealthEvent
  | CatalogEvent
  | RenewalEvent
  | OpenFailedEvent;
export type DaemonEventListener = (event: DaemonEvent) => void;

export class DaemonEvents {
  readonly #listeners = new Set<DaemonEventListener>();

  /** `onListenerError`: where a subscriber's exception goes (the log); it never reaches the emitter. */
  constructor(private readonly onListenerError: (err: unknown, event: DaemonEvent) => void = () => {}) {}

  /** Hears every event from now on; returns the function that stops it. */
  subscribe(listener: DaemonEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: DaemonEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }
}
