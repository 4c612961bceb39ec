import { describe, expect, test } from "bun:test";
import { formatBytes, formatDuration, renderStatus } from "../../src/status/render.ts";
import { offlineSnapshot } from "../../src/status/collect.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const NOW = new Date("2026-01-01T00:00:00Z");

describe("renderStatus", () => {
  test("not enrolled says how to enroll", () => {
    const text = renderStatus(offlineSnapshot(undefined), NOW);
    expect(text).toContain("state          not-enrolled");
    expect(text).toContain("connector enroll");
    expect(text).toContain("certificate    none");
  });

  test("not running shows id, name, group, expiry in days and how to start", () => {
    const snapshot = {
      ...offlineSnapshot(makeIdentity("conn-7")),
      certificate: { notAfter: "2026-01-31T12:00:00.000Z" },
    };
    const text = renderStatus(snapshot, NOW);
    expect(text).toContain('connector      conn-7 "host-conn-7" (group group-a)');
    expect(text).toContain("state          not-running");
    expect(text).toContain("certificate    expires 2026-01-31 (in 30 days)");
    expect(text).toContain("control plane  https://127.0.0.1:8443 (not connected)");
    expect(text).toContain("streams        created 0, closed 0, active 0");
    expect(text).toContain("bytes          to cloud 0 B, from cloud 0 B");
  });

  test("the access token's expiry and refresh are shown, or why refreshing fails; nothing without a daemon", () => {
    const base = offlineSnapshot(makeIdentity("conn-7"));
    expect(renderStatus(base, NOW)).not.toContain("access token");
    const ok = {
      ...base,
      accessToken: { expiresAt: "2026-01-01T00:10:00.000Z", refreshAt: "2026-01-01T00:06:40.000Z" },
    };
    expect(renderStatus(ok, NOW)).toContain("access token   expires in 10 min; refreshes in 6 min");
    const failing = {
      ...base,
      accessToken: {
        expiresAt: "2026-01-01T00:10:00.000Z",
        refreshAt: "2026-01-01T00:07:00.000Z",
        error: "CONNECTION_REFUSED: …",
      },
    };
    expect(renderStatus(failing, NOW)).toContain("; refresh failing (CONNECTION_REFUSED: …), next try in 7 min");
    expect(renderStatus({ ...base, accessToken: { expiresAt: null } }, NOW)).toContain("access token   none yet");
  });

  test("an expired certificate says so", () => {
    const snapshot = {
      ...offlineSnapshot(makeIdentity("conn-7")),
      certificate: { notAfter: "2025-12-30T00:00:00.000Z" },
    };
    expect(renderStatus(snapshot, NOW)).toContain("expired 2 days ago");
  });

  test("a stored app catalog in use says so, with its age", () => {
    const base = offlineSnapshot(makeIdentity("conn-7"));
    const stored = renderStatus(
      { ...base, catalog: { source: "stored", version: "v3", fetchedAt: "2025-12-31T22:30:00.000Z" } },
      NOW,
    );
    expect(stored).toContain("app catalog    version v3, stored copy fetched 1 h 30 min ago (");
    expect(
      renderStatus({ ...base, catalog: { source: "control-plane", version: "v4", fetchedAt: NOW.toISOString() } }, NOW),
    ).toContain("app catalog    version v4\n");
  });

  test("tunnels and apps are listed one per line", () => {
    const snapshot: StatusSnapshot = {
      ...offlineSnapshot(makeIdentity("conn-7")),
      state: "degraded",
      tunnels: [
        { gateway: "gw-1", state: "up", since: "2025-12-31T21:48:00Z", rttMs: 12.4, streams: 3 },
        {
          gateway: "gw-2",
          state: "down",
          since: "2025-12-31T23:59:15Z",
          rttMs: null,
          failures: 3,
          lastError: {
            code: "TUNNEL_REFUSED",
            message: "gateway gw-2:443 refused the connection (ECONNREFUSED)",
            after: "connect",
            at: "2025-12-31T23:59:15Z",
          },
          retryAt: "2026-01-01T00:00:12Z",
        },
        {
          gateway: "gw-3",
          state: "connecting",
          since: "2025-12-31T23:59:58Z",
          rttMs: null,
          failures: 1,
          lastError: { code: "TUNNEL_DEAD", message: "tunnel dead", after: "up", at: "2025-12-31T23:59:50Z" },
        },
      ],
      pid: 4242,
      uptimeSeconds: 3 * 86_400 + 5 * 3600 + 600,
      tunnelCounters: {
        connects: 5,
        reconnects: 2,
        connectFailures: { TUNNEL_DNS: 0, TUNNEL_REFUSED: 3 },
        disconnects: { TUNNEL_DEAD: 1, CONNECTOR_CLOSED: 4 },
      },
      apps: [
        {
          name: "wiki",
          servers: [
            { address: "10.0.0.1:443", healthy: true },
            { address: "10.0.0.2:443", healthy: false },
          ],
        },
      ],
      bytes: { toCloud: 1536, fromCloud: 3 * 1024 * 1024 },
    };
    const text = renderStatus(snapshot, NOW);
    expect(text).toContain("version        0.0.0-dev (pid 4242, up 3 d 5 h)");
    expect(text).toContain("tunnels        1 of 3 up");
    expect(text).toContain("  #0 gw-1  up 2 h 12 min, rtt 12 ms, 3 streams");
    expect(text).toContain(
      "  #1 gw-2  down 45 s: TUNNEL_REFUSED (dial failed) gateway gw-2:443 refused the connection (ECONNREFUSED); retry in 12 s, 3 failures in a row",
    );
    expect(text).toContain("  #2 gw-3  connecting 2 s: TUNNEL_DEAD (was up) tunnel dead\n");
    // Reasons with no occurrence and the connector's own closes are left out.
    expect(text).toContain("since start    2 reconnects; dials failed: TUNNEL_REFUSED 3; went down: TUNNEL_DEAD 1\n");
    expect(text).toContain("  wiki: 10.0.0.1:443 healthy, 10.0.0.2:443 UNHEALTHY");
    expect(text).toContain("to cloud 1.5 KiB, from cloud 3.0 MiB");
  });
  test("tunnels sharing a gateway although another is known: the state line and a redundancy line say so", () => {
    const snapshot: StatusSnapshot = {
      ...offlineSnapshot(makeIdentity("conn-7")),
      state: "degraded",
      tunnels: [
        { gateway: "gw-1", state: "up", since: "2026-01-01T00:00:00Z", rttMs: 1 },
        { gateway: "gw-1", state: "up", since: "2026-01-01T00:00:00Z", rttMs: 1 },
      ],
      redundancy: { distinctGateways: 1, tunnels: 2, gatewaysKnown: 2 },
    };
    const text = renderStatus(snapshot, NOW);
    expect(text).toContain(
      "state          degraded — all tunnels up, but they share a gateway although another is known",
    );
    expect(text).toContain("redundancy     2 tunnels up on 1 gateway (2 known): LOST, tunnels share a gateway");
    const spread = renderStatus(
      { ...snapshot, state: "connected", redundancy: { distinctGateways: 2, tunnels: 2, gatewaysKnown: 2 } },
      NOW,
    );
    expect(spread).toContain("redundancy     2 tunnels up on 2 gateways (2 known)\n");
  });
});

describe("formatBytes", () => {
  test("uses binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1.0 KiB");
    expect(formatBytes(5 * 1024 ** 3)).toBe("5.0 GiB");
  });
});

describe("formatDuration", () => {
  test("two units at most, whole numbers", () => {
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(59_400)).toBe("59 s");
    expect(formatDuration(60_000)).toBe("1 min");
    expect(formatDuration(3_599_000)).toBe("59 min");
    expect(formatDuration(3_600_000)).toBe("1 h");
    expect(formatDuration(3 * 3_600_000 + 12 * 60_000 + 5_000)).toBe("3 h 12 min");
    expect(formatDuration(2 * 86_400_000)).toBe("2 d");
    expect(formatDuration(4 * 86_400_000 + 2 * 3_600_000)).toBe("4 d 2 h");
    expect(formatDuration(-5_000)).toBe("0 s");
  });
});
