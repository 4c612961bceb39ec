/**
 * `dialDestination` opens the TCP connection a stream relays to ("Streams"): it resolves a name
 * with the host's DNS, tries each address in turn (families alternated, see resolve.ts) within one
 * overall deadline, and returns the connected Bun socket (TCP_NODELAY on, as Bun connects it). Every
 * failure is a `DialError` whose `failure` is the PROTOCOL §5.3 code to answer with.
 *
 * Bun takes a socket's handlers at connect time, so the caller (the relay) passes its handlers here.
 * They see only the socket that is returned: events of attempts that failed or were abandoned are
 * never forwarded, and an attempt that connects after its deadline is terminated at once. Sockets are
 * opened with `allowHalfOpen: true` so an app's FIN does not close the path towards it (see
 * test/dataplane/bun-socket-facts.test.ts for the half-close behaviour the relay relies on).
 *
 * Which failure is reported when several addresses fail: the most telling one, REFUSED (a host
 * answered, nothing listens) over TIMEOUT over UNREACHABLE over INTERNAL. A DNS lookup that fails or
 * outlives the deadline is DNS_FAILURE: the name server, not the app, is what the operator must fix.
 */
import type { Socket, SocketHandler, TCPSocketConnectOptions } from "bun";
import { type Clock, systemClock } from "../clock.ts";
import { describeError, errnoCode } from "../errors.ts";
import { formatHost, formatHostPort, formatIp, type Host, parseHost, unmapIp } from "../netaddr/index.ts";
import { DEFAULT_DIAL_CONFIG, type DialConfig } from "./config.ts";
import { DialError, type DialFailure, failureOfSocketError } from "./errors.ts";
import { dialOrder, type ResolvedAddress, type Resolver, systemResolver } from "./resolve.ts";
import { settleWithin } from "./settle.ts";
import { outOfFds as hostOutOfFds } from "../host/rlimit.ts";

/** The handlers the caller's socket gets; `open`, `connectError` and `handshake` belong to the dialer. */
export type DialHandlers<T> = Pick<SocketHandler<T>, "data" | "drain" | "end" | "close" | "error" | "timeout">;

/** How a TCP connection is made; `Bun.connect` in production, a fake in tests. */
export type ConnectFn = <T>(options: TCPSocketConnectOptions<T>) => Promise<Socket<T>>;

export interface DialOptions<T> extends Partial<DialConfig> {
  /** Per-socket state, available as `socket.data` in every handler. */
  readonly data: T;
  /** Aborts the dial (the stream went away): rejects with failure CANCELLED. */
  readonly signal?: AbortSignal;
  readonly resolve?: Resolver;
  readonly connect?: ConnectFn;
  readonly clock?: Clock;
  /**
   * Each address tried, as `ip:port` (`[ip6]:port`), and whether it accepted the connection: passive
   * health per resolved address, the same addresses the active checks report (cancelled tries are not
   * reported: they say nothing about the server).
   */
  readonly onAttempt?: (address: string, ok: boolean) => void;
  /**
   * Whether the process is out of fds, asked when a connect fails "refused" (Bun reports EMFILE as
   * ECONNREFUSED): then the dial ends BUSY at once and the address is not reported (the app is fine).
   */
  readonly outOfFds?: () => boolean;
  /**
   * An attempt was given up (timeout, cancel) while Bun's connect still runs: it holds an fd until the
   * kernel gives up too (about 2 min against a black hole). `settled` resolves when it is gone, so the
   * caller can count it against its fd and dial budgets meanwhile.
   */
  readonly onAbandoned?: (settled: Promise<void>) => void;
}

const bunConnect: ConnectFn = (options) => Bun.connect(options);

const FAILURE_RANK: Readonly<Record<DialFailure, number>> = {
  BUSY: 7,
  NOT_ALLOWED: 6,
  CANCELLED: 5,
  REFUSED: 4,
  TIMEOUT: 3,
  UNREACHABLE: 2,
  INTERNAL: 1,
  DNS_FAILURE: 0,
};

interface AttemptFailure {
  readonly address: string;
  readonly failure: DialFailure;
  readonly detail: string;
}

/** Connects to `host:port` (a name or an IP literal, IPv6 with or without brackets). */
export async function dialDestination<T>(
  host: string,
  port: number,
  handlers: DialHandlers<T>,
  options: DialOptions<T>,
): Promise<Socket<T>> {
  const config = withDefaults(options);
  const clock = options.clock ?? systemClock;
  const deadline = clock.now() + config.timeoutMs;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DialError("INTERNAL", `invalid port ${port}`);
  const parsed = parseHost(host);
  if (!parsed) throw new DialError("DNS_FAILURE", `${JSON.stringify(host.slice(0, 100))} is not a valid host name`);
  const canonical = formatHost(parsed);
  if (options.signal?.aborted) throw new DialError("CANCELLED", `dial to ${formatHostPort(canonical, port)} cancelled`);
  const addresses = await addressesOf(parsed, config, clock, deadline, options);
  const failures: AttemptFailure[] = [];
  for (let i = 0; i < addresses.length; i++) {
    const remaining = deadline - clock.now();
    if (remaining <= 0) break;
    const budget = Math.min(remaining, Math.max(config.minAttemptMs, remaining / (addresses.length - i)));
    const result = await attempt(addresses[i]!, port, budget, handlers, options, clock);
    if ("socket" in result) {
      options.onAttempt?.(formatHostPort(addresses[i]!.address, port), true);
      return result.socket;
    }
    if (result.failure === "CANCELLED")
      throw new DialError("CANCELLED", `dial to ${formatHostPort(canonical, port)} cancelled`);
    if (result.failure === "BUSY")
      throw new DialError("BUSY", `connector out of file descriptors (connect to ${result.address}: ${result.detail})`);
    options.onAttempt?.(result.address, false);
    failures.push(result);
  }
  throw summarise(canonical, port, failures);
}

function withDefaults(options: Partial<DialConfig>): DialConfig {
  return {
    timeoutMs: options.timeoutMs ?? DEFAULT_DIAL_CONFIG.timeoutMs,
    minAttemptMs: options.minAttemptMs ?? DEFAULT_DIAL_CONFIG.minAttemptMs,
    maxAddresses: options.maxAddresses ?? DEFAULT_DIAL_CONFIG.maxAddresses,
  };
}

/** The addresses to try: the literal itself, or the resolver's answers in dial order. */
async function addressesOf<T>(
  parsed: Host,
  config: DialConfig,
  clock: Clock,
  deadline: number,
  options: DialOptions<T>,
): Promise<ResolvedAddress[]> {
  if (parsed.kind === "ip") {
    const ip = unmapIp(parsed.ip);
    return [{ address: formatIp(ip), family: ip.family }];
  }
  const name = parsed.name;
  const outcome = await settleWithin(
    startLookup(options.resolve ?? systemResolver, name),
    deadline - clock.now(),
    clock,
    options.signal,
  );
  switch (outcome.kind) {
    case "aborted":
      throw new DialError("CANCELLED", `dial to ${name} cancelled`);
    case "timeout":
      throw new DialError("DNS_FAILURE", `resolving ${name} took longer than ${config.timeoutMs} ms`);
    case "error":
      // A resolver's own verdict (a name that points only at this host is NOT_ALLOWED) stands as given.
      if (outcome.error instanceof DialError) throw outcome.error;
      throw new DialError("DNS_FAILURE", `cannot resolve ${name}: ${errorCode(outcome.error)}`, {
        cause: outcome.error,
      });
    case "value": {
      const addresses = dialOrder(outcome.value, config.maxAddresses);
      if (addresses.length === 0) throw new DialError("DNS_FAILURE", `${name} has no IPv4 or IPv6 address`);
      return addresses;
    }
  }
}

function startLookup(resolve: Resolver, name: string): Promise<readonly ResolvedAddress[]> {
  try {
    return resolve(name);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** One connect to one address within `budgetMs`. */
async function attempt<T>(
  target: ResolvedAddress,
  port: number,
  budgetMs: number,
  handlers: DialHandlers<T>,
  options: DialOptions<T>,
  clock: Clock,
): Promise<{ socket: Socket<T> } | AttemptFailure> {
  const address = formatHostPort(target.address, port);
  let abandoned = false;
  let pending: Promise<Socket<T>>;
  try {
    pending = (options.connect ?? bunConnect)({
      hostname: target.address,
      port,
      data: options.data,
      allowHalfOpen: true,
      socket: forwarding(handlers, () => !abandoned),
    });
  } catch (err) {
    return { address, failure: classify(err, options), detail: errorCode(err) };
  }
  const outcome = await settleWithin(pending, budgetMs, clock, options.signal);
  switch (outcome.kind) {
    case "value":
      // No setsockopt here: Bun sets TCP_NODELAY on every socket it connects (twice, by strace on 1.4.5;
      // the latency rows of BENCHMARKS.md would show a Bun that stopped), and keepalive waits for the
      // stream sweep (config.ts APP_KEEPALIVE_IDLE_MS), so a short stream pays neither.
      return { socket: outcome.value };
    case "error":
      return { address, failure: classify(outcome.error, options), detail: errorCode(outcome.error) };
    case "timeout":
    case "aborted":
      // Bun cannot cancel a connect in flight: drop whatever it yields later, unseen by the caller.
      abandoned = true;
      options.onAbandoned?.(
        pending.then(
          (late) => late.terminate(),
          () => undefined,
        ),
      );
      return outcome.kind === "timeout"
        ? { address, failure: "TIMEOUT", detail: `no answer within ${Math.round(budgetMs)} ms` }
        : { address, failure: "CANCELLED", detail: "cancelled" };
  }
}

/** A connect error's failure; "refused" is confirmed not to be this process's fd shortage first. */
function classify<T>(err: unknown, options: DialOptions<T>): DialFailure {
  const failure = failureOfSocketError(err);
  if (failure !== "REFUSED" && failure !== "INTERNAL") return failure;
  return (options.outOfFds ?? hostOutOfFds)() ? "BUSY" : failure;
}

/** Handlers that pass events to the caller's only while `live()`: never for an abandoned attempt. */
function forwarding<T>(handlers: DialHandlers<T>, live: () => boolean): SocketHandler<T> {
  return {
    data: (socket, data) => (live() ? handlers.data?.(socket, data) : undefined),
    drain: (socket) => (live() ? handlers.drain?.(socket) : undefined),
    end: (socket) => (live() ? handlers.end?.(socket) : undefined),
    close: (socket, error) => (live() ? handlers.close?.(socket, error) : undefined),
    error: (socket, error) => (live() ? handlers.error?.(socket, error) : undefined),
    timeout: (socket) => (live() ? handlers.timeout?.(socket) : undefined),
    // Present so a refused connect is reported only through the promise, which the dialer handles.
    connectError: () => undefined,
  };
}

function summarise(host: string, port: number, failures: readonly AttemptFailure[]): DialError {
  const worst = failures.reduce<AttemptFailure | undefined>(
    (best, f) => (best === undefined || FAILURE_RANK[f.failure] > FAILURE_RANK[best.failure] ? f : best),
    undefined,
  );
  if (!worst) return new DialError("TIMEOUT", `dial to ${formatHostPort(host, port)} ran out of time`);
  if (failures.length === 1) return new DialError(worst.failure, `connect to ${worst.address}: ${worst.detail}`);
  const tried = failures.map((f) => `${f.address} ${f.detail}`).join("; ");
  return new DialError(worst.failure, `no address of ${formatHostPort(host, port)} accepted a connection (${tried})`);
}

/** A short, stable description: the errno-style code when there is one (ECONNREFUSED, ENOTFOUND). */
function errorCode(err: unknown): string {
  return errnoCode(err) ?? describeError(err);
}
