/**
 * The compiled daemon's metrics and health listeners against the reference cloud: a real scrape passes
 * Prometheus's own lint (`promtool check metrics`), tunnel failures show as counters by reason and as
 * the reason a tunnel is down, the metrics listener refuses a Host header that does not name it, and
 * the health listener answers probes without naming anything.
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { freeLoopbackPort } from "../support/ports.ts";
import { roundTrip } from "../support/apps.ts";
import type { CloudProcess } from "../support/cloud-process.ts";
import { type DaemonProcess, startDaemon } from "../support/daemon-process.ts";
import { promtoolCheck, promtoolSkipReason } from "../support/promtool.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { until } from "../support/wait.ts";

/** A second app whose name and address must never reach the health listener. */
const SECRET_APP = "payroll-db";
const SECRET_ADDRESS = "10.77.66.55:5432";

let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;
let metricsUrl: string;
let healthUrl: string;

const scrape = async () => {
  const response = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(30_000) });
  expect(response.status).toBe(200);
  return { contentType: response.headers.get("content-type"), text: await response.text() };
};

/** The value of one series (exact name and labels) in a scrape, or undefined. */
function sampleOf(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  const metrics = `127.0.0.1:${freeLoopbackPort()}`;
  const health = `127.0.0.1:${freeLoopbackPort()}`;
  metricsUrl = `http://${metrics}`;
  healthUrl = `http://${health}`;
  stack = await startStack({
    gateways: 2,
    extraApps: [`${SECRET_APP}=${SECRET_ADDRESS}`],
    daemons: [{ extraArgs: ["--metrics", metrics, "--health", health] }],
  });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

describe("metrics", () => {
  test("a real scrape: conventions, content type, traffic counted, process series", async () => {
    const payload = new TextEncoder().encode("counted by the metrics");
    expect(new TextDecoder().decode(await roundTrip(stack.echoListen, payload))).toBe("counted by the metrics");
    const { text } = await until(
      "the round trip's bytes in the metrics",
      async () => {
        const s = await scrape();
        return (sampleOf(s.text, "connector_stream_sent_bytes_total") ?? 0) >= payload.byteLength ? s : undefined;
      },
      30_000,
    );
    const { contentType } = await scrape();
    expect(contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(sampleOf(text, "connector_tunnels_up")).toBe(2);
    expect(sampleOf(text, "connector_tunnel_connects_total")).toBeGreaterThanOrEqual(2);
    expect(sampleOf(text, 'connector_tunnel_connect_failures_total{reason="TUNNEL_DNS"}')).toBe(0);
    expect(sampleOf(text, 'connector_tunnel_disconnects_total{reason="TUNNEL_DEAD"}')).toBe(0);
    expect(sampleOf(text, 'connector_stream_open_failures_total{reason="REFUSED"}')).toBe(0);
    expect(sampleOf(text, "connector_stream_received_bytes_total")).toBeGreaterThanOrEqual(payload.byteLength);
    expect(sampleOf(text, "connector_streams_created_total")).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain("connector_bytes_to_cloud_total");
    expect(sampleOf(text, "process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
    expect(sampleOf(text, "process_open_fds")).toBeGreaterThan(3);
    // Started during this file's setup: within the last 10 minutes, not in the future.
    const age = Date.now() / 1000 - sampleOf(text, "process_start_time_seconds")!;
    expect(age).toBeGreaterThan(-5);
    expect(age).toBeLessThan(600);
    expect(text).toMatch(/^connector_build_info\{version="[^"]+",commit="[^"]+",target="[^"]+"\} 1$/m);
  }, 60_000);

  describe.skipIf(promtoolSkipReason() !== "")("promtool", () => {
    test("promtool check metrics passes the real scrape with no lint problem", async () => {
      const { text } = await scrape();
      expect(await promtoolCheck(text)).toEqual({ exitCode: 0, output: "" });
    }, 30_000);
  });

  test("a Host header that does not name the listener is refused (DNS rebinding)", async () => {
    const port = new URL(metricsUrl).port;
    const rebound = await fetch(`${metricsUrl}/metrics`, { headers: { host: `rebound.example:${port}` } });
    expect(rebound.status).toBe(421);
    expect(await rebound.text()).not.toContain("connector_");
    const local = await fetch(`${metricsUrl}/metrics`, { headers: { host: `localhost:${port}` } });
    expect(local.status).toBe(200);
    await local.text();
  });

  test("a cut and refused tunnel: disconnects and connect failures by reason, and why it is down", async () => {
    const version = (await daemon.status()).snapshot!.version;
    await cloud.refuseVersion(version);
    const victim = cloud.gateways[0]!;
    await cloud.killGateway(victim.id);
    // First the reason it went down (the cut), then, once its redial failed, the reason it stays down:
    // the killed gateway refuses the dial, the live one answers 403 to this version.
    const downReason =
      /^connector_tunnel_down_reason\{tunnel="\d",gateway="[^"]+",reason="(TUNNEL_REFUSED|TUNNEL_FORBIDDEN)"\} 1$/m;
    const down = await until(
      "a tunnel down because its redial failed, in the metrics",
      async () => {
        const { text } = await scrape();
        return downReason.test(text) ? text : undefined;
      },
      60_000,
      () => stack.logs(),
    );
    const reason = downReason.exec(down)![1]!;
    expect(sampleOf(down, `connector_tunnel_connect_failures_total{reason="${reason}"}`)).toBeGreaterThanOrEqual(1);
    const disconnects = [...down.matchAll(/^connector_tunnel_disconnects_total\{reason="([A-Z_]+)"\} (\d+)$/gm)];
    expect(disconnects.reduce((n, m) => n + Number(m[2]), 0)).toBeGreaterThanOrEqual(1);
    expect(sampleOf(down, "connector_tunnels_up")).toBe(1);
    if (promtoolSkipReason() === "") expect(await promtoolCheck(down)).toEqual({ exitCode: 0, output: "" });
    // Still ready: one tunnel serves.
    expect((await fetch(`${healthUrl}/readyz`)).status).toBe(200);

    await cloud.allowVersion(version);
    await cloud.restartGateway(victim.id);
    const back = await until(
      "both tunnels up again, counted as a reconnect",
      async () => {
        const { text } = await scrape();
        return sampleOf(text, "connector_tunnels_up") === 2 &&
          (sampleOf(text, "connector_tunnel_reconnects_total") ?? 0) >= 1
          ? text
          : undefined;
      },
      90_000,
      () => stack.logs(),
    );
    expect(back).not.toContain("connector_tunnel_down_reason{");
  }, 180_000);
});

describe("the health listener", () => {
  const names = () => [
    SECRET_APP,
    SECRET_ADDRESS,
    "echo",
    stack.echo.address,
    ...cloud.gateways.map((g) => new URL(g.url).host),
    daemon.stateDir,
  ];

  test("/healthz and /readyz answer and name no app, address, gateway or connector", async () => {
    const connectorId = (await daemon.status()).snapshot!.connectorId!;
    const seen: string[] = [];
    for (const path of ["/healthz", "/readyz"]) {
      const response = await fetch(`${healthUrl}${path}`);
      expect([path, response.status]).toEqual([path, 200]);
      seen.push(`${[...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n${await response.text()}`);
    }
    expect(seen.join("\n")).toContain("ready\n");
    for (const name of [...names(), connectorId]) expect([name, seen.join("\n").includes(name)]).toEqual([name, false]);
  });

  test("no metrics there: every other path is 404 naming nothing", async () => {
    for (const path of ["/metrics", "/", "/v1/status"]) {
      const response = await fetch(`${healthUrl}${path}`);
      const body = await response.text();
      expect([path, response.status, body]).toEqual([path, 404, "not found\n"]);
    }
  });
});

test("a health address that cannot be bound stops start-up with LISTEN_FAILED naming it", async () => {
  const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const address = `127.0.0.1:${taken.port}`;
  try {
    const failing = await startDaemon({ key: cloud.provisioningKey, extraArgs: ["--health", address] });
    const code = await until(
      "the daemon to exit",
      () => failing.proc.exitCode ?? undefined,
      60_000,
      () => failing.output(),
    );
    expect(code).toBe(1);
    expect(failing.output()).toContain(`cannot serve health on ${address}`);
    expect(failing.output()).toContain("[LISTEN_FAILED]");
    await failing.stop();
  } finally {
    taken.stop(true);
  }
}, 90_000);
