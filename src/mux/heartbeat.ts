/**
 * `Heartbeat` is the liveness bookkeeping of one tunnel (PROTOCOL §5.6): when the next PING is due, whether the
 * tunnel is dead (nothing at all received for `missed` intervals), and the round-trip time measured
 * from our PING to its PONG. `Heartbeat` holds no timer: the session's single `DeadlineTimer` asks it
 * what is due.
 */
import type { Clock, TimerHandle } from "../clock.ts";

/** Round trips kept for the minimum (at one per 10 s heartbeat, the last 80 s when nothing probes). */
const RTT_SAMPLES = 8;
/**
 * After the first PING (sent at once, while the code on both ends may still be cold — a fresh process
 * runs it for the first time — and busy starting: its round trip is often many times the path's),
 * more follow 0.1 s, 1 s and 3 s later, so the minimum round trip window growth sizes by is the path's
 * within moments of the tunnel opening (traffic rarely starts sooner), not after the next heartbeat.
 */
const EARLY_PING_GAPS_MS = [100, 900, 2_000];

export class Heartbeat {
  #lastReceivedAt: number;
  #nextPingAt: number;
  #seq = 0;
  #outstanding: { seq: number; sentAt: number } | undefined;
  #rttMs: number | undefined;
  /** The last RTT_SAMPLES quiet round trips: their minimum is the path's delay without queues. */
  readonly #samples: number[] = [];
  /** Their minimum, kept when they change: every window grant reads it. */
  #minRttMs: number | undefined;

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

  /**
   * Smallest of the recent quiet round trips (no stream data moved while the PING was out: a PONG
   * behind a bulk stream's bytes times the queue those bytes make, and growing a window by it would
   * make the queue longer still): the path's own delay, the "delay" of the bandwidth-delay product
   * window growth aims at. Recent, not lifelong, so a path that got longer is noticed; several, so one
   * sample taken while the process was busy (the first PING goes out while it is still starting) does
   * not size every window.
   */
  get minRttMs(): number | undefined {
    return this.#minRttMs;
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
    this.#nextPingAt = now + Math.min(this.intervalMs, EARLY_PING_GAPS_MS[this.#seq] ?? this.intervalMs);
    this.#seq = (this.#seq + 1) >>> 0;
    this.#outstanding = { seq: this.#seq, sentAt: now };
    const opaque = new Uint8Array(8);
    new DataView(opaque.buffer).setUint32(4, this.#seq);
    return opaque;
  }

  /**
   * A PONG arrived; returns the new RTT when it answers our latest PING. Only a `quiet` round trip (no
   * stream data moved meanwhile) is a sample of the path's delay for `minRttMs`.
   */
  pong(opaque: Uint8Array, now: number, quiet: boolean): number | undefined {
    const view = new DataView(opaque.buffer, opaque.byteOffset, opaque.byteLength);
    const out = this.#outstanding;
    if (!out || view.getUint32(0) !== 0 || view.getUint32(4) !== out.seq) return undefined;
    this.#outstanding = undefined;
    this.#rttMs = now - out.sentAt;
    if (!quiet) return this.#rttMs;
    this.#samples.push(this.#rttMs);
    if (this.#samples.length > RTT_SAMPLES) this.#samples.shift();
    this.#minRttMs = Math.min(...this.#samples);
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
