/**
 * Keeps the client certificate fresh: renews it once two thirds of its life has passed, plus a
 * random delay of up to 5% of its life (a fleet enrolled together does not renew together), retries a
 * failed renewal with backoff (1 min doubling to 1 h, full jitter), and hands each new identity to the
 * daemon. Every result is a `renewal` event (event-log.ts logs it), a failure with its reason. It keeps
 * trying, hourly, after the certificate expired too (the cloud will refuse it, but a host clock that
 * was wrong may have been fixed), and the log says each time that tunnels will fail and the connector
 * must be re-enrolled.
 *
 * Certificate times are wall-clock times, so the schedule reads `clock.wallNow()`; a timer never
 * sleeps longer than `MAX_SLEEP_MS` (timers cap at 2^31 ms, and a host clock may be stepped), it wakes
 * and looks again.
 */
import { X509Certificate } from "node:crypto";
import type { Clock, TimerHandle } from "../clock.ts";
import { ConnectorError, describeError } from "../errors.ts";
import type { Identity } from "../identity/identity.ts";
import { Backoff, type BackoffPolicy } from "../retry/backoff.ts";
import type { DaemonEvents } from "./events.ts";

export const RENEW_AT_FRACTION = 2 / 3;
export const RENEW_JITTER_FRACTION = 0.05;
export const RENEW_RETRY: BackoffPolicy = { baseMs: 60_000, capMs: 60 * 60_000 };
/** Longest single sleep before looking at the schedule again: 6 h. */
export const MAX_SLEEP_MS = 6 * 60 * 60_000;

export interface CertificateRenewalOptions {
  readonly clock: Clock;
  /** Each result goes there as a `renewal` event (event-log.ts writes its line). */
  readonly events: Pick<DaemonEvents, "emit">;
  /** Renews and stores; resolves with the new identity (`renewIdentity` in production). */
  readonly renew: (current: Identity) => Promise<Identity>;
  /** A renewal succeeded: the daemon moves to the new identity. */
  readonly onRenewed: (identity: Identity) => void;
  readonly random?: () => number;
}

/** What status shows about renewal. */
export interface RenewalView {
  readonly dueAt: string;
  readonly lastError: string | null;
  readonly failures: number;
}

function validity(identity: Identity): { from: number; to: number } {
  const cert = new X509Certificate(identity.certificate);
  return { from: cert.validFromDate.getTime(), to: cert.validToDate.getTime() };
}

export class CertificateRenewal {
  #identity: Identity;
  #dueAt = 0;
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;
  #lastError: string | null = null;
  readonly #backoff: Backoff;
  readonly #random: () => number;

  constructor(
    identity: Identity,
    private readonly options: CertificateRenewalOptions,
  ) {
    this.#identity = identity;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff(RENEW_RETRY, this.#random);
    // When the certificate arrived: its enrollment or latest renewal, as stored with it.
    this.#dueAt = this.#dueAtFor(identity, Date.parse(identity.renewedAt ?? identity.enrolledAt));
  }

  start(): void {
    this.#wake();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  view(): RenewalView {
    return { dueAt: new Date(this.#dueAt).toISOString(), lastError: this.#lastError, failures: this.#backoff.attempts };
  }

  /**
   * When to renew `identity`. Life counts from its notBefore, or from `receivedAt` when that is later:
   * CAs backdate notBefore for clock skew (ours by minutes), and on a short-lived certificate two
   * thirds from the backdated start can already be past, which would renew again at once, forever.
   */
  #dueAtFor(identity: Identity, receivedAt: number): number {
    const { from: notBefore, to } = validity(identity);
    const from = Math.max(notBefore, receivedAt);
    const life = Math.max(0, to - from);
    return Math.ceil(from + life * RENEW_AT_FRACTION + this.#random() * life * RENEW_JITTER_FRACTION);
  }

  #sleep(untilMs: number): void {
    const delay = Math.max(1, Math.min(untilMs - this.options.clock.wallNow().getTime(), MAX_SLEEP_MS));
    this.#timer = this.options.clock.setTimeout(() => this.#wake(), delay);
  }

  #wake(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#running) return;
    if (this.options.clock.wallNow().getTime() < this.#dueAt) return this.#sleep(this.#dueAt);
    void this.#attempt();
  }

  async #attempt(): Promise<void> {
    this.#running = true;
    const { events } = this.options;
    try {
      const renewed = await this.options.renew(this.#identity);
      if (this.#stopped) return;
      this.#identity = renewed;
      this.#backoff.reset();
      this.#lastError = null;
      this.#dueAt = this.#dueAtFor(renewed, this.options.clock.wallNow().getTime());
      events.emit({ type: "renewal", ok: true, notAfter: new Date(validity(renewed).to) });
      this.options.onRenewed(renewed);
    } catch (err) {
      if (this.#stopped) return;
      this.#lastError =
        err instanceof ConnectorError
          ? `${err.code}: ${err.message}`
          : String(err instanceof Error ? err.message : err);
      const now = this.options.clock.wallNow().getTime();
      const { to } = validity(this.#identity);
      this.#dueAt = now + this.#backoff.nextDelayMs();
      events.emit({
        type: "renewal",
        ok: false,
        code: err instanceof ConnectorError ? err.code : "UNEXPECTED",
        error: describeError(err),
        notAfter: new Date(to),
        expired: now >= to,
        retryAt: new Date(this.#dueAt),
      });
    } finally {
      this.#running = false;
    }
    if (!this.#stopped) this.#sleep(this.#dueAt);
  }
}
