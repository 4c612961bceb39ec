/**
 * The metrics listener (`run --metrics HOST:PORT`): `/metrics` (Prometheus text), `/healthz` (the
 * process answers) and `/readyz` (at least one tunnel is up). The metrics name apps and internal
 * addresses, so the listener is meant for loopback and answers only requests whose Host header names
 * it: a web page in a browser on this host could otherwise read them through DNS rebinding (its own
 * name re-pointed at 127.0.0.1), since the browser sends that name as Host.
 *
 * The health listener (`run --health HOST:PORT`): `/healthz` and `/readyz` only, for orchestrator probes,
 * which may reach it off loopback. It is given whether the connector is ready, never the status, so no
 * answer can carry a name; with nothing to leak it takes any Host (probes send the pod's address).
 */
import { readProcessStats, type ProcessStats } from "../host/process-stats.ts";
import { EXPOSITION_CONTENT_TYPE } from "./exposition.ts";
import { type BuildLabels, renderMetrics } from "./metrics.ts";
import type { StatusSnapshot } from "./schema.ts";

export interface MetricsServer {
  /** `http://HOST:PORT` with the port bound (the one asked for, or the kernel's pick for 0). */
  readonly url: string;
  stop(): void;
}

/** Splits `HOST:PORT` (`[v6]:PORT` too) into a host without brackets and a port. */
export function splitListen(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port: Number(address.slice(colon + 1)) };
}

/** True for 127.0.0.0/8, ::1 and localhost: metrics carry app names and internal addresses. */
export function isLoopbackListen(address: string): boolean {
  const host = splitListen(address).host.toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIpLiteral = (host: string) => IPV4.test(host) || host.includes(":");
const WILDCARD = new Set(["0.0.0.0", "::"]);

/**
 * Which Host headers name this listener, always with its port (80 when the header has none): the host
 * it was given; `localhost` when that is loopback; an IP literal equal to it, or any IP literal when
 * it is a name or a wildcard (the address it bound is not known then, and an IP literal is never what
 * a rebound page sends: its origin is its own DNS name). A missing Host passes: browsers always send one.
 */
export function hostChecker(listenHost: string, port: number): (header: string | null) => boolean {
  const listen = listenHost.toLowerCase();
  const loopback = isLoopbackListen(`${listen}:${port}`);
  const anyIp = WILDCARD.has(listen) || !isIpLiteral(listen);
  return (header) => {
    if (header === null) return true;
    const match = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(header.trim().toLowerCase());
    if (!match) return false;
    const host = match[1]!.replace(/^\[(.*)\]$/, "$1");
    if (Number(match[2] ?? 80) !== port) return false;
    if (host === listen || (loopback && host === "localhost")) return true;
    return anyIp && isIpLiteral(host);
  };
}

function ready(up: boolean): Response {
  return new Response(up ? "ready\n" : "not ready\n", { status: up ? 200 : 503 });
}

const NOT_FOUND = () => new Response("not found\n", { status: 404 });

export interface MetricsServerOptions {
  /** The process's stats per scrape; /proc by default. */
  readonly processStats?: () => ProcessStats | undefined;
}

/** Serves /metrics, /healthz and /readyz on `address`; throws when it cannot be bound. */
export function startMetricsServer(
  address: string,
  snapshot: () => StatusSnapshot,
  build: BuildLabels,
  options: MetricsServerOptions = {},
): MetricsServer {
  const { host, port } = splitListen(address);
  const stats = options.processStats ?? (() => readProcessStats());
  let allowed: (host: string | null) => boolean = () => false;
  const server = Bun.serve({
    hostname: host,
    port,
    fetch(request) {
      if (!allowed(request.headers.get("host")))
        return new Response("misdirected request: the Host header does not name this listener\n", { status: 421 });
      const { pathname } = new URL(request.url);
      if (pathname === "/metrics")
        return new Response(renderMetrics(snapshot(), build, stats()), {
          headers: { "content-type": EXPOSITION_CONTENT_TYPE },
        });
      if (pathname === "/healthz") return new Response("ok\n");
      if (pathname === "/readyz") return ready(snapshot().tunnels.some((t) => t.state === "up"));
      return NOT_FOUND();
    },
  });
  const bound = server.port ?? port;
  allowed = hostChecker(host, bound);
  return { url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`, stop: () => server.stop(true) };
}

/** Serves only /healthz and /readyz on `address`; `isReady`: at least one tunnel is up. */
export function startHealthServer(address: string, isReady: () => boolean): MetricsServer {
  const { host, port } = splitListen(address);
  const server = Bun.serve({
    hostname: host,
    port,
    fetch(request) {
      const { pathname } = new URL(request.url);
      if (pathname === "/healthz") return new Response("ok\n");
      if (pathname === "/readyz") return ready(isReady());
      return NOT_FOUND();
    },
  });
  const bound = server.port ?? port;
  return { url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`, stop: () => server.stop(true) };
}
