/**
 * systemd's readiness protocol (sd_notify(3)): a datagram of `KEY=value` lines to the socket named by
 * NOTIFY_SOCKET. The service unit is `Type=notify` with `NotifyAccess=all`, so that during an upgrade's
 * hand-over the new process can say `MAINPID=<its pid>` and systemd tracks it instead of the old one.
 *
 * Without NOTIFY_SOCKET (not under systemd, or not Type=notify) every call is a no-op. A failure to
 * send is reported, never thrown: readiness is advisory to the daemon, and it must not stop serving
 * because the service manager went away.
 */
import { sendUnixDatagram } from "./libc.ts";

export interface Notifier {
  /** Whether a service manager listens. */
  readonly enabled: boolean;
  /** Sends `fields` as one message; returns undefined or a reason it was not delivered. */
  send(fields: Record<string, string | number>): string | undefined;
}

export function systemdNotifier(env: Record<string, string | undefined> = process.env): Notifier {
  const socket = env.NOTIFY_SOCKET;
  if (!socket || !(socket.startsWith("/") || socket.startsWith("@"))) {
    return { enabled: false, send: () => undefined };
  }
  return {
    enabled: true,
    send(fields) {
      const text = Object.entries(fields)
        .map(([key, value]) => `${key}=${String(value).replace(/\n/g, " ")}`)
        .join("\n");
      try {
        const errno = sendUnixDatagram(socket, Buffer.from(`${text}\n`));
        return errno === 0 ? undefined : `sd_notify to ${socket} failed (errno ${errno})`;
      } catch (err) {
        return `sd_notify unavailable: ${err instanceof Error ? err.message : String(err)}`;
      }
    },
  };
}
