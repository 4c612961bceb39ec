/**
 * The supervisor's vocabulary, shared with the parts it delegates to (`Redundancy`,
 * `RetiringTunnels`): the handle of a live tunnel, a slot, and the events the daemon listens to.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Backoff, BackoffPolicy } from "../retry/backoff.ts";
import type { DisconnectReason, DownReason } from "./down-reason.ts";

/** A gateway as the supervisor needs it: the control plane's answers (src/control/api.ts) fit this
 * shape, and the supervisor does not depend on the control plane's schemas. */
export interface Gateway {
  /** Stable identifier, used to spread tunnels over distinct gateways. */
  readonly id: string;
  /** wss:// URL of the tunnel endpoint. */
  readonly url: string;
}

/** What `Redundancy` reports while it moves a doubled tunnel back to an unused gateway. */
export type RedundancyEvent =
  | { type: "rebalance"; phase: "scheduled"; slot: number; gateway: Gateway; inMs: number }
  | { type: "rebalance"; phase: "moved"; slot: number; gateway: Gateway }
  | { type: "rebalance"; phase: "failed"; slot: number; gateway: Gateway; error: string };

/** One live tunnel as the supervisor sees it. */
export interface TunnelHandle {
  /** Resolves once when the tunnel is gone, with why (`code`: one of down-reason.ts, when known). */
  readonly closed: Promise<{ reason: string; code?: DisconnectReason }>;
  /** Tell the gateway to route no new streams here (GO_AWAY); existing streams continue. */
  drain(): void;
  /** Number of streams still open (for graceful stop). */
  activeStreams(): number;
  /**
   * Resolves once no stream is open (at once when none is, and when the tunnel closes): what a
   * graceful stop and a retiring tunnel wait for, instead of looking at `activeStreams()` on a timer.
   */
  idle(): Promise<void>;
  /** Close now. */
  close(reason: string): void;
  /** Resolves when the gateway sends GO_AWAY (even before the supervisor holds the tunnel). */
  readonly peerDraining?: Promise<unknown>;
}

/** Dials one tunnel; `T` is what the caller's tunnels carry beyond the handle (a session, its gateway). */
export type ConnectTunnel<T extends TunnelHandle = TunnelHandle> = (gateway: Gateway, slot: number) => Promise<T>;

export type SlotState = "connecting" | "up" | "down";

export type SupervisorEvent<T extends TunnelHandle = TunnelHandle> =
  /** `tunnel` is set when the slot comes up: from then on it is the slot's tunnel. */
  | {
      type: "slot";
      slot: number;
      state: SlotState;
      gateway: Gateway;
      since: Date;
      /** Down: why, in words and as a stable code; `after` says whether it failed to dial or was up. */
      error?: string;
      code?: DownReason;
      after?: "connect" | "up";
      retryInMs?: number;
      tunnel?: T;
    }
  /** `tunnel` left `slot` (drained or replaced) and now only finishes its streams. */
  | { type: "retired"; slot: number; tunnel: T; gateway: Gateway }
  | RedundancyEvent
  | { type: "stopped" };

/** One tunnel position the supervisor keeps filled. */
export interface Slot<T extends TunnelHandle = TunnelHandle> {
  index: number;
  state: SlotState;
  gateway?: Gateway;
  tunnel?: T;
  backoff: Backoff;
  timer?: TimerHandle;
  upAt?: number;
}

export interface SupervisorOptions<T extends TunnelHandle = TunnelHandle> {
  gateways: readonly Gateway[];
  tunnels: number;
  connect: ConnectTunnel<T>;
  clock: Clock;
  onEvent: (event: SupervisorEvent<T>) => void;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** A gateway that failed within this window is avoided when another is available. */
  failurePenaltyMs?: number;
  stableAfterMs?: number;
  /** A tunnel the gateway drained is closed by us at the latest this long after its GO_AWAY. */
  drainedGraceMs?: number;
  /** Retry policy for moving a tunnel back to an unused gateway. */
  rebalanceBackoff?: BackoffPolicy;
}
