/**
 * `Supervisor` keeps N tunnels up (§3), like cloudflared's supervisor: it owns no sockets, only
 * decides when and where each tunnel slot (re)connects, and reports state changes as events.
 *
 * Gateway choice: a slot connects to a gateway that no other slot is using when there is one; among
 * those it prefers gateways that have not failed recently. With two gateways and two slots, a slot whose
 * gateway died therefore keeps retrying that gateway (with backoff) rather than doubling up on the
 * surviving one, so a restarted gateway gets its tunnel back within one backoff period; with more
 * gateways than slots it moves to another gateway at once.
 * Retries: exponential backoff with full jitter per slot (1 s → 60 s); a tunnel that stayed up for
 * `stableAfterMs` resets its slot's backoff, so a gateway that accepts and then drops us at once
 * cannot make us reconnect in a tight loop.
 */
import { describeError } from "../errors.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import type { Gateway } from "../control/api.ts";
import { Backoff, TUNNEL_BACKOFF, type BackoffPolicy } from "./backoff.ts";

/** One live tunnel as the supervisor sees it. */
export interface TunnelHandle {
  /** Resolves once when the tunnel is gone, with why. */
  readonly closed: Promise<{ reason: string }>;
  /** Tell the gateway to route no new streams here (GO_AWAY); existing streams continue. */
  drain(): void;
  /** Number of streams still open (for graceful stop). */
  activeStreams(): number;
  /** Close now. */
  close(reason: string): void;
}

export type ConnectTunnel = (gateway: Gateway, slot: number) => Promise<TunnelHandle>;

export type SlotState = "connecting" | "up" | "down";

export type SupervisorEvent =
  | { type: "slot"; slot: number; state: SlotState; gateway: Gateway; since: Date; error?: string; retryInMs?: number }
  | { type: "stopped" };

export interface SupervisorOptions {
  gateways: readonly Gateway[];
  tunnels: number;
  connect: ConnectTunnel;
  clock: Clock;
  onEvent: (event: SupervisorEvent) => void;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** A gateway that failed within this window is avoided when another is available. */
  failurePenaltyMs?: number;
  stableAfterMs?: number;
}

interface Slot {
  index: number;
  state: SlotState;
  gateway?: Gateway;
  tunnel?: TunnelHandle;
  backoff: Backoff;
  timer?: TimerHandle;
  upAt?: number;
}

/** How often a replaced tunnel is checked for open streams before it is closed. */
const REPLACE_POLL_MS = 1_000;

export class Supervisor {
  readonly #slots: Slot[];
  readonly #failedAt = new Map<string, number>();
  /** Tunnels whose gateway sent GO_AWAY: still finishing their streams, no longer in a slot. */
  readonly #retiring = new Set<TunnelHandle>();
  #gateways: readonly Gateway[];
  #stopping = false;

  constructor(private readonly options: SupervisorOptions) {
    if (options.gateways.length === 0) throw new Error("Supervisor needs at least one gateway");
    this.#gateways = options.gateways;
    this.#slots = Array.from({ length: options.tunnels }, (_, index) => ({
      index,
      state: "down" as SlotState,
      backoff: new Backoff(options.backoff ?? TUNNEL_BACKOFF, options.random),
    }));
  }

  start(): void {
    for (const slot of this.#slots) this.#connect(slot);
  }


  /** Tunnels currently up. */
  upCount(): number {
    return this.#slots.filter((s) => s.state === "up").length;
  }

  activeStreams(): number {
    let sum = 0;
    for (const tunnel of this.#retiring) sum += tunnel.activeStreams();
    return this.#slots.reduce((total, s) => total + (s.tunnel?.activeStreams() ?? 0), sum);
  }

  /**
   * The gateway of `slot` sent GO_AWAY (§5.7): its tunnel keeps serving the streams it has until the
   * gateway closes it, and the slot reconnects now, to another gateway when there is one, so capacity
   * does not shrink during a gateway's rolling restart.
   */
  retire(slot: number, tunnel: TunnelHandle): void {
    const s = this.#slots[slot];
    if (!s || s.tunnel !== tunnel || this.#stopping) return;
    s.tunnel = undefined;
    s.state = "down";
    this.#failedAt.set(s.gateway!.id, this.options.clock.now());
    this.#retiring.add(tunnel);
    void tunnel.closed.then(() => this.#retiring.delete(tunnel));
    this.#emit(s, { error: "gateway draining (GO_AWAY)" });
    this.#connect(s, s.gateway!.id);
  }

  /** The control plane sent a new gateway list (certificate renewal): later connects choose from it. */
  setGateways(gateways: readonly Gateway[]): void {
    if (gateways.length > 0) this.#gateways = gateways;
  }

  /**
   * Moves `slot` onto a fresh tunnel because the connector's credentials changed (a renewed
   * certificate): the slot dials again now, and `tunnel` is told to drain (GO_AWAY: the gateway routes
   * no new stream to it), then closed once its streams are done, or after `graceMs`. Returns false
   * when `tunnel` is no longer the slot's.
   */
  replace(slot: number, tunnel: TunnelHandle, graceMs: number): boolean {
    const s = this.#slots[slot];
    if (!s || s.tunnel !== tunnel || this.#stopping) return false;
    s.tunnel = undefined;
    this.#retiring.add(tunnel);
    void tunnel.closed.then(() => this.#retiring.delete(tunnel));
    tunnel.drain();
    const deadline = this.options.clock.now() + graceMs;
    const closeWhenIdle = () => {
      if (!this.#retiring.has(tunnel)) return;
      if (tunnel.activeStreams() === 0 || this.options.clock.now() >= deadline) tunnel.close("moved to a renewed certificate");
      else this.options.clock.setTimeout(closeWhenIdle, REPLACE_POLL_MS);
    };
    // The first look waits a little: an OPEN the gateway sent before it saw GO_AWAY may still be in flight.
    this.options.clock.setTimeout(closeWhenIdle, REPLACE_POLL_MS);
    this.#connect(s);
    return true;
  }

  /** Whether `slot` has a tunnel up. */
  isUp(slot: number): boolean {
    return this.#slots[slot]?.state === "up";
  }

  /** Graceful stop, first half: no reconnects, GO_AWAY on every tunnel. */
  drain(): void {
    this.#stopping = true;
    for (const slot of this.#slots) {
      slot.timer?.cancel();
      slot.tunnel?.drain();
    }
  }

  /** Closes every tunnel now. */
  stop(reason = "connector stopping"): void {
    this.drain();
    for (const slot of this.#slots) slot.tunnel?.close(reason);
    for (const tunnel of this.#retiring) tunnel.close(reason);
    this.options.onEvent({ type: "stopped" });
  }

  /**
   * Picks a gateway for `slot`: unused by other slots first, then not recently failed, then least
   * recently failed. `avoid` (a draining gateway) is left out whenever there is another one.
   */
  #chooseGateway(slot: Slot, avoid?: string): Gateway {
    const inUse = new Set(
      this.#slots.filter((s) => s !== slot && s.state !== "down" && s.gateway).map((s) => s.gateway!.id),
    );
    const others = this.#gateways.filter((g) => g.id !== avoid);
    const candidates = others.length > 0 ? others : this.#gateways;
    const free = candidates.filter((g) => !inUse.has(g.id));
    const pool = free.length > 0 ? free : [...candidates];
    const now = this.options.clock.now();
    const penalty = this.options.failurePenaltyMs ?? TUNNEL_BACKOFF.capMs;
    const healthy = pool.filter((g) => now - (this.#failedAt.get(g.id) ?? -Infinity) >= penalty);
    if (healthy.length > 0) {
      // Spread slots: start from the slot's own index so slot 0 and 1 begin on different gateways.
      return healthy[slot.index % healthy.length]!;
    }
    return pool.reduce((best, g) => ((this.#failedAt.get(g.id) ?? 0) < (this.#failedAt.get(best.id) ?? 0) ? g : best));
  }

  #emit(slot: Slot, extra: { error?: string; retryInMs?: number } = {}): void {
    this.options.onEvent({
      type: "slot",
      slot: slot.index,
      state: slot.state,
      gateway: slot.gateway!,
      since: this.options.clock.wallNow(),
      ...extra,
    });
  }

  /** `avoid`: a gateway that is draining; another one is taken even if a second slot already uses it. */
  #connect(slot: Slot, avoid?: string): void {
    if (this.#stopping) return;
    slot.gateway = this.#chooseGateway(slot, avoid);
    slot.state = "connecting";
    this.#emit(slot);
    const gateway = slot.gateway;
    this.options.connect(gateway, slot.index).then(
      (tunnel) => this.#onUp(slot, tunnel),
      (err: unknown) => this.#onDown(slot, gateway, describeError(err)),
    );
  }

  #onUp(slot: Slot, tunnel: TunnelHandle): void {
    if (this.#stopping) {
      tunnel.close("connector stopping");
      return;
    }
    slot.tunnel = tunnel;
    slot.state = "up";
    slot.upAt = this.options.clock.now();
    this.#emit(slot);
    const gateway = slot.gateway!;
    tunnel.closed.then(({ reason }) => {
      if (slot.tunnel !== tunnel) return; // retired: the slot has moved on
      slot.tunnel = undefined;
      const stable = this.options.clock.now() - (slot.upAt ?? 0) >= (this.options.stableAfterMs ?? 10_000);
      if (stable) slot.backoff.reset();
      this.#onDown(slot, gateway, reason);
    });
  }

  #onDown(slot: Slot, gateway: Gateway, error: string): void {
    slot.state = "down";
    this.#failedAt.set(gateway.id, this.options.clock.now());
    if (this.#stopping) {
      this.#emit(slot, { error });
      return;
    }
    const delay = slot.backoff.nextDelayMs();
    this.#emit(slot, { error, retryInMs: delay });
    slot.timer = this.options.clock.setTimeout(() => this.#connect(slot), delay);
  }
}
