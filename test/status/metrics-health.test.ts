/**
 * The `--health` listener as the daemon wires it (LocalServers with the production servers, no
 * daemon): it answers probes and names nothing, however many names the status holds; a port it
 * cannot bind fails start-up with a clear error.
 */
import { afterEach, expect, test } from "bun:test";
import { systemClock } from "../../src/clock.ts";
import { ListenError, LocalServers } from "../../src/daemon/local-servers.ts";
import { offlineSnapshot } from "../../src/status/collect.ts";
import { startHealthServer, startMetricsServer } from "../../src/status/metrics-server.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { recordingLog } from "../daemon/daemon-fakes.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const SECRETS = ["payroll-db", "10.20.30.40", "db.internal.example", "gw-secret.example", "conn-health", "hr-portal"];

function fullOfNames(up: boolean): StatusSnapshot {
  return {
    ...offlineSnapshot(makeIdentity("conn-health")),
    state: up ? "connected" : "disconnected",
    name: "hr-portal",
    tunnels: [
      {
        gateway: "gw-secret.example:443",
        state: up ? "up" : "down",
        since: "2026-01-01T00:00:00Z",
        rttMs: up ? 3 : null,
        ...(up
          ? {}
          : {
              lastError: {
                code: "TUNNEL_DNS",
                message: "db.internal.example",
                after: "connect" as const,
                at: "2026-01-01T00:00:00Z",
              },
            }),
      },
    ],
    apps: [
      { name: "payroll-db", servers: [{ address: "10.20.30.40:5432", healthy: true }] },
      { name: "hr-portal", servers: [{ address: "db.internal.example:443", healthy: false }] },
    ],
  };
}

let servers: LocalServers | undefined;
afterEach(() => servers?.stop());

function localServers(options: { metrics?: string; health?: string; snapshot: () => StatusSnapshot }) {
  const { log, lines } = recordingLog();
  servers = new LocalServers({
    deps: {
      servers: {
        admin: () => Promise.reject(new Error("not used")),
        metrics: (listen, snapshot) => startMetricsServer(listen, snapshot, { version: "1", commit: "c", target: "t" }),
        health: startHealthServer,
      },
      notifier: { enabled: false, send: () => undefined },
      pid: process.pid,
    },
    stateDir: "/nonexistent",
    metrics: options.metrics,
    health: options.health,
    snapshot: options.snapshot,
    log,
    clock: systemClock,
    signal: new AbortController().signal,
    successor: false,
  });
  return { servers, lines };
}

/** Everything a response shows: status, headers and body. */
async function shown(response: Response): Promise<string> {
  return `${response.status}\n${[...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n\n${await response.text()}`;
}

function healthUrl(lines: string[]): string {
  const line = lines.find((l) => l.includes("health probes served"));
  const url = line && /"url":"(http:\/\/[^"]+)\/readyz"/.exec(line)?.[1];
  if (!url) throw new Error(`no health listener logged:\n${lines.join("\n")}`);
  return url;
}

test("the health listener answers /healthz and /readyz and names no app, address, gateway or connector", async () => {
  let up = false;
  const { lines } = localServers({ health: "127.0.0.1:0", snapshot: () => fullOfNames(up) });
  await servers!.startListeners();
  const url = healthUrl(lines);
  const answers: string[] = [];
  for (const state of [false, true]) {
    up = state;
    const healthz = await fetch(`${url}/healthz`);
    const readyz = await fetch(`${url}/readyz`);
    expect([healthz.status, readyz.status]).toEqual([200, up ? 200 : 503]);
    answers.push(await shown(healthz), await shown(readyz));
  }
  expect(answers.join("\n")).toContain("ready\n");
  for (const secret of SECRETS) expect(answers.join("\n")).not.toContain(secret);
});

test("every other path on the health listener is 404 with a body that names nothing (no metrics there)", async () => {
  const { lines } = localServers({ health: "127.0.0.1:0", snapshot: () => fullOfNames(true) });
  await servers!.startListeners();
  const url = healthUrl(lines);
  for (const path of ["/metrics", "/", "/v1/status", "/healthz/x", "/readyz?verbose=1x"]) {
    const response = await fetch(`${url}${path}`);
    if (path.startsWith("/readyz?")) {
      expect(response.status).toBe(200); // a query string does not change the path
      continue;
    }
    const text = await shown(response);
    expect([path, response.status]).toEqual([path, 404]);
    expect(text).toEndWith("\n\nnot found\n");
    for (const secret of [...SECRETS, "connector_"]) expect(text).not.toContain(secret);
  }
});

test("metrics and health on two ports at once; each stops with the daemon", async () => {
  const { lines } = localServers({ metrics: "127.0.0.1:0", health: "127.0.0.1:0", snapshot: () => fullOfNames(true) });
  await servers!.startListeners();
  const metricsLine = lines.find((l) => l.includes("metrics served"));
  const metricsUrl = /"url":"(http:\/\/[^"]+)"/.exec(metricsLine ?? "")?.[1];
  expect(metricsUrl).toBeDefined();
  expect(await (await fetch(metricsUrl!)).text()).toContain('app="payroll-db"');
  const url = healthUrl(lines);
  expect((await fetch(`${url}/readyz`)).status).toBe(200);
  servers!.stop();
  servers = undefined;
  expect(
    await fetch(`${url}/readyz`).then(
      () => "answered",
      () => "refused",
    ),
  ).toBe("refused");
});

test("a health address that cannot be bound fails start-up with LISTEN_FAILED naming it", async () => {
  const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const address = `127.0.0.1:${taken.port}`;
    localServers({ health: address, snapshot: () => fullOfNames(true) });
    const error = await servers!.startListeners().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ListenError);
    expect((error as ListenError).code).toBe("LISTEN_FAILED");
    expect((error as ListenError).message).toContain(`cannot serve health on ${address}`);
  } finally {
    taken.stop(true);
  }
});
