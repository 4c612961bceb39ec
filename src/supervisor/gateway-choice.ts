/**
 * Where a slot (re)connects: to a gateway no other slot uses when there is one, among those to one
 * that has not failed recently, else to the one that failed longest ago. A draining gateway (`avoid`)
 * is left out whenever there is another one. With two gateways and two slots, a slot whose gateway
 * died therefore keeps retrying that gateway (with backoff) rather than doubling up on the surviving
 * one, so a restarted gateway gets its tunnel back within one backoff period; with more gateways than
 * slots it moves to another gateway at once.
 */
import type { Gateway, Slot } from "./supervisor-types.ts";

export interface GatewayChoice {
  readonly slot: Slot;
  readonly slots: readonly Slot[];
  readonly gateways: readonly Gateway[];
  /** When each gateway last failed us (clock.now()). */
  readonly failedAt: ReadonlyMap<string, number>;
  /** A gateway in use beyond the slots (the tunnel on probation's). */
  readonly alsoInUse?: string | undefined;
  readonly avoid?: string | undefined;
  readonly now: number;
  /** A gateway that failed within this window is avoided when another is available. */
  readonly penaltyMs: number;
}

export function chooseGateway(choice: GatewayChoice): Gateway {
  const { slot, failedAt } = choice;
  const inUse = new Set(
    choice.slots.filter((s) => s !== slot && s.state !== "down" && s.gateway).map((s) => s.gateway!.id),
  );
  if (choice.alsoInUse !== undefined) inUse.add(choice.alsoInUse);
  const others = choice.gateways.filter((g) => g.id !== choice.avoid);
  const candidates = others.length > 0 ? others : choice.gateways;
  const free = candidates.filter((g) => !inUse.has(g.id));
  const pool = free.length > 0 ? free : [...candidates];
  const healthy = pool.filter((g) => choice.now - (failedAt.get(g.id) ?? -Infinity) >= choice.penaltyMs);
  // Spread slots: start from the slot's own index so slot 0 and 1 begin on different gateways.
  if (healthy.length > 0) return healthy[slot.index % healthy.length]!;
  return pool.reduce((best, g) => ((failedAt.get(g.id) ?? 0) < (failedAt.get(best.id) ?? 0) ? g : best));
}
