/**
 * The connector's access token (docs/PROTOCOL.md §3.5, §4, §5.8): fetched from the control plane before
 * tunnels are dialled, sent in each upgrade's `Authorization: Bearer` header, refreshed at two thirds of
 * its life (plus up to 5% of its life of random delay, so a fleet does not refresh in step), and handed
 * to every open tunnel as TOKEN_UPDATE so tunnels outlive any one token without reconnecting.
 *
 * A token is bound to the certificate it was fetched with, so it is only sent on tunnels dialled with
 * that certificate: after a certificate renewal a fresh token is fetched for new dials, and tunnels still
 * on the old certificate (being replaced) keep theirs until they close.
 *
 * Failures (a token too short-lived to schedule by among them) are retried with backoff and full jitter
 * (1 s doubling to 1 min), and that retry is the only request: a dial that finds no usable token while
 * one is scheduled fails at once (NO_ACCESS_TOKEN) and the tunnel supervisor's own backoff spaces the
 * dials; otherwise it waits for the refresh in flight. A gateway's 401 asks for an early refresh (at most
 * one per REJECTED_REFRESH_INTERVAL_MS, jittered) but leaves the token usable for other dials while it
 * lives by our clock: one hostile gateway must not stall the dials to the honest ones.
 * CONNECTOR_REVOKED goes to the daemon's `Revocation` and stops the schedule until a dial asks again.
 * The token is a `Secret`: it is never logged, and status shows only when it expires.
 */
import type { TimerHandle } from "../clock.ts";
import { ConnectorError, describeError } from "../errors.ts";
import { Secret } from "../secret.ts";
import { Backoff } from "../retry/backoff.ts";
import { AccessTokenTooShortError, NoAccessTokenError } from "./access-token-errors.ts";
import {
  type AccessTokensOptions,
  type AccessTokenView,
  type FetchedToken,
  MAX_REFRESH_DELAY_MS,
  MIN_DIAL_LIFE_MS,
  MIN_REFRESH_DELAY_MS,
  MIN_RETRY_DELAY_MS,
  MIN_TOKEN_LIFE_MS,
  REJECTED_REFRESH_INTERVAL_MS,
  REJECTED_REFRESH_JITTER_MS,
  TOKEN_REFRESH_AT_FRACTION,
  TOKEN_REFRESH_JITTER_FRACTION,
  TOKEN_RETRY,
  type TokenHolder,
} from "./access-token-policy.ts";
import { isRevokedAnswer } from "./revocation.ts";
export { AccessTokenTooShortError, NoAccessTokenError };
export * from "./access-token-policy.ts";

interface Held {
  readonly value: Secret<string>;
  readonly certificate: string;
  readonly expiresAt: string;
  /** Monotonic deadline (clock.now()), so a stepped host clock does not change what is usable. */
  readonly expiresAtMono: number;
}

export class AccessTokens {
  readonly #options: AccessTokensOptions;
  readonly #backoff: Backoff;
  readonly #random: () => number;
  readonly #holders = new Map<TokenHolder, string>();
  #held: Held | undefined;
  #stale = false;
  #inflight: Promise<Held> | undefined;
  #timer: TimerHandle | undefined;
  #refreshAt: number | null = null;
  /** The scheduled fetch is the retry of a failed one: dials without a usable token must not fetch. */
  #retrying = false;
  /** When the last 401-triggered refresh was due (clock.now()), for REJECTED_REFRESH_INTERVAL_MS. */
  #lastRejectedRefreshAt: number | undefined;
  #lastError: string | null = null;
  #stopped = false;

  constructor(options: AccessTokensOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff(TOKEN_RETRY, this.#random);
  }

  /**
   * A token kept from an earlier run, with `lifeLeftMs` by this host's clock: dials use it until a fresh
   * one arrives, so a restart during a control-plane outage still brings tunnels up while it lives (a
   * gateway that no longer takes it answers 401, which asks for a fresh one).
   */
  seed(token: {
    readonly value: Secret<string>;
    readonly certificate: string;
    readonly expiresAt: string;
    readonly lifeLeftMs: number;
  }): void {
    if (this.#held || token.lifeLeftMs <= MIN_DIAL_LIFE_MS) return;
    this.#held = {
      value: token.value,
      certificate: token.certificate,
      expiresAt: token.expiresAt,
      expiresAtMono: this.#options.clock.now() + token.lifeLeftMs,
    };
  }

  /** Fetches the first token now (dials wait for it unless a seeded token is still good). */
  start(): void {
    this.#refreshSoon();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#holders.clear();
  }

  view(): AccessTokenView {
    const wall = this.#options.clock.wallNow().getTime();
    const refreshAt =
      this.#refreshAt === null
        ? null
        : new Date(wall + Math.max(0, this.#refreshAt - this.#options.clock.now())).toISOString();
    return { expiresAt: this.#held?.expiresAt ?? null, refreshAt, lastError: this.#lastError };
  }

  /**
   * The token for a new dial with `certificate`: the current one if it is bound to that certificate and
   * not about to expire; otherwise waits for a refresh (which may fail: the dial fails with it and the
   * supervisor retries with its backoff). While a failed fetch waits for its retry, fails at once with
   * NoAccessTokenError instead of asking the control plane again.
   */
  async forDial(certificate: string): Promise<Secret<string>> {
    const held = this.#held;
    if (held && this.#usable(held, certificate)) return held.value;
    if (!this.#inflight && this.#retrying && this.#refreshAt !== null) {
      throw new NoAccessTokenError(Math.max(0, this.#refreshAt - this.#options.clock.now()), this.#lastError);
    }
    const fresh = await this.#refresh();
    if (fresh.certificate === certificate) return fresh.value;
    // The certificate changed while we fetched. If the answer is for an older one than this dial's, one
    // more fetch (made with the current identity) is for this dial's; if this dial holds the older
    // one, no token will do: it fails, and the supervisor's next dial reads the new credentials.
    const again = await this.#refresh();
    if (again.certificate === certificate) return again.value;
    throw new ConnectorError(
      "CREDENTIALS_CHANGED",
      "the certificate was renewed while this tunnel waited for its access token; the next dial uses the new one",
    );
  }

  /**
   * A gateway answered 401 to a dial with `token`: refresh early, at most once per
   * REJECTED_REFRESH_INTERVAL_MS and after a random delay. The token stays usable for other dials (the
   * gateway may be the one in the wrong); a fetch in flight or a scheduled retry already is the refresh.
   */
  rejected(token: Secret<string>): void {
    if (this.#stopped || this.#held?.value.reveal() !== token.reveal()) return;
    if (this.#inflight || this.#retrying) return;
    const now = this.#options.clock.now();
    const earliest =
      this.#lastRejectedRefreshAt === undefined
        ? now
        : Math.max(now, this.#lastRejectedRefreshAt + REJECTED_REFRESH_INTERVAL_MS);
    const at = earliest + Math.floor(this.#random() * REJECTED_REFRESH_JITTER_MS);
    if (this.#refreshAt !== null && this.#refreshAt <= at) return;
    this.#lastRejectedRefreshAt = at;
    this.#schedule(at - now, false);
  }

  /** A renewed certificate: new dials need a token bound to it. */
  certificateChanged(): void {
    this.#stale = true;
    this.#refreshSoon();
  }

  /**
   * A tunnel dialled with `certificate` and `used`: it gets every later token bound to the same
   * certificate (at once, if one arrived while it was being dialled) until it closes.
   */
  attach(holder: TokenHolder, certificate: string, used: Secret<string>): void {
    if (this.#stopped || holder.session.isClosed) return;
    this.#holders.set(holder, certificate);
    void holder.closed.then(() => this.#holders.delete(holder));
    const held = this.#held;
    if (held && held.value.reveal() !== used.reveal() && held.certificate === certificate)
      this.#send(holder, held.value);
  }

  #usable(held: Held, certificate: string): boolean {
    return (
      !this.#stale &&
      held.certificate === certificate &&
      held.expiresAtMono - this.#options.clock.now() > MIN_DIAL_LIFE_MS
    );
  }

  #refreshSoon(): void {
    if (this.#stopped || this.#inflight) return;
    this.#refresh().catch(() => undefined); // logged and rescheduled inside
  }

  /** One fetch at a time; every caller waits for the same one. */
  #refresh(): Promise<Held> {
    this.#inflight ??= this.#fetch().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #fetch(): Promise<Held> {
    const { clock, log } = this.#options;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#refreshAt = null;
    this.#retrying = false;
    let fetched: FetchedToken;
    let life: number;
    try {
      fetched = await this.#options.fetch();
      // Life from the answer's own count, not expiresAt against our wall clock, which may be off.
      life = Math.max(0, fetched.expiresIn * 1000);
      if (!(life >= MIN_TOKEN_LIFE_MS)) throw new AccessTokenTooShortError(life, MIN_TOKEN_LIFE_MS);
    } catch (err) {
      this.#failed(err);
      throw err;
    }
    const held: Held = {
      value: new Secret(fetched.token),
      certificate: fetched.certificate,
      expiresAt: new Date(Date.parse(fetched.expiresAt)).toISOString(),
      expiresAtMono: clock.now() + life,
    };
    if (this.#stopped) return held;
    this.#held = held;
    this.#stale = false;
    this.#lastError = null;
    this.#backoff.reset();
    const delay = life * TOKEN_REFRESH_AT_FRACTION + this.#random() * life * TOKEN_REFRESH_JITTER_FRACTION;
    const refreshInMs = Math.min(MAX_REFRESH_DELAY_MS, Math.max(MIN_REFRESH_DELAY_MS, Math.ceil(delay)));
    this.#schedule(refreshInMs, false);
    log.debug("access token received", { expiresAt: held.expiresAt, lifeMs: life, refreshInMs });
    try {
      this.#options.onFetched?.(fetched, life);
    } catch (err) {
      log.warn("access token not kept in the state dir", { error: describeError(err) });
    }
    for (const [holder, certificate] of this.#holders)
      if (certificate === held.certificate) this.#send(holder, held.value);
    return held;
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    const { log } = this.#options;
    this.#lastError = err instanceof ConnectorError ? `${err.code}: ${err.message}` : describeError(err);
    if (isRevokedAnswer(err)) {
      // No schedule while revoked: the daemon re-checks slowly, and a dial after reinstatement asks again.
      log.warn("access token refused: this connector has been revoked");
      this.#options.onRevoked();
      return;
    }
    const delay = Math.max(MIN_RETRY_DELAY_MS, this.#backoff.nextDelayMs());
    this.#schedule(delay, true);
    const expired = this.#held === undefined || this.#held.expiresAtMono <= this.#options.clock.now();
    log.warn(
      expired
        ? "cannot get an access token: tunnels cannot be opened until one is issued; retrying"
        : "access token refresh failed; retrying",
      {
        error: this.#lastError,
        retryInMs: delay,
        ...(this.#held ? { expiresAt: this.#held.expiresAt } : {}),
      },
    );
  }

  #schedule(delayMs: number, retry: boolean): void {
    this.#timer?.cancel();
    this.#retrying = retry;
    this.#refreshAt = this.#options.clock.now() + delayMs;
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#refreshSoon();
    }, delayMs);
  }

  #send(holder: TokenHolder, token: Secret<string>): void {
    if (holder.session.isClosed) {
      this.#holders.delete(holder);
      return;
    }
    try {
      holder.session.sendTokenUpdate(token);
    } catch (err) {
      this.#options.log.warn("token update not sent", { error: describeError(err) });
    }
  }
}
