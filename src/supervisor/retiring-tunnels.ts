/**
 * `RetiringTunnels` holds the tunnels that left their slot but may still carry streams: drained by the
 * gateway (its GO_AWAY), or by us (a renewed certificate, a move back to a distinct gateway). The
 * connector closes each one itself rather than wait for the gateway (a hostile one never would):
 * once it has no open stream — looked at first after `settleMs` (an OPEN the gateway sent before it
 * saw or sent GO_AWAY may still be in flight), then as soon as its last stream ends (`idle()`, an
 * event, not a timer) — and at the latest when its grace runs out. A gateway
 * that drains every tunnel at once cannot make them pile up: past `max`, the idlest (then oldest) is
 * closed at once, so retiring tunnels and their sockets stay bounded.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { TunnelHandle } from "./supervisor-types.ts";

interface Entry {
  readonly since: number;
  readonly deadline: number;
  readonly reason: string;
  settle?: TimerHandle;
  deadlineTimer?: TimerHandle;
}

export interface RetiringOptions {
  readonly clock: Clock;
  /** Most retiring tunnels kept open at once. */
  readonly max: number;
  /** Wait before the first look for open streams (an OPEN may still be on its way). */
  readonly settleMs: number;
}

export class RetiringTunnels {
  readonly #entries = new Map<TunnelHandle, Entry>();

  constructor(private readonly options: RetiringOptions) {}

  get size(): number {
    return this.#entries.size;
  }

  has(tunnel: TunnelHandle): boolean {
    return this.#entries.has(tunnel);
  }

  /** The tunnels still retiring. */
  tunnels(): TunnelHandle[] {
    return [...this.#entries.keys()];
  }

  activeStreams(): number {
    let sum = 0;
    for (const tunnel of this.#entries.keys()) sum += tunnel.activeStreams();
    return sum;
  }

  /**
   * Takes `tunnel` in: closed with `reason` once idle, or when `graceMs` is up. Returns the tunnels
   * closed now to respect the cap (the idlest, oldest first).
   */
  add(tunnel: TunnelHandle, graceMs: number, reason: string): TunnelHandle[] {
    if (this.#entries.has(tunnel)) return [];
    const now = this.options.clock.now();
    const entry: Entry = { since: now, deadline: now + graceMs, reason };
    this.#entries.set(tunnel, entry);
    void tunnel.closed.then(() => this.#forget(tunnel));
    this.#schedule(tunnel, entry);
    const evicted: TunnelHandle[] = [];
    while (this.#entries.size > this.options.max) {
      const victim = this.#idlest();
      this.#close(victim, "too many draining tunnels: closing the idlest");
      evicted.push(victim);
    }
    return evicted;
  }

  /** Closes every retiring tunnel now (connector stopping). */
  closeAll(reason: string): void {
    for (const tunnel of [...this.#entries.keys()]) this.#close(tunnel, reason);
  }

  #schedule(tunnel: TunnelHandle, entry: Entry): void {
    const { clock } = this.options;
    const close = () => {
      if (this.#entries.get(tunnel) === entry) this.#close(tunnel, entry.reason);
    };
    entry.deadlineTimer = clock.setTimeout(close, Math.max(0, entry.deadline - clock.now()));
    entry.settle = clock.setTimeout(() => void tunnel.idle().then(close), this.options.settleMs);
  }

  #idlest(): TunnelHandle {
    let best: TunnelHandle | undefined;
    let bestStreams = Infinity;
    // Map order is insertion order: on a tie the oldest wins.
    for (const tunnel of this.#entries.keys()) {
      const streams = tunnel.activeStreams();
      if (streams < bestStreams) {
        best = tunnel;
        bestStreams = streams;
      }
    }
    return best!;
  }

  #close(tunnel: TunnelHandle, reason: string): void {
    this.#forget(tunnel);
    tunnel.close(reason);
  }

  #forget(tunnel: TunnelHandle): void {
    const entry = this.#entries.get(tunnel);
    entry?.settle?.cancel();
    entry?.deadlineTimer?.cancel();
    this.#entries.delete(tunnel);
  }
}
