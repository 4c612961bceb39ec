/**
 * What status needs to remember about tunnels beyond their current state: per slot, why the last
 * attempt failed and when it dials again; over the daemon's life, connects, reconnects and failures by
 * reason. Fed by tunnel events (events.ts); every known reason starts at 0 so a scraper sees the
 * series before the first failure.
 */
import {
  CONNECT_FAILURE_REASONS,
  DISCONNECT_REASONS,
  type ConnectFailureReason,
  type DisconnectReason,
} from "../supervisor/down-reason.ts";
import type { TunnelCounters } from "../status/schema.ts";
import type { TunnelStateEvent } from "./events.ts";

export interface SlotHistory {
  lastError?: { code: string; message: string; after: "connect" | "up"; at: string };
  retryAt?: string;
  /** Failed attempts since the slot was last up. */
  failures: number;
}

/** Status shows at most this much of a failure message: it may come from a hostile gateway. */
const MAX_MESSAGE = 1024;

function zeroed<K extends string>(keys: Record<K, string>): Record<K, number> {
  return Object.fromEntries(Object.keys(keys).map((k) => [k, 0])) as Record<K, number>;
}

export class TunnelHistory {
  readonly #slots: SlotHistory[] = [];
  #connects = 0;
  #reconnects = 0;
  readonly #connectFailures = zeroed(CONNECT_FAILURE_REASONS);
  readonly #disconnects = zeroed(DISCONNECT_REASONS);

  on(event: TunnelStateEvent): void {
    const slot = this.#slots[event.slot] ?? { failures: 0 };
    this.#slots[event.slot] = slot;
    if (event.state === "up") {
      this.#connects++;
      // Whether it is a reconnect is the event's to say (tunnel-events.ts knows each slot's past).
      if (event.reconnect) this.#reconnects++;
      slot.failures = 0;
      slot.lastError = undefined;
      slot.retryAt = undefined;
      return;
    }
    if (event.state === "connecting") {
      slot.retryAt = undefined;
      return;
    }
    if (event.code === undefined) return;
    if (event.after === "up") {
      if (event.code in this.#disconnects) this.#disconnects[event.code as DisconnectReason]++;
    } else if (event.code in this.#connectFailures) {
      this.#connectFailures[event.code as ConnectFailureReason]++;
    }
    slot.failures++;
    slot.lastError = {
      code: event.code,
      message: (event.error ?? "").slice(0, MAX_MESSAGE),
      after: event.after ?? "connect",
      at: event.at.toISOString(),
    };
    slot.retryAt = event.retryAt?.toISOString();
  }

  slot(index: number): SlotHistory | undefined {
    return this.#slots[index];
  }

  counters(): TunnelCounters {
    return {
      connects: this.#connects,
      reconnects: this.#reconnects,
      connectFailures: { ...this.#connectFailures },
      disconnects: { ...this.#disconnects },
    };
  }
}
