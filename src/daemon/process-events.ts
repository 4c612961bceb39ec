/**
 * The daemon's signals as an event source: SIGTERM and SIGINT (a stop), and promise rejections nobody
 * handled (logged, never fatal: a bug in one stream or tunnel must not take every tunnel down with
 * the process). Only this file calls process.on, so the daemon itself can be driven by a test.
 * SIGHUP is not listened to: the daemon has nothing to reload, and systemd sends it no SIGHUP.
 */
import type { ProcessEvents, StopSignal } from "./daemon-deps.ts";

const STOP_SIGNALS: readonly StopSignal[] = ["SIGTERM", "SIGINT"];

export function processEvents(target: NodeJS.Process = process): ProcessEvents {
  return {
    listen(handlers) {
      const onSignal = (signal: NodeJS.Signals) => handlers.signal(signal as StopSignal);
      const onUnhandled = (reason: unknown) => handlers.unhandled(reason);
      for (const signal of STOP_SIGNALS) target.on(signal, onSignal);
      target.on("unhandledRejection", onUnhandled);
      return () => {
        for (const signal of STOP_SIGNALS) target.off(signal, onSignal);
        target.off("unhandledRejection", onUnhandled);
      };
    },
  };
}
