/**
 * Prometheus text exposition of the daemon's status (`run --metrics HOST:PORT`): tunnels up,
 * streams, bytes, open failures by reason, app health, certificate expiry and build info, plus
 * `/healthz` (the process answers) and `/readyz` (at least one tunnel is up).
 */
import type { StatusSnapshot } from "./schema.ts";

type Sample = readonly [labels: Record<string, string>, value: number];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function family(name: string, type: "gauge" | "counter", help: string, samples: readonly Sample[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) {
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",");
    lines.push(`${name}${text ? `{${text}}` : ""} ${Number.isFinite(value) ? value : 0}`);
  }
  return lines.join("\n");
}

export function renderMetrics(s: StatusSnapshot, build: { version: string; commit: string; target: string }): string {
  const notAfter = s.certificate.notAfter ? Date.parse(s.certificate.notAfter) / 1000 : 0;
  const families = [
    family("connector_build_info", "gauge", "Build of the running connector.", [
      [{ version: build.version, commit: build.commit, target: build.target }, 1],
    ]),
    family("connector_revoked", "gauge", "1 when the cloud revoked this connector.", [
      [{}, s.state === "revoked" ? 1 : 0],
    ]),
    family("connector_tunnels_up", "gauge", "Tunnels currently up.", [
      [{}, s.tunnels.filter((t) => t.state === "up").length],
    ]),
    family(
      "connector_tunnel_gateways",
      "gauge",
      "Distinct gateways the tunnels that are up use (fewer than tunnels and gateways known: redundancy lost).",
      s.redundancy ? [[{}, s.redundancy.distinctGateways]] : [],
    ),
    family(
      "connector_tunnel_up",
      "gauge",
      "1 when the tunnel to this gateway is up.",
      s.tunnels.map((t, slot) => [{ tunnel: String(slot), gateway: t.gateway }, t.state === "up" ? 1 : 0] as const),
    ),
    family(
      "connector_tunnel_rtt_seconds",
      "gauge",
      "Last PING round trip per tunnel.",
      s.tunnels.flatMap((t, slot) =>
        t.rttMs === null ? [] : [[{ tunnel: String(slot), gateway: t.gateway }, t.rttMs / 1000] as const],
      ),
    ),
    family("connector_streams_active", "gauge", "Streams open now.", [[{}, s.streams.active]]),
    family("connector_streams_created_total", "counter", "Streams opened since start.", [[{}, s.streams.created]]),
    family("connector_streams_closed_total", "counter", "Streams closed since start.", [[{}, s.streams.closed]]),
    family(
      "connector_stream_open_failures_total",
      "counter",
      "Streams that could not be opened, by reason.",
      Object.entries(s.streams.failures ?? {}).map(([reason, n]) => [{ reason }, n] as const),
    ),
    family(
      "connector_stream_busy_total",
      "counter",
      "OPENs answered BUSY, by the process-wide bound they hit.",
      Object.entries(s.streams.busy ?? {}).map(([limit, n]) => [{ limit }, n] as const),
    ),
    family(
      "connector_streams_ended_total",
      "counter",
      "Streams the connector reset itself, by reason (notAllowed, idle).",
      Object.entries(s.streams.ended ?? {}).map(([reason, n]) => [{ reason }, n] as const),
    ),
    family("connector_bytes_to_cloud_total", "counter", "Stream bytes sent towards the cloud.", [
      [{}, s.bytes.toCloud],
    ]),
    family("connector_bytes_from_cloud_total", "counter", "Stream bytes received from the cloud.", [
      [{}, s.bytes.fromCloud],
    ]),
    family(
      "connector_app_server_healthy",
      "gauge",
      "1 when the app server answers its health check.",
      s.apps.flatMap((a) => a.servers.map((v) => [{ app: a.name, server: v.address }, v.healthy ? 1 : 0] as const)),
    ),
    family(
      "connector_certificate_expiry_timestamp_seconds",
      "gauge",
      "When the client certificate expires (Unix time).",
      [[{}, notAfter]],
    ),
  ];
  return `${families.join("\n")}\n`;
}

export interface MetricsServer {
  readonly url: string;
  stop(): void;
}

/** Serves /metrics, /healthz and /readyz on `host:port` (an operator's choice; loopback by default in docs). */
/** True for 127.0.0.0/8, ::1 and localhost: metrics carry app names and internal addresses. */
export function isLoopbackListen(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function startMetricsServer(
  address: string,
  snapshot: () => StatusSnapshot,
  build: { version: string; commit: string; target: string },
): MetricsServer {
  const colon = address.lastIndexOf(":");
  const hostname = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const server = Bun.serve({
    hostname,
    port: Number(address.slice(colon + 1)),
    fetch(request) {
      const { pathname } = new URL(request.url);
      if (pathname === "/metrics")
        return new Response(renderMetrics(snapshot(), build), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      if (pathname === "/healthz") return new Response("ok\n");
      if (pathname === "/readyz") {
        const up = snapshot().tunnels.some((t) => t.state === "up");
        return new Response(up ? "ready\n" : "no tunnel up\n", { status: up ? 200 : 503 });
      }
      return new Response("not found\n", { status: 404 });
    },
  });
  return { url: `http://${address}`, stop: () => server.stop(true) };
}
