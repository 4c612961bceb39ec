import { describe, expect, test } from "bun:test";
import type { ProcessStats } from "../../src/host/process-stats.ts";
import { offlineSnapshot } from "../../src/status/collect.ts";
import { metricFamilies, renderMetrics } from "../../src/status/metrics.ts";
import { renderStatus } from "../../src/status/render.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { CONNECT_FAILURE_REASONS, DISCONNECT_REASONS } from "../../src/supervisor/down-reason.ts";
import { makeIdentity } from "../identity/fixtures.ts";
import { promtoolCheck, promtoolSkipReason } from "../support/promtool.ts";

const build = { version: "1.2.3", commit: "abc", target: "linux-x64" };
const stats: ProcessStats = {
  cpuSeconds: 1.5,
  residentBytes: 50_000_000,
  virtualBytes: 6_000_000_000,
  startTimeSeconds: 1_796_000_000.25,
  openFds: 12,
  maxFds: 1_048_576,
};

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
  bytes: { toCloud: 1000, fromCloud: 2000 },
};

/** A running daemon's view: one tunnel up, one failing to dial, counters, apps. */
const live: StatusSnapshot = {
  ...snapshot,
  state: "degraded",
  tunnels: [
    { gateway: "gw-a.example:443", state: "up", since: "2026-01-01T00:00:00Z", rttMs: 12, failures: 0 },
    {
      gateway: "gw-b.example:443",
      state: "down",
      since: "2026-01-01T00:00:00Z",
      rttMs: null,
      failures: 3,
      lastError: {
        code: "TUNNEL_TLS_CLOCK",
        message: "certificate expired",
        after: "connect",
        at: "2026-01-01T00:00:00Z",
      },
      retryAt: "2026-01-01T00:00:30Z",
    },
  ],
  redundancy: { distinctGateways: 1, tunnels: 2, gatewaysKnown: 2 },
  tunnelCounters: {
    connects: 4,
    reconnects: 2,
    connectFailures: { TUNNEL_TLS_CLOCK: 3 },
    disconnects: { TUNNEL_DEAD: 1 },
  },
  apps: [{ name: "echo", servers: [{ address: "10.0.0.1:7", healthy: true }] }],
};

test("metrics count BUSY answers by the bound hit and streams the connector reset, by reason", () => {
  const text = renderMetrics(snapshot, build);
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

describe("names follow the Prometheus conventions", () => {
  const families = metricFamilies(live, build, stats);
  const units = ["seconds", "bytes", "ratio", "celsius", "volts", "amperes", "joules", "grams", "meters"];
  const nonBase = /(^|_)(ms|milliseconds|microseconds|minutes|hours|days|kb|kilobytes|mb|megabytes|percent)(_|$)/;

  test("every family has a snake_case name, help, and a known type", () => {
    expect(families.length).toBeGreaterThan(20);
    for (const f of families) {
      expect(f.name).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
      expect(f.name.startsWith("connector_") || f.name.startsWith("process_")).toBe(true);
      expect(f.help.length).toBeGreaterThan(5);
      expect(["gauge", "counter"]).toContain(f.type);
    }
    expect(new Set(families.map((f) => f.name)).size).toBe(families.length);
  });

  test("counters end in _total and nothing else does", () => {
    for (const f of families) expect([f.name, f.name.endsWith("_total")]).toEqual([f.name, f.type === "counter"]);
  });

  test("a unit is the last word of the name (before _total), in base units", () => {
    for (const f of families) {
      const words = f.name.replace(/_total$/, "").split("_");
      const unitAt = words.findIndex((w) => units.includes(w));
      if (unitAt >= 0) expect([f.name, unitAt]).toEqual([f.name, words.length - 1]);
      expect([f.name, nonBase.test(f.name)]).toEqual([f.name, false]);
    }
  });

  test("times are _timestamp_seconds or _seconds; build info is an _info gauge of 1", () => {
    for (const f of families.filter((f) => /time|expiry|retry|rtt/.test(f.name)))
      expect(f.name).toMatch(/_seconds(_total)?$/);
    const info = families.find((f) => f.name.endsWith("_info"));
    expect(info?.type).toBe("gauge");
    expect(info?.samples.map(([, v]) => v)).toEqual([1]);
  });

  test("the renamed byte counters are gone under their old names", () => {
    const text = renderMetrics(live, build, stats);
    expect(text).not.toContain("connector_bytes_to_cloud_total");
    expect(text).not.toContain("connector_bytes_from_cloud_total");
    expect(text).toContain("connector_stream_sent_bytes_total 1000");
    expect(text).toContain("connector_stream_received_bytes_total 2000");
  });

  test.skipIf(promtoolSkipReason() !== "")("promtool check metrics finds no problem", async () => {
    const result = await promtoolCheck(renderMetrics(live, build, stats));
    expect(result).toEqual({ exitCode: 0, output: "" });
  });
});

describe("labels known up front start at 0", () => {
  const fresh: StatusSnapshot = {
    ...offlineSnapshot(makeIdentity("conn-8")),
    tunnelCounters: { connects: 0, reconnects: 0, connectFailures: {}, disconnects: {} },
  };
  const text = renderMetrics(fresh, build);

  test("every connect-failure and disconnect reason", () => {
    for (const reason of Object.keys(CONNECT_FAILURE_REASONS))
      expect(text).toContain(`connector_tunnel_connect_failures_total{reason="${reason}"} 0\n`);
    for (const reason of Object.keys(DISCONNECT_REASONS))
      expect(text).toContain(`connector_tunnel_disconnects_total{reason="${reason}"} 0\n`);
    expect(text).toContain("connector_tunnel_connects_total 0\n");
    expect(text).toContain("connector_tunnel_reconnects_total 0\n");
  });

  test("every stream open-failure code, busy bound and reset reason", () => {
    for (const code of ["NOT_ALLOWED", "BUSY", "DNS_FAILURE", "REFUSED", "TIMEOUT", "UNREACHABLE", "INTERNAL"])
      expect(text).toContain(`connector_stream_open_failures_total{reason="${code}"} 0\n`);
    for (const limit of ["streams", "dials", "fds", "buffered"])
      expect(text).toContain(`connector_stream_busy_total{limit="${limit}"} 0\n`);
    for (const reason of ["notAllowed", "idle"])
      expect(text).toContain(`connector_streams_ended_total{reason="${reason}"} 0\n`);
    // CANCELLED (the stream went away first) is not a failure the connector counts.
    expect(text).not.toContain('reason="CANCELLED"');
  });
});

describe("tunnels", () => {
  test("counters by reason, and why each tunnel that is not up is down", () => {
    const text = renderMetrics(live, build);
    expect(text).toContain("connector_tunnel_connects_total 4\n");
    expect(text).toContain("connector_tunnel_reconnects_total 2\n");
    expect(text).toContain('connector_tunnel_connect_failures_total{reason="TUNNEL_TLS_CLOCK"} 3\n');
    expect(text).toContain('connector_tunnel_disconnects_total{reason="TUNNEL_DEAD"} 1\n');
    expect(text).toContain(
      'connector_tunnel_down_reason{tunnel="1",gateway="gw-b.example:443",reason="TUNNEL_TLS_CLOCK"} 1\n',
    );
    expect(text).not.toContain('connector_tunnel_down_reason{tunnel="0"');
    expect(text).toContain('connector_tunnel_consecutive_failures{tunnel="1",gateway="gw-b.example:443"} 3\n');
    expect(text).toContain(
      `connector_tunnel_retry_timestamp_seconds{tunnel="1",gateway="gw-b.example:443"} ${Date.parse("2026-01-01T00:00:30Z") / 1000}\n`,
    );
    expect(text).toContain('connector_tunnel_rtt_seconds{tunnel="0",gateway="gw-a.example:443"} 0.012\n');
  });

  test("a down reason outside the closed lists is labelled OTHER, never with its text", () => {
    const odd: StatusSnapshot = {
      ...live,
      tunnels: [
        {
          ...live.tunnels[1]!,
          lastError: { code: 'evil"} 1\nx', message: "from a gateway", after: "up", at: "2026-01-01T00:00:00Z" },
        },
      ],
    };
    const text = renderMetrics(odd, build);
    expect(text).toContain('connector_tunnel_down_reason{tunnel="0",gateway="gw-b.example:443",reason="OTHER"} 1\n');
    expect(text).not.toContain("evil");
  });
});

test("label values are escaped: an app name cannot break a line or add a series", () => {
  const text = renderMetrics(
    { ...live, apps: [{ name: 'a"b\\c\nd', servers: [{ address: "10.0.0.1:7", healthy: false }] }] },
    build,
  );
  expect(text).toContain('connector_app_server_healthy{app="a\\"b\\\\c\\nd",server="10.0.0.1:7"} 0\n');
});

test("process_* series when the stats are known, none otherwise (never a made-up 0)", () => {
  const text = renderMetrics(live, build, stats);
  expect(text).toContain("process_cpu_seconds_total 1.5\n");
  expect(text).toContain("process_resident_memory_bytes 50000000\n");
  expect(text).toContain("process_virtual_memory_bytes 6000000000\n");
  expect(text).toContain("process_start_time_seconds 1796000000.25\n");
  expect(text).toContain("process_open_fds 12\n");
  expect(text).toContain("process_max_fds 1048576\n");
  expect(renderMetrics(live, build, { ...stats, maxFds: undefined })).not.toContain("process_max_fds");
  expect(renderMetrics(live, build)).not.toContain("process_");
});
