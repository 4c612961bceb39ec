/**
 * What the admin API (test/cloud/admin.ts) and the e2e launcher (test/support/cloud-process.ts) see
 * of the gateways: the answers of GET /admin/gateways and of restart/stop, and the interface the
 * fleet offers for them.
 */
import type { Unsubscribe } from "../gateway-api.ts";
import type { GatewayCounters, TunnelInfo } from "./messages.ts";

export interface GatewaySummary {
  readonly id: string;
  readonly url: string;
  /** The current process, null while the gateway is stopped. */
  readonly pid: number | null;
  readonly running: boolean;
}

export interface GatewayStatus extends GatewaySummary {
  /** The process answered the describe request (false when stopped or wedged). */
  readonly answering: boolean;
  readonly tunnels: readonly TunnelInfo[];
  readonly counters: GatewayCounters | null;
  /** Per app: can this gateway route it, is its user listener bound here. */
  readonly apps: Readonly<Record<string, { routable: boolean; listening: boolean }>>;
}

/** What the admin API may do with the gateways (GET /admin/gateways, restart, stop). */
export interface GatewayAdmin {
  describe(): Promise<GatewayStatus[]>;
  /** Respawns a stopped or killed gateway on its tunnel port; undefined for an unknown id. */
  restart(id: string): Promise<GatewaySummary | undefined>;
  /** Graceful stop (GO_AWAY, `graceMs` for open streams); undefined for an unknown id. */
  stop(id: string, graceMs?: number): Promise<GatewaySummary | undefined>;
  /** The user address of `app` once known (a new app's port is chosen asynchronously), or null. */
  waitListenAddress(app: string, timeoutMs?: number): Promise<string | null>;
  /** Connector versions every gateway answers 403 at the tunnel upgrade. */
  readonly refusedVersions: readonly string[];
  /** Replaces them; resolves once every running gateway applies them. */
  setRefusedVersions(versions: readonly string[]): Promise<void>;
  /** Called when a gateway's process changes (pid, running). */
  onChange(listener: () => void): Unsubscribe;
}
