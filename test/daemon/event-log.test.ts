/**
 * The log lines of the daemon's events (event-log.ts): one line per event at the level an operator
 * filters on, with the field names docs/OPERATIONS.md lists.
 */
import { expect, test } from "bun:test";
import { logEvents } from "../../src/daemon/event-log.ts";
import type { DaemonEvent } from "../../src/daemon/events.ts";
import { createLogger } from "../../src/log.ts";

function logged(events: DaemonEvent[]): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", format: "json", write: (l) => void lines.push(JSON.parse(l)) });
  const onEvent = logEvents({ log, summary: () => ({ up: 1 }) });
  for (const event of events) onEvent(event);
  return lines.map(({ time: _, ...rest }) => rest);
}

test("app health: unhealthy is a warning with why, recovered is info", () => {
  expect(
    logged([
      { type: "app-health", app: "wiki", server: "10.0.0.2:443", healthy: false, detail: "connection refused" },
      { type: "app-health", app: "wiki", server: "10.0.0.2:443", healthy: true },
    ]),
  ).toEqual([
    {
      level: "warn",
      priority: 4,
      msg: "app server unhealthy",
      app: "wiki",
      server: "10.0.0.2:443",
      detail: "connection refused",
    },
    { level: "info", priority: 6, msg: "app server healthy", app: "wiki", server: "10.0.0.2:443" },
  ]);
});

test("a tunnel down is a warning with its code and retry, unless the daemon is stopping", () => {
  const down = {
    type: "tunnel",
    slot: 0,
    gateway: "wss://gw-a.invalid/v1/tunnel",
    state: "down",
    at: new Date(0),
    code: "TUNNEL_REFUSED",
    error: "refused",
    after: "connect",
    retryInMs: 1234,
  } as const;
  const lines = logged([
    { ...down, stopping: false },
    { ...down, stopping: true },
  ]);
  expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual(["warn tunnel down", "info status", "info tunnel down"]);
  expect(lines[0]).toMatchObject({ tunnel: 0, code: "TUNNEL_REFUSED", retryInMs: 1234, gateway: down.gateway });
});

test("renewal: a failure is a warning, past expiry an error naming the fix; a success is the renewal's own line", () => {
  const failed = {
    type: "renewal",
    ok: false,
    code: "CONNECTION_REFUSED",
    error: "cannot connect",
    notAfter: new Date(Date.UTC(2026, 0, 2)),
    retryAt: new Date(Date.UTC(2026, 0, 1, 0, 1)),
  } as const;
  const lines = logged([
    { ...failed, expired: false },
    { ...failed, expired: true },
    { type: "renewal", ok: true, notAfter: new Date(Date.UTC(2026, 0, 3)) },
  ]);
  expect(lines.map((l) => `${l.level} ${l.component} ${l.msg}`)).toEqual([
    "warn identity certificate renewal failed; retrying",
    expect.stringContaining("error identity the client certificate has expired"),
  ]);
  expect(lines[0]).toMatchObject({
    code: "CONNECTION_REFUSED",
    error: "cannot connect",
    notAfter: "2026-01-02T00:00:00.000Z",
    retryAt: "2026-01-01T00:01:00.000Z",
  });
  expect(String(lines[1]!.msg)).toContain("connector enroll --force");
});

test("failed opens are not logged here: the open handler logs them with their destination, repeats limited", () => {
  expect(logged([{ type: "open-failed", code: "REFUSED", app: "wiki" }])).toEqual([]);
});
