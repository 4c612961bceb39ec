/**
 * `Heartbeat` is the liveness bookkeeping of one tunnel (PROTOCOL §5.6): when the next PING is due, whether the
 * tunnel is dead (nothing at all received for `missed` intervals), and the round-trip time measured
 * from our PING to its PONG. `Heartbeat` holds no timer: the session's single `DeadlineTimer` asks it
 * what is due.
 */
import type { Clock, TimerHandle } from "../clock.ts";

export class Heartbeat {
  #lastReceivedAt: number;
  #nextPingAt: number;
  #seq = 0;
  #outstanding: { seq: number; sentAt: number } | undefined;
  #rttMs: number | undefined;

  constructor(
    now: number,
    private readonly intervalMs: number,
    private readonly missed: number,
  ) {
    this.#lastReceivedAt = now;
    // First PING at once: the path is proven and the RTT shown in status early.
    this.#nextPingAt = now;
  }

  /** Latest measured round-trip time; undefined until the first PONG. */
  get rttMs(): number | undefined {
    return this.#rttMs;
  }

  get deadAfterMs(): number {
    return this.intervalMs * this.missed;
  }

  /** Anything arrived from the peer. */
  received(now: number): void {
    this.#lastReceivedAt = now;
  }

  silentFor(now: number): number {
    return now - this.#lastReceivedAt;
  }

  isDead(now: number): boolean {
    return this.silentFor(now) >= this.deadAfterMs;
  }

  /** The 8 PING bytes to send now, or undefined when no PING is due. */
  pingDue(now: number): Uint8Array | undefined {
    if (now < this.#nextPingAt) return undefined;
    this.#nextPingAt = now + this.intervalMs;
    this.#seq = (this.#seq + 1) >>> 0;
    this.#outstanding = { seq: this.#seq, sentAt: now };
    const opaque = new Uint8Array(8);
    new DataView(opaque.buffer).setUint32(4, this.#seq);
    return opaque;
  }

  /** A PONG arrived; returns the new RTT when it answers our latest PING. */
  pong(opaque: Uint8Array, now: number): number | undefined {
    const view = new DataView(opaque.buffer, opaque.byteOffset, opaque.byteLength);
    const out = this.#outstanding;
    if (!out || view.getUint32(0) !== 0 || view.getUint32(4) !== out.seq) return undefined;
    this.#outstanding = undefined;
    this.#rttMs = now - out.sentAt;
    return this.#rttMs;
  }

  /** When the session timer must next look: the next PING or the moment silence becomes death. */
  nextDueAt(): number {
    return Math.min(this.#nextPingAt, this.#lastReceivedAt + this.deadAfterMs);
  }
}

/** One timer aimed at the earliest of several deadlines; arming an earlier one replaces a later one. */
export class DeadlineTimer {
  #handle: TimerHandle | undefined;
  #at = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
  ) {}

  armAt(due: number): void {
    if (this.#handle && this.#at <= due) return;
    this.#handle?.cancel();
    this.#at = due;
    this.#handle = this.clock.setTimeout(
      () => {
        this.#handle = undefined;
        this.#at = Infinity;
        this.fire();
      },
      Math.max(0, due - this.clock.now()),
    );
  }

  cancel(): void {
    this.#handle?.cancel();
    this.#handle = undefined;
    this.#at = Infinity;
  }
}
