/**
 * `Supervisor` keeps N tunnels up, like cloudflared's supervisor: it owns no sockets, only
 * decides when and where each tunnel slot (re)connects, and reports state changes as events.
 *
 * Gateway choice (gateway-choice.ts): a gateway no other slot uses, preferring those that have not
 * failed recently, so with two gateways and two slots a slot whose gateway died keeps retrying it
 * rather than doubling up on the survivor. When slots do end up sharing a gateway while another known
 * gateway is unused (a drained gateway came back), `Redundancy` moves one back.
 * Retries: exponential backoff with full jitter per slot (1 s → 60 s); a tunnel that stayed up for
 * `stableAfterMs` resets its slot's backoff, so a gateway that accepts and then drops us at once
 * cannot make us reconnect in a tight loop. An early GO_AWAY counts as such a failure too.
 * Drained tunnels are closed by us once idle (`RetiringTunnels`), and never more than 2× N stay open.
 *
 * It is the one owner of the live tunnels: the daemon asks it (`tunnel`, `tunnels`, `upCount`,
 * `activeStreams`, `idle`) or listens (`onEvent`) rather than keep a slot → tunnel map of its own.
 */
import { describeError } from "../errors.ts";
import { Backoff, TUNNEL_BACKOFF } from "../retry/backoff.ts";
import { RetiringTunnels } from "./retiring-tunnels.ts";
import { Redundancy, spreadMeanwhile } from "./redundancy.ts";
import { chooseGateway } from "./gateway-choice.ts";
import type { Gateway, Slot, SlotState, SupervisorOptions, TunnelHandle } from "./supervisor-types.ts";
import { connectFailureReason, type DownReason } from "./down-reason.ts";

export type { ConnectTunnel, SlotState, SupervisorEvent, SupervisorOptions, TunnelHandle } from "./supervisor-types.ts";

/** A retiring tunnel is first looked at this long after it left its slot (an OPEN may be on its way). */
const RETIRE_MS = 1_000;
/** A drained tunnel whose streams never end is closed after this long. */
const DRAINED_GRACE_MS = 10 * 60_000;
const STABLE_AFTER_MS = 10_000;

export class Supervisor<T extends TunnelHandle = TunnelHandle> {
  readonly #slots: Slot<T>[];
  readonly #failedAt = new Map<string, number>();
  /** Tunnels drained (by the gateway or by us): still finishing their streams, no longer in a slot. */
  readonly #retiring: RetiringTunnels;
  readonly #redundancy: Redundancy<T>;
  #gateways: readonly Gateway[];
  #stopping = false;
  /** Counts credential changes (`replace`), so a tunnel dialled before one is not moved into a slot. */
  #credentials = 0;

  constructor(private readonly options: SupervisorOptions<T>) {
    if (options.gateways.length === 0) throw new Error("Supervisor needs at least one gateway");
    this.#gateways = options.gateways;
    this.#slots = Array.from({ length: options.tunnels }, (_, index) => ({
      index,
      state: "down" as SlotState,
      backoff: new Backoff(options.backoff ?? TUNNEL_BACKOFF, options.random),
    }));
    this.#retiring = new RetiringTunnels({ clock: options.clock, max: 2 * options.tunnels, settleMs: RETIRE_MS });
    this.#redundancy = new Redundancy({
      clock: options.clock,
      slots: () => this.#slots,
      gateways: () => this.#gateways,
      failedAt: this.#failedAt,
      connect: options.connect,
      onEvent: options.onEvent,
      onMoved: (slot, gateway, tunnel) => this.#onMoved(slot, gateway, tunnel),
      release: (tunnel, _gateway, reason) => this.#release(tunnel, reason),
      credentials: () => this.#credentials,
      probationMs: options.stableAfterMs ?? STABLE_AFTER_MS,
      ...(options.rebalanceBackoff ? { backoff: options.rebalanceBackoff } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
  }

  start(): void {
    for (const slot of this.#slots) this.#connect(slot);
  }

  /** Tunnels currently up. */
  upCount(): number {
    return this.#slots.filter((s) => s.state === "up").length;
  }

  /** The tunnel serving `slot` now, if any. */
  tunnel(slot: number): T | undefined {
    return this.#slots[slot]?.tunnel;
  }

  /** The tunnels serving the slots now, by slot (a copy: it does not follow later changes). */
  tunnels(): ReadonlyMap<number, T> {
    const out = new Map<number, T>();
    for (const s of this.#slots) if (s.tunnel) out.set(s.index, s.tunnel);
    return out;
  }

  /** True once `drain` or `stop` was called: nothing reconnects any more. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Streams open on every tunnel: the slots', the retiring ones' and the one on probation. */
  activeStreams(): number {
    const others = this.#retiring.activeStreams() + this.#redundancy.probationStreams();
    return this.#slots.reduce((total, s) => total + (s.tunnel?.activeStreams() ?? 0), others);
  }

  /**
   * Resolves once every tunnel held now is idle (see `TunnelHandle.idle`). After `drain` no tunnel is
   * added and none takes new streams, so a graceful stop waits on this instead of counting on a timer.
   */
  async idle(): Promise<void> {
    const held: (TunnelHandle | undefined)[] = [...this.#slots.map((s) => s.tunnel), ...this.#retiring.tunnels()];
    await Promise.all([...held, this.#redundancy.probationTunnel()].map((t) => t?.idle()));
  }

  /** Tunnels out of their slot that are still open (drained, finishing streams). */
  retiringCount(): number {
    return this.#retiring.size;
  }

  /**
   * The gateway of `slot` sent GO_AWAY (docs/PROTOCOL.md §5.7): its tunnel keeps serving the streams
   * it has, and we close it once they are done (or after `drainedGraceMs`). The slot reconnects, to
   * another gateway when there is one: at once after a tunnel that was stable, so capacity does not
   * shrink during a rolling restart; after the slot's backoff when the GO_AWAY came early, so a
   * gateway that drains every tunnel right after the upgrade cannot make us dial in a loop.
   */
  retire(slot: number, tunnel: T): void {
    const s = this.#slots[slot];
    if (!s || s.tunnel !== tunnel || this.#stopping) return;
    const gateway = s.gateway!;
    const stable = this.#stable(s);
    s.tunnel = undefined;
    s.state = "down";
    this.#failedAt.set(gateway.id, this.options.clock.now());
    this.#retireTunnel(s, tunnel, gateway, this.#drainedGraceMs(), "gateway drained this tunnel");
    if (stable) {
      s.backoff.reset();
      this.#emit(s, { error: "gateway draining (GO_AWAY)", code: "GATEWAY_DRAINING", after: "up" });
      this.#connect(s, gateway.id);
      return;
    }
    const delay = s.backoff.nextDelayMs();
    this.#emit(s, {
      error: "gateway draining (GO_AWAY) soon after the upgrade",
      code: "GATEWAY_DRAINING",
      after: "up",
      retryInMs: delay,
    });
    s.timer = this.options.clock.setTimeout(() => this.#connect(s, gateway.id), delay);
    this.#redundancy.check();
  }

  /** The control plane sent a new gateway list (certificate renewal): later connects choose from it. */
  setGateways(gateways: readonly Gateway[]): void {
    if (gateways.length > 0) this.#gateways = gateways;
    this.#redundancy.check();
  }

  /**
   * Moves `slot` onto a fresh tunnel because the connector's credentials changed (a renewed
   * certificate): the slot dials again now, and `tunnel` is told to drain (GO_AWAY: the gateway routes
   * no new stream to it), then closed once its streams are done, or after `graceMs`. Returns false
   * when `tunnel` is no longer the slot's.
   */
  replace(slot: number, tunnel: T, graceMs: number): boolean {
    const s = this.#slots[slot];
    if (!s || s.tunnel !== tunnel || this.#stopping) return false;
    this.#credentials++; // a tunnel on probation was dialled with the old credentials: it is not moved in
    s.tunnel = undefined;
    tunnel.drain();
    this.#retireTunnel(s, tunnel, s.gateway!, graceMs, "moved to a renewed certificate");
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
    this.#redundancy.stop();
    for (const slot of this.#slots) {
      slot.timer?.cancel();
      slot.tunnel?.drain();
    }
  }

  /** Closes every tunnel now. */
  stop(reason = "connector stopping"): void {
    this.drain();
    for (const slot of this.#slots) slot.tunnel?.close(reason);
    this.#retiring.closeAll(reason);
    this.options.onEvent({ type: "stopped" });
  }

  /** Hands `tunnel` to the retiring set; past its cap the idlest retiring tunnel is closed at once. */
  #retireTunnel(slot: Slot<T>, tunnel: T, gateway: Gateway, graceMs: number, reason: string): void {
    this.options.onEvent({ type: "retired", slot: slot.index, tunnel, gateway });
    this.#retiring.add(tunnel, graceMs, reason);
  }

  /** A tunnel that will not take a slot but may carry streams: drained, then closed once idle. */
  #release(tunnel: T, reason: string): void {
    tunnel.drain();
    this.#retiring.add(tunnel, this.#drainedGraceMs(), reason);
  }

  #drainedGraceMs(): number {
    return this.options.drainedGraceMs ?? DRAINED_GRACE_MS;
  }

  /** Up for the stable period: its slot's backoff starts over. */
  #stable(slot: Slot<T>): boolean {
    return this.options.clock.now() - (slot.upAt ?? 0) >= (this.options.stableAfterMs ?? STABLE_AFTER_MS);
  }

  /** Redundancy dialled `gateway` for `slot` (make-before-break): the new tunnel takes the slot. */
  #onMoved(slot: Slot<T>, gateway: Gateway, tunnel: T): void {
    if (this.#stopping || slot.state === "connecting") {
      // Stopping, or the slot is already dialling after a failure: that dial takes the slot.
      this.#release(tunnel, this.#stopping ? "connector stopping" : "superseded");
      return;
    }
    if (spreadMeanwhile(this.#slots, slot, gateway)) {
      this.#release(tunnel, "superseded: the tunnels spread out meanwhile");
      return;
    }
    const old = slot.tunnel;
    if (old) {
      slot.tunnel = undefined;
      old.drain();
      this.#retireTunnel(slot, old, slot.gateway!, this.#drainedGraceMs(), "moved to a distinct gateway");
    } else {
      slot.timer?.cancel();
    }
    slot.gateway = gateway;
    this.#onUp(slot, tunnel);
  }

  #emit(
    slot: Slot<T>,
    extra: { error?: string; code?: DownReason; after?: "connect" | "up"; retryInMs?: number; tunnel?: T } = {},
  ): void {
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
  #connect(slot: Slot<T>, avoid?: string): void {
    if (this.#stopping) return;
    slot.gateway = chooseGateway({
      slot,
      slots: this.#slots,
      gateways: this.#gateways,
      failedAt: this.#failedAt,
      alsoInUse: this.#redundancy.probationGateway(),
      avoid,
      now: this.options.clock.now(),
      penaltyMs: this.options.failurePenaltyMs ?? TUNNEL_BACKOFF.capMs,
    });
    slot.state = "connecting";
    this.#emit(slot);
    const gateway = slot.gateway;
    this.options.connect(gateway, slot.index).then(
      (tunnel) => this.#onUp(slot, tunnel),
      (err: unknown) => this.#onDown(slot, gateway, describeError(err), connectFailureReason(err), "connect"),
    );
  }

  #onUp(slot: Slot<T>, tunnel: T): void {
    if (this.#stopping) {
      tunnel.close("connector stopping");
      return;
    }
    slot.tunnel = tunnel;
    slot.state = "up";
    slot.upAt = this.options.clock.now();
    this.#emit(slot, { tunnel });
    const gateway = slot.gateway!;
    tunnel.closed.then(({ reason, code }) => {
      if (slot.tunnel !== tunnel) return; // retired: the slot has moved on
      slot.tunnel = undefined;
      if (this.#stable(slot)) slot.backoff.reset();
      this.#onDown(slot, gateway, reason, code ?? "OTHER", "up");
    });
    tunnel.peerDraining?.then(() => this.retire(slot.index, tunnel));
    this.#redundancy.check();
  }

  #onDown(slot: Slot<T>, gateway: Gateway, error: string, code: DownReason, after: "connect" | "up"): void {
    slot.state = "down";
    this.#failedAt.set(gateway.id, this.options.clock.now());
    if (this.#stopping) {
      this.#emit(slot, { error, code, after });
      return;
    }
    const delay = slot.backoff.nextDelayMs();
    this.#emit(slot, { error, code, after, retryInMs: delay });
    slot.timer = this.options.clock.setTimeout(() => this.#connect(slot), delay);
    this.#redundancy.check();
  }
}
