import { expect, test } from "bun:test";
import type { TunnelStateEvent } from "../../src/daemon/events.ts";
import { TunnelHistory } from "../../src/daemon/tunnel-history.ts";
import { CONNECT_FAILURE_REASONS, DISCONNECT_REASONS } from "../../src/supervisor/down-reason.ts";

const AT = new Date("2026-01-01T00:00:00Z");
const ev = (e: Partial<TunnelStateEvent> & Pick<TunnelStateEvent, "state">): TunnelStateEvent => ({
  type: "tunnel",
  slot: 0,
  gateway: "wss://gw",
  at: AT,
  stopping: false,
  ...e,
});

test("every known reason is counted from 0 before anything happened", () => {
  const c = new TunnelHistory().counters();
  expect(c.connects).toBe(0);
  expect(c.reconnects).toBe(0);
  expect(Object.keys(c.connectFailures).sort()).toEqual(Object.keys(CONNECT_FAILURE_REASONS).sort());
  expect(Object.keys(c.disconnects).sort()).toEqual(Object.keys(DISCONNECT_REASONS).sort());
  expect([...Object.values(c.connectFailures), ...Object.values(c.disconnects)].every((n) => n === 0)).toBe(true);
});

test("a slot keeps why it is down and when it retries until it is up again; reconnects are counted as the event says", () => {
  const h = new TunnelHistory();
  h.on(ev({ state: "connecting" }));
  h.on(ev({ state: "up" }));
  h.on(
    ev({
      state: "down",
      code: "TUNNEL_DEAD",
      after: "up",
      error: "tunnel dead",
      retryAt: new Date(AT.getTime() + 500),
    }),
  );
  expect(h.slot(0)).toMatchObject({
    failures: 1,
    lastError: { code: "TUNNEL_DEAD", after: "up", message: "tunnel dead", at: AT.toISOString() },
    retryAt: "2026-01-01T00:00:00.500Z",
  });
  h.on(ev({ state: "connecting" }));
  // Dialling again: the last error stays (status shows it next to "connecting"), the retry time goes.
  expect(h.slot(0)?.retryAt).toBeUndefined();
  expect(h.slot(0)?.lastError?.code).toBe("TUNNEL_DEAD");
  h.on(ev({ state: "down", code: "TUNNEL_REFUSED", after: "connect", error: "refused" }));
  expect(h.slot(0)?.failures).toBe(2);
  h.on(ev({ state: "up", reconnect: true }));
  expect(h.slot(0)).toEqual({ failures: 0, lastError: undefined, retryAt: undefined });
  const c = h.counters();
  expect(c.connects).toBe(2);
  expect(c.reconnects).toBe(1);
  expect(c.disconnects.TUNNEL_DEAD).toBe(1);
  expect(c.connectFailures.TUNNEL_REFUSED).toBe(1);
});

test("a failure message from the gateway is cut to a bounded length; an unknown code is not a new counter", () => {
  const h = new TunnelHistory();
  h.on(ev({ state: "down", code: "OTHER", after: "connect", error: "x".repeat(10_000) }));
  expect(h.slot(0)?.lastError?.message.length).toBe(1024);
  h.on(ev({ state: "down", code: "NOT_A_CODE" as never, after: "up", error: "?" }));
  expect(Object.keys(h.counters().disconnects)).not.toContain("NOT_A_CODE");
});
