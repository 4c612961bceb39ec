import { expect, test } from "bun:test";
import { offlineSnapshot } from "../../src/status/collect.ts";
import { renderMetrics } from "../../src/status/metrics.ts";
import { renderStatus } from "../../src/status/render.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const snapshot: StatusSnapshot = {
  ...offlineSnapshot(makeIdentity("conn-7")),
  streams: {
    created: 10,
    closed: 4,
    active: 6,
    failures: { BUSY: 5 },
    busy: { streams: 2, fds: 3, dials: 0 },
    ended: { notAllowed: 1, idle: 0 },
  },
};

test("metrics count BUSY answers by the bound hit and streams the connector reset, by reason", () => {
  const text = renderMetrics(snapshot, { version: "1", commit: "c", target: "t" });
  expect(text).toContain('connector_stream_busy_total{limit="streams"} 2');
  expect(text).toContain('connector_stream_busy_total{limit="fds"} 3');
  expect(text).toContain('connector_streams_ended_total{reason="notAllowed"} 1');
  expect(text).toContain('connector_stream_open_failures_total{reason="BUSY"} 5');
});

test("status shows the bounds hit and the streams the connector reset (zeros left out)", () => {
  const text = renderStatus(snapshot, new Date("2026-01-01T00:00:00Z"));
  expect(text).toContain(
    "streams        created 10, closed 4, active 6; failed to open: busy 5; busy (limit hit): streams 2, fds 3; reset by connector: notAllowed 1",
  );
});
