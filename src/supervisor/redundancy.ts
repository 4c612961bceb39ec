/**
 * `Redundancy` puts tunnels back on distinct gateways. After a gateway drains (a graceful restart),
 * its slot moves to a gateway another slot already uses; when the drained gateway is back, nothing
 * else would ever move it again and one gateway failure would take every tunnel. While two slots that
 * are up share a gateway and a known gateway is used by no slot, this dials that gateway for one of
 * them, make-before-break: the new tunnel must first stay up for the stable period (it serves what the
 * gateway sends meanwhile), then it takes the slot and the supervisor drains the doubled one. A new
 * tunnel that is drained or closed during that probation counts as a failure, so a gateway that
 * accepts and drains us at once never costs a healthy tunnel. Attempts are spaced by their own
 * backoff with full jitter (5 s → 2 min), never a loop; it starts over only after a quiet spell.
 */
import { describeError } from "../errors.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import { Backoff, type BackoffPolicy } from "../retry/backoff.ts";
import type { ConnectTunnel, Gateway, RedundancyEvent, Slot, TunnelHandle } from "./supervisor-types.ts";

export const REBALANCE_BACKOFF: BackoffPolicy = { baseMs: 5_000, capMs: 120_000 };

export interface RedundancyOptions<T extends TunnelHandle = TunnelHandle> {
  readonly clock: Clock;
  readonly slots: () => readonly Slot<T>[];
  readonly gateways: () => readonly Gateway[];
  /** When each gateway last failed us (shared with the supervisor's choice). */
  readonly failedAt: Map<string, number>;
  readonly connect: ConnectTunnel<T>;
  readonly onEvent: (event: RedundancyEvent) => void;
  /** A tunnel to `gateway` is up for `slot`: hand it over. */
  readonly onMoved: (slot: Slot<T>, gateway: Gateway, tunnel: T) => void;
  /**
   * A tunnel on probation that will not take the slot but may carry streams (the gateway drained it,
   * the connector is stopping, the credentials changed): the supervisor drains it and lets its streams
   * finish like any retired tunnel, instead of cutting the users on it.
   */
  readonly release: (tunnel: T, gateway: Gateway, reason: string) => void;
  /** Changes whenever the tunnels' credentials do (a renewed certificate): a tunnel dialled before is not moved in. */
  readonly credentials?: () => number;
  /** How long a new tunnel must stay up (no GO_AWAY, no close) before it takes the slot. */
  readonly probationMs: number;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

/** Which slot to move where, or undefined when the tunnels are as spread as the gateways allow. */
export function planMove<T extends TunnelHandle>(
  slots: readonly Slot<T>[],
  gateways: readonly Gateway[],
  failedAt: ReadonlyMap<string, number>,
): { slot: Slot<T>; gateway: Gateway } | undefined {
  const used = new Set(slots.filter((s) => s.state !== "down" && s.gateway).map((s) => s.gateway!.id));
  const unused = gateways.filter((g) => !used.has(g.id));
  if (unused.length === 0) return undefined;
  const up = slots.filter((s) => s.state === "up" && s.gateway && s.tunnel);
  const perGateway = new Map<string, number>();
  for (const s of up) perGateway.set(s.gateway!.id, (perGateway.get(s.gateway!.id) ?? 0) + 1);
  const doubled = up.filter((s) => perGateway.get(s.gateway!.id)! >= 2);
  if (doubled.length === 0) return undefined;
  // The idlest doubled tunnel moves (fewest streams to wait for), the highest slot on a tie.
  const slot = doubled.reduce((best, s) => (s.tunnel!.activeStreams() <= best.tunnel!.activeStreams() ? s : best));
  // The gateway that failed longest ago (or never) first.
  const failed = (g: Gateway) => failedAt.get(g.id) ?? -Infinity;
  const gateway = unused.reduce((best, g) => (failed(g) < failed(best) ? g : best));
  return { slot, gateway };
}

/**
 * The plan checked again once the new tunnel has passed probation: meanwhile another slot may have
 * taken `gateway`, or `slot`'s own gateway may no longer be shared; moving then would only churn.
 */
export function spreadMeanwhile<T extends TunnelHandle>(
  slots: readonly Slot<T>[],
  slot: Slot<T>,
  gateway: Gateway,
): boolean {
  const elsewhere = (id: string | undefined) =>
    slots.some((s) => s !== slot && s.state !== "down" && s.gateway?.id === id);
  return elsewhere(gateway.id) || (slot.state === "up" && !elsewhere(slot.gateway?.id));
}

export class Redundancy<T extends TunnelHandle = TunnelHandle> {
  readonly #backoff: Backoff;
  readonly #policy: BackoffPolicy;
  #timer: TimerHandle | undefined;
  /** A dial or a probation is under way. */
  #inFlight = false;
  #probation: { readonly tunnel: T; readonly gateway: Gateway } | undefined;
  #stopped = false;
  #lastAttemptAt = -Infinity;

  constructor(private readonly options: RedundancyOptions<T>) {
    this.#policy = options.backoff ?? REBALANCE_BACKOFF;
    this.#backoff = new Backoff(this.#policy, options.random);
  }

  /** Looks at the slots again (after any slot change): schedules one attempt when a move is due. */
  check(): void {
    if (this.#stopped || this.#inFlight || this.#timer) return;
    const plan = this.#plan();
    if (!plan) return;
    // After a long quiet spell a new imbalance is a new event: start from the short delay again.
    if (this.options.clock.now() - this.#lastAttemptAt >= 2 * this.#policy.capMs) this.#backoff.reset();
    const inMs = this.#backoff.nextDelayMs();
    this.options.onEvent({ type: "rebalance", phase: "scheduled", slot: plan.slot.index, gateway: plan.gateway, inMs });
    this.#timer = this.options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#attempt();
    }, inMs);
  }

  /** Stops moving tunnels; one on probation is drained and released (its streams finish). */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    const probation = this.#probation;
    this.#probation = undefined;
    if (probation) this.options.release(probation.tunnel, probation.gateway, "connector stopping");
  }

  /** Streams on the tunnel on probation (users the gateway already sent there). */
  probationStreams(): number {
    return this.#probation?.tunnel.activeStreams() ?? 0;
  }

  /** The tunnel on probation, if any (it serves what the gateway sends meanwhile). */
  probationTunnel(): T | undefined {
    return this.#probation?.tunnel;
  }

  /** The gateway of the tunnel on probation: in use, for the supervisor's choice of gateway. */
  probationGateway(): string | undefined {
    return this.#probation?.gateway.id;
  }

  #plan() {
    return planMove(this.options.slots(), this.options.gateways(), this.options.failedAt);
  }

  #attempt(): void {
    if (this.#stopped) return;
    const plan = this.#plan(); // things may have changed while we waited
    if (!plan) return;
    const { slot, gateway } = plan;
    this.#inFlight = true;
    this.#lastAttemptAt = this.options.clock.now();
    const credentials = this.options.credentials?.();
    this.options.connect(gateway, slot.index).then(
      (tunnel) => this.#probate(slot, gateway, tunnel, credentials),
      (err: unknown) => this.#failed(slot, gateway, describeError(err)),
    );
  }

  /** Keeps `tunnel` out of the slot until it has stayed up for `probationMs`. */
  #probate(slot: Slot<T>, gateway: Gateway, tunnel: T, credentials: number | undefined): void {
    if (this.#stopped) {
      this.#inFlight = false;
      tunnel.close("connector stopping");
      return;
    }
    const probation = { tunnel, gateway };
    this.#probation = probation;
    let over = false;
    // The gateway may have sent users to it already: a failed move drains it rather than cutting them.
    const fail = (why: string, closed: boolean) => {
      if (over) return;
      over = true;
      timer.cancel();
      if (this.#probation === probation) this.#probation = undefined;
      if (!closed) this.options.release(tunnel, gateway, why);
      this.#failed(slot, gateway, why);
    };
    const timer = this.options.clock.setTimeout(() => {
      if (over || this.#probation !== probation) return; // stopped meanwhile: released by stop()
      over = true;
      this.#probation = undefined;
      this.#inFlight = false;
      if (credentials !== this.options.credentials?.()) {
        this.options.release(tunnel, gateway, "credentials renewed during the move");
        this.check();
        return;
      }
      this.options.onEvent({ type: "rebalance", phase: "moved", slot: slot.index, gateway });
      this.options.onMoved(slot, gateway, tunnel);
      this.check();
    }, this.options.probationMs);
    tunnel.peerDraining?.then(() => fail("gateway drained the new tunnel (GO_AWAY) at once", false));
    void tunnel.closed.then(({ reason }) => fail(`the new tunnel closed at once: ${reason}`, true));
  }

  #failed(slot: Slot<T>, gateway: Gateway, error: string): void {
    this.#inFlight = false;
    if (this.#stopped) return;
    this.options.failedAt.set(gateway.id, this.options.clock.now());
    this.options.onEvent({ type: "rebalance", phase: "failed", slot: slot.index, gateway, error });
    this.check();
  }
}
