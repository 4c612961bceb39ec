/**
 * Starts the reference cloud (`bun test/cloud/main.ts --dir DIR …`) as a subprocess for end-to-end
 * tests, waits (with a deadline) for it to write DIR/cloud.json, and returns what it wrote plus
 * `stop()`. Every e2e test shares this launcher so the CLI contract lives in one place.
 */
import { existsSync, mkdtempSync, readFileSync, watch as watchDir } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { GatewayStatus, GatewaySummary } from "../cloud/gateway/admin-types.ts";
import type { MisbehaviourMode } from "../cloud/releases/misbehaviour.ts";
import type { StoredUpgradeReport } from "../cloud/upgrade-reports.ts";
import { watch } from "./diagnostics.ts";
import { until } from "./wait.ts";

export type { MisbehaviourMode, StoredUpgradeReport };

const ROOT = join(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const CLOUD_MAIN = join(ROOT, "test", "cloud", "main.ts");

export interface CloudJson {
  readonly controlUrl: string;
  readonly caPin: string;
  readonly provisioningKey: string;
  readonly adminUrl: string;
  /** `pid` is the gateway's process as of the last write (the cloud rewrites the file when it changes). */
  readonly gateways: readonly { readonly id: string; readonly url: string; readonly pid?: number }[];
  /** Per app: where users connect (`127.0.0.1:PORT`); null only with gateways that have no user listeners. */
  readonly apps: Record<string, { readonly listen: string | null }>;
  /** With `releases`: the release server and the manifest URL of each channel found at start. */
  readonly releases?: { readonly baseUrl: string; readonly channels: Record<string, { readonly manifestUrl: string }> };
}

export interface CloudOptions {
  readonly gateways?: number;
  /** `NAME=HOST:PORT[,HOST:PORT…]` entries. */
  readonly apps?: readonly string[];
  readonly keyUses?: number;
  readonly certTtlSeconds?: number;
  readonly keyExpiresInSeconds?: number;
  /** Lifetime of access tokens (--token-ttl); default the cloud's (10 minutes). */
  readonly tokenTtlSeconds?: number;
  /** A releases directory to serve (--releases): DIR itself or its subdirectories, each a `bun run release` output. */
  readonly releases?: string;
  /** A `bun run keygen` directory with release.key (--release-signing-keys), for the modes that re-sign. */
  readonly releaseSigningKeys?: string;
  /** How long to wait for cloud.json; default 60 s (a safety deadline: a loaded machine starts slowly). */
  readonly startTimeoutMs?: number;
}

export interface AdminKey {
  readonly id: string;
  readonly key: string;
}

export interface CloudProcess extends CloudJson {
  readonly dir: string;
  /** Creates a provisioning key through the admin API. */
  createKey(options?: { group?: string; maxUses?: number; expiresAt?: Date }): Promise<AdminKey>;
  /** Revokes a provisioning key through the admin API. */
  revokeKey(id: string): Promise<void>;
  /** Revokes a connector; `notifyGateways: false` leaves the gateways unaware (only its token ends its tunnels). */
  revokeConnector(id: string, options?: { notifyGateways?: boolean }): Promise<void>;
  /** GET /admin/gateways: each gateway's pid, tunnels (connector, draining, streams), counters, user listeners. */
  gatewayStatus(): Promise<GatewayStatus[]>;
  /** Waits until no gateway holds a tunnel of `connectorId`; resolves with the gateways' status then. */
  untilNoTunnelsOf(connectorId: string, timeoutMs: number): Promise<GatewayStatus[]>;
  /** SIGKILL to a gateway's current process; resolves once the cloud has seen it exit. */
  killGateway(id: string): Promise<void>;
  /** POST /admin/gateways/:id/restart: a killed or stopped gateway back on its URL; resolves when it is ready. */
  restartGateway(id: string): Promise<GatewaySummary>;
  /** POST /admin/gateways/:id/stop: GO_AWAY on every tunnel, up to `graceMs` for open streams, then exit. */
  stopGateway(id: string, graceMs?: number): Promise<GatewaySummary>;
  /** POST /admin/releases/misbehave: `mode` for `channel`, or for every channel (test/cloud/README.md lists the modes). */
  misbehave(mode: MisbehaviourMode, channel?: string): Promise<void>;
  /** POST /admin/refuse-version: every gateway answers 403 to tunnel upgrades from connector version `version`. */
  refuseVersion(version: string): Promise<void>;
  /** DELETE /admin/refuse-version: lifts the refusal of `version`. */
  allowVersion(version: string): Promise<void>;
  /** GET /admin/upgrade-reports: what connectors reported (POST /v1/upgrade-report), oldest first. */
  upgradeReports(connectorId?: string): Promise<StoredUpgradeReport[]>;
  /** Everything the cloud wrote to stdout/stderr so far (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace; removes the temp dir (kept when the running test fails). */
  stop(): Promise<void>;
}

function cloudArgs(dir: string, o: CloudOptions): string[] {
  const args = [CLOUD_MAIN, "--dir", dir];
  if (o.gateways !== undefined) args.push("--gateways", String(o.gateways));
  for (const app of o.apps ?? []) args.push("--app", app);
  if (o.keyUses !== undefined) args.push("--key-uses", String(o.keyUses));
  if (o.certTtlSeconds !== undefined) args.push("--cert-ttl", String(o.certTtlSeconds));
  if (o.keyExpiresInSeconds !== undefined) args.push("--key-expires-in", String(o.keyExpiresInSeconds));
  if (o.tokenTtlSeconds !== undefined) args.push("--token-ttl", String(o.tokenTtlSeconds));
  if (o.releases !== undefined) args.push("--releases", o.releases);
  if (o.releaseSigningKeys !== undefined) args.push("--release-signing-keys", o.releaseSigningKeys);
  return args;
}

async function collect(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) into.push(decoder.decode(chunk, { stream: true }));
}

function readCloudJson(path: string): CloudJson | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as CloudJson;
  } catch {
    return undefined; // partially written: the next change event will look again
  }
}

/**
 * Waits for a complete cloud.json: woken by file-system events in the directory, failing at the
 * deadline or as soon as the cloud process exits.
 */
function waitForCloudJson(dir: string, proc: Subprocess, deadlineMs: number, output: () => string): Promise<CloudJson> {
  const path = join(dir, "cloud.json");
  return new Promise<CloudJson>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, json?: CloudJson) => {
      if (settled) return;
      settled = true;
      watcher.close();
      clearTimeout(timer);
      if (err) {
        proc.kill("SIGKILL");
        reject(err);
      } else resolve(json!);
    };
    const check = () => {
      const json = readCloudJson(path);
      if (json) finish(undefined, json);
    };
    const watcher = watchDir(dir, check);
    const timer = setTimeout(
      () => finish(new Error(`the reference cloud did not write ${path} within ${deadlineMs} ms:\n${output()}`)),
      deadlineMs,
    );
    void proc.exited.then((code) => {
      check();
      finish(new Error(`the reference cloud exited (code ${code}) before writing ${path}:\n${output()}`));
    });
    check();
  });
}

export async function startCloud(options: CloudOptions = {}): Promise<CloudProcess> {
  if (!existsSync(CLOUD_MAIN))
    throw new Error(`${CLOUD_MAIN} does not exist yet (the reference cloud, test/cloud/README.md)`);
  const dir = mkdtempSync(join(tmpdir(), "cloud-"));
  const proc = Bun.spawn([BUN, ...cloudArgs(dir, options)], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const chunks: string[] = [];
  void collect(proc.stdout, chunks);
  void collect(proc.stderr, chunks);
  const output = () => chunks.join("");
  // A failing test prints this log's tail (gateways write to the same stdout) and keeps DIR.
  const watched = watch({ label: `reference cloud pid ${proc.pid} (dir ${dir})`, output, dirs: [dir] });
  let json: CloudJson;
  try {
    json = await waitForCloudJson(dir, proc, options.startTimeoutMs ?? 60_000, output);
  } catch (err) {
    watched.release();
    throw err;
  }

  const admin = async (
    path: string,
    body?: unknown,
    method = body === undefined ? "GET" : "POST",
  ): Promise<Response> => {
    const response = await fetch(`${json.adminUrl.replace(/\/$/, "")}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    if (!response.ok) throw new Error(`admin ${path} answered ${response.status}: ${await response.text()}`);
    return response;
  };

  const gatewayStatus = async () => (await (await admin("/admin/gateways")).json()) as GatewayStatus[];

  return {
    ...json,
    dir,
    async createKey(o = {}) {
      const body = {
        ...(o.group === undefined ? {} : { group: o.group }),
        ...(o.maxUses === undefined ? {} : { maxUses: o.maxUses }),
        ...(o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt.toISOString() }),
      };
      return (await (await admin("/admin/keys", body)).json()) as AdminKey;
    },
    async revokeKey(id) {
      await admin(`/admin/keys/${encodeURIComponent(id)}/revoke`, {});
    },
    async revokeConnector(id, options = {}) {
      await admin(`/admin/connectors/${encodeURIComponent(id)}/revoke`, options);
    },
    gatewayStatus,
    untilNoTunnelsOf: (connectorId, timeoutMs) =>
      until(
        `no tunnel of ${connectorId} on any gateway`,
        async () => {
          const gateways = await gatewayStatus();
          return gateways.flatMap((g) => g.tunnels).some((t) => t.connectorId === connectorId) ? undefined : gateways;
        },
        timeoutMs,
        async () =>
          (await gatewayStatus()).map((g) => ({
            gateway: g.id,
            tunnels: g.tunnels.filter((t) => t.connectorId === connectorId),
          })),
      ),
    async killGateway(id) {
      const pid = (await gatewayStatus()).find((g) => g.id === id)?.pid;
      if (pid === null || pid === undefined) throw new Error(`gateway ${id} is not running`);
      process.kill(pid, "SIGKILL");
      await until(
        `the cloud to see gateway ${id} (pid ${pid}) exit after SIGKILL`,
        async () => ((await gatewayStatus()).find((g) => g.id === id)?.running ? undefined : true),
        30_000,
        async () => (await gatewayStatus()).find((g) => g.id === id),
      );
    },
    async restartGateway(id) {
      return (await (await admin(`/admin/gateways/${encodeURIComponent(id)}/restart`, {})).json()) as GatewaySummary;
    },
    async stopGateway(id, graceMs) {
      const body = graceMs === undefined ? {} : { graceMs };
      return (await (await admin(`/admin/gateways/${encodeURIComponent(id)}/stop`, body)).json()) as GatewaySummary;
    },
    async misbehave(mode, channel) {
      await admin("/admin/releases/misbehave", channel === undefined ? { mode } : { mode, channel });
    },
    async refuseVersion(version) {
      await admin("/admin/refuse-version", { version });
    },
    async allowVersion(version) {
      await admin("/admin/refuse-version", { version }, "DELETE");
    },
    async upgradeReports(connectorId) {
      const query = connectorId === undefined ? "" : `?connector=${encodeURIComponent(connectorId)}`;
      return (await (await admin(`/admin/upgrade-reports${query}`)).json()) as StoredUpgradeReport[];
    },
    output,
    async stop() {
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await proc.exited;
      clearTimeout(killer);
      watched.release();
    },
  };
}
