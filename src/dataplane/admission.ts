/**
 * `AdmissionGate` is the one process-wide gate every tunnel's OPENs pass before the connector dials:
 * each tunnel bounds its own streams (src/mux/config.ts `maxStreams`), but up to 16 tunnels, each
 * fed by a gateway we must treat as hostile, could otherwise add up to 160,000 streams, thousands of
 * dials held against a black hole, and gigabytes parked in app sockets. An OPEN over any bound is
 * answered BUSY, which a gateway retries on another connector (docs/PROTOCOL.md §5.3), and counted by
 * reason.
 *
 * What is bounded, and how:
 * - streams: admitted OPENs until their stream ends (dialling or relaying). Each holds one fd (its app
 *   socket), so the cap is the configured one and never more than the fd limit less the reserve.
 * - pending dials: OPENs between admission and the dial's outcome, plus connects the dialer gave up on
 *   that Bun cannot cancel (each still holds an fd until the kernel gives up): a gateway that opens and
 *   at once resets streams to a black-holed address cannot slip past the cap that way.
 * - file descriptors: open fds (sampled from /proc/self/fd, at most every FD_SAMPLE_MS, plus the
 *   streams and dials admitted since) + the reserve must stay under the soft RLIMIT_NOFILE, so the
 *   tunnels, the admin socket, control-plane requests and health checks always find an fd.
 * - buffered bytes: stream bytes the relay holds because the app socket did not take them (user space,
 *   exact), plus an estimate of what the kernel parks for such a socket: Bun tells us only that a
 *   write was short, not how much the socket buffers hold, so every socket whose writes have fallen
 *   short for `stallMs` (an app that stopped reading, not a busy bulk stream) is charged the kernel's
 *   ceiling for a send buffer (tcp_wmem max, read once at start). The
 *   estimate is pessimistic: it stops admitting new streams early, never late. Bytes towards the cloud
 *   are not charged here: the relay stops reading an app socket once its stream's credit is spent, so
 *   they are bounded per stream by the window (at most 16 MiB) times the stream cap.
 * A BUSY does not shrink what is already held; it stops it from growing.
 *
 * When the connector keeps more than one tunnel, each may take at most half of each bound (its
 * `owner` share): one hostile gateway that opens thousands of streams, dials black holes or feeds apps
 * that never read is then BUSY on its own tunnel while the other half stays for honest gateways.
 * Half, not a share per live tunnel, so a tunnel that came first cannot hold everything before the
 * others exist; a tunnel still has 256 dials and 256 MiB by default, far more than honest load needs.
 */
import { readFileSync } from "node:fs";
import type { Clock } from "../clock.ts";
import { countOpenFds, getNoFileLimit, raiseNoFileLimit } from "../host/rlimit.ts";
import type { Logger } from "../log.ts";
import { DEFAULT_SESSION_CONFIG } from "../mux/config.ts";

export type BusyReason = "streams" | "dials" | "fds" | "buffered";

export interface AdmissionLimits {
  /** Streams open (or dialling) process-wide. */
  readonly maxStreams: number;
  /** Dials in progress process-wide. */
  readonly maxPendingDials: number;
  /** Bytes held for app sockets: user space plus the kernel estimate. */
  readonly maxBufferedBytes: number;
  /** What one app socket that does not keep up is assumed to park in the kernel. */
  readonly kernelBytesPerBlockedSocket: number;
  /** How long writes to an app socket must have fallen short before it counts as not reading. */
  readonly stallMs: number;
  /** fds kept free for everything that is not a stream. */
  readonly fdReserve: number;
}

/** The fd facts the gate needs; the host's in production (src/host/rlimit.ts), fakes in tests. */
export interface FdFacts {
  /**
   * The soft RLIMIT_NOFILE now (Infinity when unlimited or unknown). Read again with every fd sample,
   * so a limit an operator lowers at run time (`prlimit --pid`) is honoured.
   */
  limit(): number;
  /** fds open now (undefined when they cannot be counted: then only the stream cap applies). */
  openFds(): number | undefined;
}

/**
 * Defaults, each with its reason:
 * - maxStreams 20,000: the benchmark holds 10,000 idle streams on each of the default 2 tunnels, so the
 *   cap does not cut what the product already serves; more than that is gateways driving the host
 *   beyond what it was sized for. The fd limit lowers it further (see `effectiveMaxStreams`).
 * - maxPendingDials 512: a healthy dial on a LAN takes milliseconds, so even a burst of thousands of
 *   users has only tens in flight; a black-holed app holds each dial for the dial timeout (10 s), and
 *   512 of them is what such an app may cost (512 fds, not 3,000) while others keep dialling.
 * - maxBufferedBytes 512 MiB: room for ~120 app sockets that stopped reading at the pessimistic
 *   estimate (4 MiB kernel + a 256 KiB window each), or dozens of bulk streams whose writes are
 *   momentarily short, before new streams are refused; well under the memory of a host that runs one.
 * - kernelBytesPerBlockedSocket 4 MiB: Linux's default tcp_wmem max, used when /proc is unreadable.
 * - stallMs 1 s: a bulk stream's socket is short of room many times a second and drains within
 *   milliseconds; one that has taken nothing for a second is an app that stopped reading. Charging only
 *   those keeps many concurrent uploads from making the connector BUSY for everyone.
 * - fdReserve 128: up to 16 tunnels, the admin and metrics sockets, control-plane requests, one health
 *   check per app server at a time and the runtime's own fds (~30), with room to spare.
 */
export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = Object.freeze({
  maxStreams: 20_000,
  maxPendingDials: 512,
  maxBufferedBytes: 512 * 1024 * 1024,
  kernelBytesPerBlockedSocket: 4 * 1024 * 1024,
  stallMs: 1_000,
  fdReserve: 128,
});

/** A tunnel's own stream cap (src/mux/config.ts `maxStreams`), the yardstick for warning about fds. */
const ONE_TUNNEL_STREAMS = DEFAULT_SESSION_CONFIG.maxStreams;

/** How long an fd count is trusted: a readdir of /proc/self/fd costs O(fds), so not per OPEN. */
const FD_SAMPLE_MS = 1_000;
/** Near the limit the count is refreshed sooner, so closed fds are seen again quickly. */
const FD_RESAMPLE_NEAR_LIMIT_MS = 100;

export type Admission =
  | { readonly admitted: true; readonly ticket: Ticket }
  | { readonly admitted: false; readonly reason: BusyReason; readonly message: string };

/** The stream cap after the fd limit: each stream needs an fd, and the reserve is kept free. */
export function effectiveMaxStreams(limits: AdmissionLimits, fdLimit: number): number {
  return Math.max(0, Math.min(limits.maxStreams, fdLimit - limits.fdReserve));
}

/** What one tunnel holds of the gate (streams include those dialling; bytes include the kernel estimate). */
interface Usage {
  streams: number;
  dials: number;
  heldBytes: number;
}

export class AdmissionGate {
  readonly maxStreams: number;
  /** What each tunnel holds, while it holds anything. */
  readonly #usage = new Map<object, Usage>();
  readonly rejections: Record<BusyReason, number> = { streams: 0, dials: 0, fds: 0, buffered: 0 };
  #streams = 0;
  #dials = 0;
  /** Connects given up on (timeout, cancel) that still hold an fd until they settle. */
  #lingering = 0;
  #heldBytes = 0;
  /** Tickets whose app socket stopped taking writes, with when (the kernel estimate charges stalled ones). */
  readonly #blockedSince = new Map<Ticket, number>();
  #fdSample: number | undefined;
  #fdSampledAt = -Infinity;
  #inUseAtSample = 0;
  #fdLimit: number;

  constructor(
    private readonly clock: Clock,
    private readonly fds: FdFacts,
    readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS,
    /** Tunnels the connector keeps: with more than one, each gets half of each bound. */
    private readonly tunnels = 2,
  ) {
    this.maxStreams = effectiveMaxStreams(limits, fds.limit());
    this.#fdLimit = fds.limit();
  }

  get streams(): number {
    return this.#streams;
  }
  get pendingDials(): number {
    return this.#dials + this.#lingering;
  }
  /** User-space bytes held plus the kernel estimate for sockets stalled for `stallMs` or more. */
  get bufferedBytes(): number {
    return this.#heldBytes + this.#stalled().total * this.limits.kernelBytesPerBlockedSocket;
  }

  /** App sockets whose writes have fallen short for `stallMs` or more: in all, and of `usage`'s tunnel. */
  #stalled(usage?: Usage): { total: number; mine: number } {
    const before = this.clock.now() - this.limits.stallMs;
    let total = 0;
    let mine = 0;
    for (const [ticket, since] of this.#blockedSince) {
      if (since > before) continue;
      total++;
      if (ticket.usage === usage) mine++;
    }
    return { total, mine };
  }

  /**
   * Admits one OPEN (a stream and its dial) or says which bound it would cross; `owner` identifies the
   * tunnel (any object, e.g. the stream's `owner`), whose share is half of each bound.
   */
  admit(owner: object = this): Admission {
    const mine = this.#usage.get(owner) ?? { streams: 0, dials: 0, heldBytes: 0 };
    const stalled = this.#blockedSince.size > 0 ? this.#stalled(mine) : { total: 0, mine: 0 };
    const share = (cap: number) => (this.tunnels > 1 ? Math.max(1, Math.ceil(cap / 2)) : cap);
    if (mine.streams >= share(this.maxStreams))
      return this.#busy("streams", `this tunnel's share of the connector's streams is in use (${mine.streams} open)`);
    if (mine.dials >= share(this.limits.maxPendingDials))
      return this.#busy("dials", `this tunnel's share of the connector's dials is in use (${mine.dials} in progress)`);
    if (
      mine.heldBytes + stalled.mine * this.limits.kernelBytesPerBlockedSocket >=
      share(this.limits.maxBufferedBytes)
    ) {
      return this.#busy("buffered", "this tunnel's share of the connector's buffers is in use (apps not reading)");
    }
    if (this.#streams >= this.maxStreams)
      return this.#busy("streams", `connector stream limit reached (${this.maxStreams} open)`);
    if (this.pendingDials >= this.limits.maxPendingDials)
      return this.#busy("dials", `connector dial limit reached (${this.pendingDials} dials in progress)`);
    const buffered = this.#heldBytes + stalled.total * this.limits.kernelBytesPerBlockedSocket;
    if (buffered >= this.limits.maxBufferedBytes) {
      return this.#busy(
        "buffered",
        `connector buffer limit reached (apps not reading ${Math.round(buffered / 1048576)} MiB)`,
      );
    }
    if (!this.fdHeadroom()) return this.#busy("fds", "connector is short of file descriptors");
    this.#streams++;
    this.#dials++;
    mine.streams++;
    mine.dials++;
    this.#usage.set(owner, mine);
    return { admitted: true, ticket: new Ticket(this, mine, () => this.#forgetIfIdle(owner, mine)) };
  }

  #forgetIfIdle(owner: object, usage: Usage): void {
    if (usage.streams === 0 && usage.dials === 0 && usage.heldBytes === 0) this.#usage.delete(owner);
  }

  /** A connect the dialer gave up on still runs until `settled`: it counts as a dial and an fd till then. */
  lingering(settled: Promise<unknown>): void {
    this.#lingering++;
    void settled.finally(() => this.#lingering--);
  }

  /** Whether one more fd leaves the reserve free (asked at admission). */
  fdHeadroom(): boolean {
    let estimate = this.#fdEstimate(FD_SAMPLE_MS);
    if (estimate === undefined || !Number.isFinite(this.#fdLimit)) return true;
    if (estimate + 1 + this.limits.fdReserve > this.#fdLimit) estimate = this.#fdEstimate(FD_RESAMPLE_NEAR_LIMIT_MS);
    return estimate === undefined || estimate + 1 + this.limits.fdReserve <= this.#fdLimit;
  }

  /** A dial found the process out of fds although the estimate had room (other fds grew): counted as "fds". */
  fdShortage(): void {
    this.rejections.fds++;
  }

  // Ticket bookkeeping.
  /** @internal */ dialEnded(): void {
    this.#dials--;
  }
  /** @internal */ streamEnded(): void {
    this.#streams--;
  }
  /** @internal */ held(delta: number): void {
    this.#heldBytes += delta;
  }
  /** @internal */ blocked(ticket: Ticket, blocked: boolean): void {
    if (blocked) this.#blockedSince.set(ticket, this.clock.now());
    else this.#blockedSince.delete(ticket);
  }

  #busy(reason: BusyReason, message: string): Admission {
    this.rejections[reason]++;
    return { admitted: false, reason, message };
  }

  #fdEstimate(maxAgeMs: number): number | undefined {
    const now = this.clock.now();
    const inUse = this.#streams + this.#lingering; // a dialling stream is one of them: one fd each
    if (this.#fdSample === undefined || now - this.#fdSampledAt >= maxAgeMs) {
      this.#fdLimit = this.fds.limit();
      const counted = this.fds.openFds();
      if (counted === undefined) return undefined;
      this.#fdSample = counted;
      this.#fdSampledAt = now;
      this.#inUseAtSample = inUse;
    }
    // Streams and dials admitted since the sample each hold (or are about to open) one fd.
    return this.#fdSample + Math.max(0, inUse - this.#inUseAtSample);
  }
}

/**
 * One admitted OPEN's share of the gate: the dial slot until `dialEnded`, the stream slot and every
 * byte charged until `close`. Idempotent, so every path that ends a stream may call `close`.
 */
export class Ticket {
  #dialing = true;
  #open = true;
  #held = 0;
  #blocked = false;

  constructor(
    private readonly gate: AdmissionGate,
    /** The tunnel's share, charged alongside the gate's totals. */
    readonly usage: Usage,
    private readonly released: () => void,
  ) {}

  /** The dial settled (connected, failed or cancelled). */
  dialEnded(): void {
    if (!this.#dialing) return;
    this.#dialing = false;
    this.usage.dials--;
    this.gate.dialEnded();
  }

  /** Bytes the relay now holds for the app socket (positive) or handed to it (negative). */
  hold(delta: number): void {
    if (!this.#open || delta === 0) return;
    this.#held += delta;
    this.usage.heldBytes += delta;
    this.gate.held(delta);
  }

  /** The app socket stopped taking writes (true) or caught up (false). */
  setBlocked(blocked: boolean): void {
    if (!this.#open || blocked === this.#blocked) return;
    this.#blocked = blocked;
    this.gate.blocked(this, blocked);
  }

  close(): void {
    this.dialEnded();
    if (!this.#open) return;
    this.setBlocked(false);
    this.hold(-this.#held);
    this.#open = false;
    this.usage.streams--;
    this.gate.streamEnded();
    this.released();
  }
}

/**
 * The kernel's ceiling for one TCP socket's send buffer (the third field of tcp_wmem), the estimate
 * charged for an app socket that stops taking writes; the default when it cannot be read.
 */
export function kernelSendBufferMax(
  read: () => string = () => readFileSync("/proc/sys/net/ipv4/tcp_wmem", "utf8"),
): number {
  try {
    const max = Number(read().trim().split(/\s+/)[2]);
    return Number.isInteger(max) && max > 0 ? max : DEFAULT_ADMISSION_LIMITS.kernelBytesPerBlockedSocket;
  } catch {
    return DEFAULT_ADMISSION_LIMITS.kernelBytesPerBlockedSocket;
  }
}

/**
 * The daemon's gate: raises the soft fd limit to the hard one first (every stream costs an fd), reads
 * the limit again with every fd sample, and logs the limits it settled on (a warning when the fd
 * limit lowers the configured stream cap).
 */
export function createProcessGate(options: {
  maxStreams: number;
  tunnels: number;
  clock: Clock;
  log: Logger;
}): AdmissionGate {
  const raised = raiseNoFileLimit();
  const gate = new AdmissionGate(
    options.clock,
    { limit: () => getNoFileLimit()?.soft ?? Infinity, openFds: countOpenFds },
    { ...DEFAULT_ADMISSION_LIMITS, maxStreams: options.maxStreams, kernelBytesPerBlockedSocket: kernelSendBufferMax() },
    options.tunnels,
  );
  const fields = {
    maxStreams: gate.maxStreams,
    maxPendingDials: gate.limits.maxPendingDials,
    maxBufferedBytes: gate.limits.maxBufferedBytes,
    fdLimit: raised ? raised.after.soft : "unknown",
    fdLimitBefore: raised?.before.soft,
  };
  // A warning only when the fd limit leaves fewer streams than one tunnel may carry (a 1,024 hard limit);
  // a default cap trimmed by the reserve (20,000 fds) is normal and only logged.
  if (gate.maxStreams < Math.min(options.maxStreams, ONE_TUNNEL_STREAMS)) {
    options.log.warn(
      "stream limits: the file descriptor limit lowers the stream limit; raise the hard limit (LimitNOFILE=) to serve more",
      fields,
    );
  } else {
    options.log.info("stream limits", fields);
  }
  return gate;
}
