import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { offlineSnapshot } from "../../src/status/collect.ts";
import {
  hostChecker,
  isLoopbackListen,
  type MetricsServer,
  startMetricsServer,
} from "../../src/status/metrics-server.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const build = { version: "1.2.3", commit: "abc", target: "linux-x64" };
let snapshot: StatusSnapshot = offlineSnapshot(makeIdentity("conn-1"));
let server: MetricsServer;
let port: number;

beforeAll(() => {
  server = startMetricsServer("127.0.0.1:0", () => snapshot, build, {
    processStats: () => ({ cpuSeconds: 1, residentBytes: 2, virtualBytes: 3, startTimeSeconds: 4 }),
  });
  port = Number(new URL(server.url).port);
});
afterAll(() => server?.stop());

function get(path: string, host?: string): Promise<Response> {
  return fetch(`${server.url}${path}`, host === undefined ? {} : { headers: { host } });
}

describe("the metrics listener", () => {
  test("serves the text format with its version and charset, and the process series", async () => {
    expect(server.url).toBe(`http://127.0.0.1:${port}`);
    expect(port).toBeGreaterThan(0);
    const response = await get("/metrics");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await response.text();
    expect(text).toContain("connector_tunnels_up 0\n");
    expect(text).toContain("process_resident_memory_bytes 2\n");
  });

  test("/healthz answers while the process runs; /readyz only while a tunnel is up", async () => {
    expect([(await get("/healthz")).status, await (await get("/healthz")).text()]).toEqual([200, "ok\n"]);
    expect((await get("/readyz")).status).toBe(503);
    const up = { gateway: "gw:443", state: "up" as const, since: "2026-01-01T00:00:00Z", rttMs: 1 };
    snapshot = { ...snapshot, tunnels: [up] };
    expect([(await get("/readyz")).status, await (await get("/readyz")).text()]).toEqual([200, "ready\n"]);
  });

  test("any other path is 404", async () => {
    expect((await get("/")).status).toBe(404);
    expect((await get("/v1/status")).status).toBe(404);
  });

  test("a Host header naming another site is refused (DNS rebinding), on every path", async () => {
    for (const path of ["/metrics", "/healthz", "/readyz", "/"]) {
      const response = await get(path, `attacker.example:${port}`);
      expect(response.status).toBe(421);
      const body = await response.text();
      expect(body).toContain("Host");
      expect(body).not.toContain("connector_");
    }
    expect((await get("/metrics", `127.0.0.1:${port + 1}`)).status).toBe(421);
    expect((await get("/metrics", `localhost:${port}`)).status).toBe(200);
    expect((await get("/metrics", `LOCALHOST:${port}`)).status).toBe(200);
    expect((await get("/metrics", `127.0.0.1:${port}`)).status).toBe(200);
  });
});

describe("which Host headers name a listener", () => {
  test("a loopback IP: that IP and localhost, with the port", () => {
    const ok = hostChecker("127.0.0.1", 9300);
    expect(["127.0.0.1:9300", "localhost:9300", "Localhost:9300", null].map(ok)).toEqual([true, true, true, true]);
    const refused = ["localhost", "localhost:9301", "127.0.0.2:9300", "evil.example:9300", "127.0.0.1.nip.io:9300"];
    expect(refused.map(ok)).toEqual(refused.map(() => false));
    expect(["", "a b", "[::1:9300", "localhost:9300:1", "user@localhost:9300"].map(ok).some(Boolean)).toBe(false);
  });

  test("IPv6 loopback, bracketed in the header", () => {
    const ok = hostChecker("::1", 9300);
    expect(["[::1]:9300", "localhost:9300", "::1:9300", "[::2]:9300"].map(ok)).toEqual([true, true, false, false]);
  });

  test("listening on the name localhost: the name and IP literals, not another name", () => {
    const ok = hostChecker("localhost", 9300);
    expect(["localhost:9300", "127.0.0.1:9300", "[::1]:9300", "rebound.example:9300"].map(ok)).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  test("a wildcard listener: any IP literal of the port, no name", () => {
    const ok = hostChecker("0.0.0.0", 9300);
    expect(["10.1.2.3:9300", "[fd00::1]:9300", "0.0.0.0:9300", "host.example:9300", "localhost:9300"].map(ok)).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  test("a specific address off loopback: that address only; port 80 may be left out", () => {
    const ok = hostChecker("10.0.0.5", 80);
    expect(["10.0.0.5", "10.0.0.5:80", "10.0.0.6:80", "localhost:80"].map(ok)).toEqual([true, true, false, false]);
  });

  test("loopback or not", () => {
    expect(["127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "localhost:1", "LOCALHOST:1"].every(isLoopbackListen)).toBe(true);
    expect(["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.com:1"].some(isLoopbackListen)).toBe(false);
  });
});
