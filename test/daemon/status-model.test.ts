/**
 * `StatusModel`: tunnels that share a gateway while another gateway is known make the connector
 * "degraded" (exit 40), and the snapshot and the summary log line say why.
 */
import { expect, test } from "bun:test";
import { StatusModel } from "../../src/daemon/status-model.ts";
import { STATUS_EXIT, StatusSnapshotSchema } from "../../src/status/schema.ts";
import * as v from "valibot";
import { makeIdentity } from "../identity/fixtures.ts";

const A = "wss://127.0.0.1:9443/v1/tunnel";
const B = "wss://127.0.0.1:9444/v1/tunnel";
const at = new Date(Date.UTC(2026, 0, 1));

function model(gateways: string[]) {
  return new StatusModel(makeIdentity("conn-1", { gateways: gateways.map((url, i) => ({ id: `gw-${i}`, url })) }));
}

test("two tunnels up on one gateway while a second is known: degraded, and the snapshot says so", () => {
  const status = model([A, B]);
  status.slotChanged(0, "up", A, at);
  status.slotChanged(1, "up", A, at);
  const snap = status.snapshot();
  expect(v.parse(StatusSnapshotSchema, snap).redundancy).toEqual({ distinctGateways: 1, tunnels: 2, gatewaysKnown: 2 });
  expect(snap.state).toBe("degraded");
  expect(STATUS_EXIT[snap.state]).toBe(40);
  expect(status.summary()).toMatchObject({
    state: "degraded",
    gateways: 1,
    gatewaysKnown: 2,
    redundancy: "tunnels share a gateway although another is known",
  });
  // Moved back: connected again.
  status.slotChanged(1, "up", B, at);
  expect(status.snapshot().redundancy).toEqual({ distinctGateways: 2, tunnels: 2, gatewaysKnown: 2 });
  expect(status.state()).toBe("connected");
  expect(status.summary()).not.toHaveProperty("redundancy");
});

test("sharing is fine when there is no other gateway to use", () => {
  const one = model([A]);
  one.slotChanged(0, "up", A, at);
  one.slotChanged(1, "up", A, at);
  expect(one.state()).toBe("connected");
  // Three tunnels on two gateways: as spread as they can be.
  const two = model([A, B]);
  two.slotChanged(0, "up", A, at);
  two.slotChanged(1, "up", B, at);
  two.slotChanged(2, "up", A, at);
  expect(two.state()).toBe("connected");
});

test("a drained tunnel that still serves streams keeps counting until it closes", async () => {
  const status = model([A, B]);
  const counts = { streamsCreated: 3, streamsClosed: 1, streamsActive: 2, bytesIn: 100, bytesOut: 50 };
  const stats = () => ({ ...counts }) as unknown as import("../../src/mux/session-stats.ts").SessionStats;
  status.slotChanged(0, "up", A, at);
  status.attachSession(0, stats);
  let close!: () => void;
  status.detachSession(0, new Promise<void>((resolve) => (close = resolve))); // drained, streams go on
  Object.assign(counts, { streamsClosed: 2, streamsActive: 1, bytesIn: 300 }); // it keeps working
  let snap = status.snapshot();
  expect(snap.streams).toMatchObject({ created: 3, closed: 2, active: 1 });
  expect(snap.bytes.fromCloud).toBe(300);
  Object.assign(counts, { streamsClosed: 3, streamsActive: 0, bytesIn: 400 });
  close();
  await Promise.resolve();
  snap = status.snapshot();
  expect(snap.streams).toMatchObject({ created: 3, closed: 3, active: 0 });
  expect(snap.bytes.fromCloud).toBe(400);
});

test("the snapshot says why a tunnel is down, when it retries, and how long the daemon has been up", () => {
  let now = at;
  const status = new StatusModel(
    makeIdentity("conn-1", { gateways: [{ id: "gw-0", url: A }] }),
    () => ({}),
    () => now,
  );
  status.slotChanged(0, "down", A, at);
  status.apply({
    type: "tunnel",
    slot: 0,
    gateway: A,
    state: "down",
    at,
    stopping: false,
    code: "TUNNEL_REFUSED",
    after: "connect",
    error: "gateway 127.0.0.1:9443 refused the connection (ECONNREFUSED)",
    retryAt: new Date(at.getTime() + 4_000),
    retryInMs: 4_000,
  });
  now = new Date(at.getTime() + 90_500);
  const snap = v.parse(StatusSnapshotSchema, status.snapshot());
  expect(snap).toMatchObject({
    schemaVersion: 1,
    at: now.toISOString(),
    startedAt: at.toISOString(),
    uptimeSeconds: 90,
    pid: process.pid,
  });
  expect(snap.tunnels[0]).toMatchObject({
    state: "down",
    failures: 1,
    retryAt: "2026-01-01T00:00:04.000Z",
    lastError: { code: "TUNNEL_REFUSED", after: "connect", at: at.toISOString() },
  });
  expect(snap.tunnelCounters?.connectFailures.TUNNEL_REFUSED).toBe(1);
  // Up again: no reason, no retry time.
  status.slotChanged(0, "up", A, now);
  status.apply({ type: "tunnel", slot: 0, gateway: A, state: "up", at: now, stopping: false });
  const up = status.snapshot().tunnels[0]!;
  expect(up.lastError).toBeUndefined();
  expect(up.retryAt).toBeUndefined();
  expect(up.failures).toBe(0);
});
