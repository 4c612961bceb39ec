/**
 * What the connector does with a gateway's OPEN ("Streams"): check the app catalog's allow-list,
 * dial the destination, answer OPEN_RESULT, then relay. Every outcome is counted by reason so status
 * and metrics can show why users fail, and a failure touches only its own stream.
 */
import { describeError } from "../errors.ts";
import { systemClock, type Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { RepeatLimiter } from "../repeat-limiter.ts";
import { StreamCode, type StreamCodeName } from "../mux/const.ts";
import type { OpenHandler } from "../mux/session-types.ts";
import type { AllowList } from "./allow-list.ts";
import { APP_KEEPALIVE_IDLE_MS } from "./config.ts";
import { dialDestination } from "./dial.ts";
import { DialError } from "./errors.ts";
import { RelayLink, relaySocketHandlers } from "./relay.ts";
import { nameRuleResolver } from "./name-answers.ts";
import { peerText } from "../peer-text.ts";
import type { OpenStreams } from "./open-streams.ts";
import type { AdmissionGate, Ticket } from "./admission.ts";
import type { Resolver } from "./resolve.ts";

/** Streams are counted by their sessions; the dataplane adds why opens failed. */
export interface DataplaneCounters {
  /** Open failures by PROTOCOL §5.3 code name. */
  failures: Partial<Record<StreamCodeName, number>>;
}

export interface OpenHandlerOptions {
  /** The current allow-list (replaced when the catalog changes). */
  allowList: () => AllowList;
  log: Logger;
  counters: DataplaneCounters;
  dialTimeoutMs?: number;
  /** Schedules each relay's final-flush deadline and paces repeated warnings; a fake clock in tests. */
  clock?: Clock;
  /** Name resolution (the host's resolver by default; tests inject one). */
  resolve?: Resolver;
  /** Where relayed streams are tracked for catalog re-checks and the idle timeout (the daemon's one list). */
  openStreams?: OpenStreams;
  /** The process-wide bounds shared by every tunnel's handler; without one only the tunnel's own cap applies. */
  gate?: AdmissionGate;
  /** Passive health: a dial to one resolved address (`ip:port`, `[ip6]:port`) succeeded or failed. */
  onDialResult?: (app: string, address: string, ok: boolean) => void;
  /** Every failed open, as counted (`app` as the gateway named it, made printable). */
  onFailure?: (code: StreamCodeName, app: string) => void;
}

/**
 * Failure lines per 10 s window over all apps and destinations: 20. Enough to show a handful of
 * distinct problems at once; beyond it a hostile or broken gateway could only fill the log.
 */
const MAX_FAILURE_LINES = 20;

export function createOpenHandler(options: OpenHandlerOptions): OpenHandler {
  const { log, counters } = options;
  const countFailure = (code: StreamCodeName, app: string): void => {
    counters.failures[code] = (counters.failures[code] ?? 0) + 1;
    options.onFailure?.(code, peerText(app));
  };
  // The same failure for the same destination is logged once per window, and at most
  // MAX_FAILURE_LINES lines per window over all of them; counters see every one.
  const repeats = new RepeatLimiter(options.clock ?? systemClock, undefined, undefined, MAX_FAILURE_LINES);
  const warnFailure = (message: string, key: string, fields: Record<string, unknown>) => {
    const verdict = repeats.check(key);
    if (!verdict.log) return;
    log.warn(message, {
      ...fields,
      ...(verdict.suppressed > 0 ? { similarNotLogged: verdict.suppressed } : {}),
      ...(verdict.othersSuppressed > 0 ? { otherFailuresNotLogged: verdict.othersSuppressed } : {}),
    });
  };
  // Only names are resolved; IP destinations were matched against IP/CIDR rules as written.
  const guardedResolver = nameRuleResolver(options.resolve);
  return (request, stream) => {
    const decision = options.allowList().allows(request.app, request.host, request.port);
    if (!decision.allowed) {
      countFailure("NOT_ALLOWED", request.app);
      // Keyed by catalog app, not destination: a gateway asking for 5,000 hosts gets one line per app per
      // window, and one making up app names shares a single key (it cannot spend the log budget that
      // real failures need). The gateway chose app and host: printable before they reach a log.
      const key = options.allowList().hasApp(request.app) ? `NOT_ALLOWED ${request.app}` : "NOT_ALLOWED unknown app";
      warnFailure("stream refused: destination not allowed", key, {
        app: peerText(request.app),
        host: peerText(request.host),
        port: request.port,
        reason: decision.reason,
      });
      stream.reject(StreamCode.NOT_ALLOWED, decision.reason);
      return;
    }
    let ticket: Ticket | undefined;
    if (options.gate) {
      const admission = options.gate.admit(stream.owner);
      if (!admission.admitted) {
        countFailure("BUSY", request.app);
        warnFailure("stream refused: connector busy", `BUSY ${admission.reason}`, {
          app: request.app,
          limit: admission.reason,
          reason: admission.message,
        });
        stream.reject(StreamCode.BUSY, admission.message);
        return;
      }
      ticket = admission.ticket;
    }
    let untrack: (() => void) | undefined;
    const link = new RelayLink(() => {
      untrack?.();
      ticket?.close();
    }, options.clock);
    link.account = ticket;
    const abort = new AbortController();
    // A gateway that gives up (RESET while we dial) cancels the dial.
    stream.setHandlers({ data: () => {}, end: () => {}, drain: () => {}, close: () => abort.abort() });
    dialDestination(decision.host, request.port, relaySocketHandlers, {
      data: link,
      signal: abort.signal,
      resolve: guardedResolver,
      onAttempt: (address, ok) => options.onDialResult?.(request.app, address, ok),
      ...(options.gate ? { onAbandoned: (settled: Promise<void>) => options.gate!.lingering(settled) } : {}),
      ...(options.dialTimeoutMs === undefined ? {} : { timeoutMs: options.dialTimeoutMs }),
    }).then(
      (socket) => {
        ticket?.dialEnded();
        link.socket = socket;
        try {
          // The catalog may have changed while we dialled: a destination removed meanwhile is not opened.
          const now = options.allowList().allows(request.app, request.host, request.port);
          if (!now.allowed && stream.state === "opening") {
            socket.terminate();
            ticket?.close();
            countFailure("NOT_ALLOWED", request.app);
            stream.reject(StreamCode.NOT_ALLOWED, now.reason);
            return;
          }
          if (!stream.accept()) {
            socket.terminate();
            ticket?.close();
            return;
          }
          untrack = options.openStreams?.add({
            request,
            stream,
            bytesMoved: () => link.bytesMoved,
            keepAlive: () => link.keepAlive(APP_KEEPALIVE_IDLE_MS),
          });
          link.attach(stream);
        } catch (err) {
          // Never let one stream's failure escape as an unhandled rejection.
          log.warn("stream failed after connecting", { app: request.app, error: describeError(err) });
          untrack?.();
          ticket?.close();
          socket.terminate();
          stream.reset(StreamCode.INTERNAL, "relay setup failed");
        }
      },
      (err: unknown) => {
        ticket?.close();
        const failure: StreamCodeName = err instanceof DialError ? err.failure : "INTERNAL";
        if (failure === "CANCELLED") return;
        if (failure === "BUSY") options.gate?.fdShortage();
        countFailure(failure, request.app);
        const message = describeError(err);
        warnFailure(
          "stream failed: cannot reach destination",
          `${failure} ${request.app} ${request.host}:${request.port}`,
          {
            app: request.app,
            host: request.host,
            port: request.port,
            failure,
            error: message,
          },
        );
        if (stream.state === "opening") stream.reject(StreamCode[failure], message);
      },
    );
  };
}
