/**
 * `StatusModel` is the daemon's live status, built from events (supervisor slot changes,
 * session RTTs, health reports) rather than by poking into objects, and read as a `StatusSnapshot`
 * by the admin socket and the periodic log line.
 */
import type { Identity } from "../identity/identity.ts";
import { certificateNotAfter } from "../identity/identity.ts";
import {
  STATUS_SCHEMA_VERSION,
  redundancyLost,
  type ConnectorState,
  type Redundancy,
  type StatusSnapshot,
  type UpgradeStatus,
} from "../status/schema.ts";
import type { SessionStats } from "../mux/session-stats.ts";
import type { SlotState } from "../supervisor/supervisor.ts";
import type { HealthReport } from "../mux/payloads.ts";
import { buildInfo } from "../version.ts";
import type { DaemonEvent } from "./events.ts";
import { TunnelHistory } from "./tunnel-history.ts";

interface SlotView {
  gateway: string;
  state: SlotState;
  since: string;
  rttMs: number | null;
  stats?: () => SessionStats;
}

/** Totals of sessions that have ended, so counters never go backwards when a tunnel is replaced. */
interface Totals {
  created: number;
  closed: number;
  toCloud: number;
  fromCloud: number;
}

export class StatusModel {
  readonly #slots: SlotView[] = [];
  readonly #ended: Totals = { created: 0, closed: 0, toCloud: 0, fromCloud: 0 };
  #health: HealthReport = { apps: [] };
  #revoked = false;
  #controlReachable: boolean | null = null;
  #catalog: NonNullable<StatusSnapshot["catalog"]> | undefined;
  readonly #history = new TunnelHistory();
  readonly #startedAt: Date;

  constructor(
    private identity: Identity,
    /** Open failures by code, from the dataplane. */
    private readonly failures: () => Readonly<Record<string, number>> = () => ({}),
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#startedAt = now();
    this.#notAfter = certificateNotAfter(identity).toISOString();
  }

  slotChanged(slot: number, state: SlotState, gateway: string, since: Date): void {
    this.#slots[slot] ??= { gateway, state, since: since.toISOString(), rttMs: null };
    const view = this.#slots[slot];
    view.gateway = gateway;
    view.state = state;
    view.since = since.toISOString();
    if (state !== "up") view.rttMs = null;
  }

  /** The daemon's events (events.ts) status keeps: why a slot is down, when it retries, counters by reason. */
  apply(event: DaemonEvent): void {
    if (event.type === "tunnel") this.#history.on(event);
  }

  /** The session of `slot` is live; its counters are read on demand. */
  attachSession(slot: number, stats: () => SessionStats): void {
    const view = this.#slots[slot];
    if (view) view.stats = stats;
  }

  /**
   * The session of `slot` left the slot. If it ended, its final counters go into the totals now; if it
   * lives on (drained, finishing its streams until `closed`), it keeps counting towards the totals
   * until then, so streams and bytes of a retiring tunnel (minutes, or days after a renewal) are not lost.
   */
  detachSession(slot: number, closed?: Promise<unknown>): void {
    const view = this.#slots[slot];
    const stats = view?.stats;
    if (!view || !stats) return;
    view.stats = undefined;
    if (!closed) return this.#fold(stats());
    this.#retired.add(stats);
    void closed.then(() => {
      if (this.#retired.delete(stats)) this.#fold(stats());
    });
  }

  /** Sessions drained out of their slot that still serve streams. */
  readonly #retired = new Set<() => SessionStats>();

  #fold(stats: SessionStats): void {
    this.#ended.created += stats.streamsCreated;
    this.#ended.closed += stats.streamsClosed + stats.streamsActive;
    this.#ended.toCloud += stats.bytesOut;
    this.#ended.fromCloud += stats.bytesIn;
  }

  rtt(slot: number, ms: number): void {
    const view = this.#slots[slot];
    if (view) view.rttMs = Math.round(ms * 100) / 100;
  }

  health(report: HealthReport): void {
    this.#health = report;
  }

  controlPlane(reachable: boolean): void {
    this.#controlReachable = reachable;
  }

  /** The app catalog in use: served now by the control plane, or the stored one served at `fetchedAt`. */
  catalogFrom(source: "control-plane" | "stored", version: string, fetchedAt: Date): void {
    this.#catalog = { source, version, fetchedAt: fetchedAt.toISOString() };
  }

  revoked(): void {
    this.#revoked = true;
  }

  reinstated(): void {
    this.#revoked = false;
  }

  state(): ConnectorState {
    if (this.#revoked) return "revoked";
    const up = this.#slots.filter((s) => s.state === "up").length;
    if (up > 0 && up === this.#slots.length) return redundancyLost(this.redundancy()) ? "degraded" : "connected";
    return up > 0 ? "degraded" : "disconnected";
  }

  /** How many distinct gateways the tunnels that are up use, out of the gateways this connector knows. */
  redundancy(): Redundancy {
    const up = this.#slots.filter((s) => s.state === "up");
    return {
      distinctGateways: new Set(up.map((s) => s.gateway)).size,
      tunnels: up.length,
      gatewaysKnown: new Set(this.identity.gateways.map((g) => g.url)).size,
    };
  }

  /** Parsed once per certificate, not on every status request or metrics scrape. */
  #notAfter = "";
  #renewal: () => { renewAt?: string; renewalError?: string } = () => ({});
  #dataplane: () => { busy?: Record<string, number>; ended?: Record<string, number> } = () => ({});

  /** Why OPENs were answered BUSY (which process-wide bound) and why the dataplane ended streams. */
  showDataplane(view: () => { busy: Readonly<Record<string, number>>; ended: Readonly<Record<string, number>> }): void {
    this.#dataplane = () => {
      const { busy, ended } = view();
      return { busy: { ...busy }, ended: { ...ended } };
    };
  }

  /** Where status reads the renewal schedule from (the daemon's `CertificateRenewal`). */
  #upgrade: () => UpgradeStatus | undefined = () => undefined;

  /** The upgrade schedule's view (src/daemon/auto-upgrade.ts), read on each snapshot. */
  showUpgrade(view: () => UpgradeStatus): void {
    this.#upgrade = view;
  }

  showRenewal(view: () => { dueAt: string; lastError: string | null }): void {
    this.#renewal = () => {
      const { dueAt, lastError } = view();
      return { renewAt: dueAt, ...(lastError === null ? {} : { renewalError: lastError.slice(0, 1024) }) };
    };
  }

  #accessToken: () => { expiresAt: string | null; refreshAt: string | null; lastError: string | null } | undefined =
    () => undefined;

  /** Where status reads the access token's expiry from (the daemon's `AccessTokens`; never the token). */
  showAccessToken(view: () => { expiresAt: string | null; refreshAt: string | null; lastError: string | null }): void {
    this.#accessToken = view;
  }

  /** A renewed certificate: status shows its expiry from now on. */
  useIdentity(identity: Identity): void {
    this.identity = identity;
    this.#notAfter = certificateNotAfter(identity).toISOString();
  }

  snapshot(): StatusSnapshot {
    const live = this.#slots.map((s) => s.stats?.());
    const all = [...live, ...[...this.#retired].map((stats) => stats())];
    const sum = (pick: (s: SessionStats) => number) => all.reduce((total, s) => total + (s ? pick(s) : 0), 0);
    const active = sum((s) => s.streamsActive);
    const upgrade = this.#upgrade();
    const now = this.now();
    return {
      schemaVersion: STATUS_SCHEMA_VERSION,
      at: now.toISOString(),
      state: this.state(),
      connectorId: this.identity.connectorId,
      name: this.identity.name,
      group: this.identity.group,
      version: buildInfo.version,
      pid: process.pid,
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.max(0, Math.floor((now.getTime() - this.#startedAt.getTime()) / 1000)),
      certificate: { notAfter: this.#notAfter, ...this.#renewal() },
      controlPlane: { url: this.identity.controlUrl, reachable: this.#controlReachable },
      ...(this.#catalog ? { catalog: this.#catalog } : {}),
      ...this.#tokenStatus(),
      redundancy: this.redundancy(),
      tunnels: this.#slots.map((s, i) => {
        const history = this.#history.slot(i);
        return {
          gateway: s.gateway,
          state: s.state,
          since: s.since,
          rttMs: s.rttMs,
          streams: live[i]?.streamsActive ?? 0,
          failures: history?.failures ?? 0,
          ...(history?.lastError && s.state !== "up" ? { lastError: history.lastError } : {}),
          ...(history?.retryAt && s.state === "down" ? { retryAt: history.retryAt } : {}),
        };
      }),
      tunnelCounters: this.#history.counters(),
      streams: {
        created: this.#ended.created + sum((s) => s.streamsCreated),
        closed: this.#ended.closed + sum((s) => s.streamsClosed),
        active,
        failures: { ...this.failures() },
        ...this.#dataplane(),
      },
      bytes: {
        toCloud: this.#ended.toCloud + sum((s) => s.bytesOut),
        fromCloud: this.#ended.fromCloud + sum((s) => s.bytesIn),
      },
      apps: this.#health.apps.map((a) => ({
        name: a.name,
        servers: a.servers.map((s) => ({ address: s.address, healthy: s.healthy })),
      })),
      ...(upgrade ? { upgrade } : {}),
    };
  }

  #tokenStatus(): Pick<StatusSnapshot, "accessToken"> {
    const view = this.#accessToken();
    if (!view) return {};
    return {
      accessToken: {
        expiresAt: view.expiresAt,
        ...(view.refreshAt === null ? {} : { refreshAt: view.refreshAt }),
        ...(view.lastError === null ? {} : { error: view.lastError.slice(0, 1024) }),
      },
    };
  }

  /** One line for the periodic log (every 5 minutes and on every tunnel change). */
  summary(): Record<string, unknown> {
    const snap = this.snapshot();
    const redundancy = snap.redundancy!;
    return {
      state: snap.state,
      tunnelsUp: snap.tunnels.filter((t) => t.state === "up").length,
      tunnels: snap.tunnels.length,
      gateways: redundancy.distinctGateways,
      gatewaysKnown: redundancy.gatewaysKnown,
      ...(redundancyLost(redundancy) ? { redundancy: "tunnels share a gateway although another is known" } : {}),
      streamsActive: snap.streams.active,
      streamsCreated: snap.streams.created,
      bytesToCloud: snap.bytes.toCloud,
      bytesFromCloud: snap.bytes.fromCloud,
      at: this.now().toISOString(),
    };
  }
}
