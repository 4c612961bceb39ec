/**
 * Fake tunnels for supervisor and daemon unit tests: no socket, a stream count the test sets, and the
 * `idle()` a real tunnel has (connection.ts wakes it on the session's streamEnded event).
 */
import type { Gateway } from "../../src/supervisor/supervisor-types.ts";
import type { Tunnel, TunnelSession } from "../../src/supervisor/connection.ts";
import type { SessionStats } from "../../src/mux/session-stats.ts";
import type { HealthReport } from "../../src/mux/payloads.ts";
import type { Secret } from "../../src/secret.ts";

/** A stream count whose `idle()` resolves when it reaches 0 (or `end()` is called). */
export class StreamCount {
  #value: number;
  #waiters: (() => void)[] = [];

  constructor(value = 0) {
    this.#value = value;
  }

  get value(): number {
    return this.#value;
  }

  set value(n: number) {
    this.#value = n;
    if (n === 0) this.end();
  }

  idle(): Promise<void> {
    return this.#value === 0 ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Wakes every waiter (the tunnel closed: its streams are gone). */
  end(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A tunnel as the daemon sees it (`Tunnel`), driven by the test. */
export class FakeTunnel implements Tunnel {
  readonly closed: Promise<{ reason: string }>;
  readonly peerDraining: Promise<unknown>;
  readonly session: TunnelSession & { healthReports: HealthReport[]; tokenUpdates: string[] };
  readonly count = new StreamCount();
  drained = false;
  closedBy: string | undefined;
  #closeNow!: (why: { reason: string }) => void;
  #goAway!: () => void;
  #isClosed = false;

  constructor(
    readonly gateway: Gateway,
    /** What the dial used, for assertions (the certificate, the token). */
    readonly dialledWith: Record<string, string> = {},
  ) {
    this.closed = new Promise((resolve) => (this.#closeNow = resolve));
    this.peerDraining = new Promise<void>((resolve) => (this.#goAway = resolve));
    const tunnel = this;
    this.session = {
      healthReports: [],
      tokenUpdates: [],
      get isClosed() {
        return tunnel.#isClosed;
      },
      stats: (): SessionStats => statsOf(this.count.value),
      sendHealthReport(report) {
        this.healthReports.push(report);
      },
      sendTokenUpdate(token: Secret<string>) {
        this.tokenUpdates.push(token.reveal());
      },
    };
  }

  get streams(): number {
    return this.count.value;
  }

  set streams(n: number) {
    this.count.value = n;
  }

  activeStreams(): number {
    return this.count.value;
  }

  idle(): Promise<void> {
    return this.#isClosed ? Promise.resolve() : this.count.idle();
  }

  drain(): void {
    this.drained = true;
  }

  close(reason: string): void {
    this.closedBy ??= reason;
    this.peerClose(reason);
  }

  /** The gateway (or the network) closed the tunnel. */
  peerClose(reason: string): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.count.end();
    this.#closeNow({ reason });
  }

  /** The gateway sends GO_AWAY. */
  goAway(): void {
    this.#goAway();
  }
}

function statsOf(active: number): SessionStats {
  const zero = { framesIn: 0, framesOut: 0, messagesIn: 0, messagesOut: 0, resetsSent: 0, resetsReceived: 0 };
  return {
    ...zero,
    streamsCreated: active,
    streamsClosed: 0,
    streamsActive: active,
    bytesIn: 0,
    bytesOut: 0,
    openFailures: {},
    rttMs: undefined,
    schedulerTurns: 0,
    queuedBytes: 0,
    unconsumedBytes: 0,
  };
}
