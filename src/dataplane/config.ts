/**
 * Data-plane tunables with the reason for each number: how long a stream's dial may take, how many
 * addresses it tries, how idle app connections are kept honest.
 */

export interface DialConfig {
  /**
   * Whole dial, DNS lookup included: 10 s. Well under the gateway's 30 s open timeout
   * (src/mux/config.ts `openTimeoutMs`), so the gateway hears TIMEOUT from us rather than giving
   * up blind; long enough for a SYN retransmit (1 s, 3 s) to an app server on a lossy link.
   */
  readonly timeoutMs: number;
  /**
   * Least time one address gets before the dialer moves on, unless the deadline is closer: 2 s. The
   * remaining time is shared evenly over the addresses left, so a black-holed first address (an IPv6
   * route that drops packets) cannot eat the whole deadline, yet each address gets at least two SYN
   * attempts.
   */
  readonly minAttemptMs: number;
  /**
   * Addresses tried per dial: 8. getaddrinfo rarely returns more for one name; this bounds the time and
   * sockets one OPEN can spend.
   */
  readonly maxAddresses: number;
}

export const DEFAULT_DIAL_CONFIG: DialConfig = Object.freeze({
  timeoutMs: 10_000,
  minAttemptMs: 2_000,
  maxAddresses: 8,
});

/**
 * Idle time before the first TCP keepalive probe on an app connection: 30 s (cloudflared's origin
 * default). Bun sends 10 probes 1 s apart after it, so a dead app server or a NAT that dropped the flow
 * is noticed within ~40 s of silence instead of Linux's 2 h default. It is switched on by the stream
 * sweep (open-streams.ts), not at dial: four setsockopt calls per stream are a fifth of what a short
 * stream costs in syscalls, and a stream that lives less than a sweep period never needs a probe.
 */
export const APP_KEEPALIVE_IDLE_MS = 30_000;
