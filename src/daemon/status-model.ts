/**
 * `StatusModel` is the daemon's live status (§4), built from events (supervisor slot changes,
 * session RTTs, health reports) rather than by poking into objects, and read as a `StatusSnapshot`
 * by the admin socket and the periodic log line.
 */
import type { Identity } from "../identity/identity.ts";
import { certificateNotAfter } from "../identity/identity.ts";
import type { StatusSnapshot, ConnectorState } from "../status/schema.ts";
import type { SessionStats } from "../tunnel/session-stats.ts";
import type { SlotState } from "../tunnel/supervisor.ts";
import type { HealthReport } from "../tunnel/payloads.ts";
import { buildInfo } from "../version.ts";

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

  constructor(
    private identity: Identity,
    /** Open failures by code, from the dataplane. */
    private readonly failures: () => Readonly<Record<string, number>> = () => ({}),
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#notAfter = certificateNotAfter(identity).toISOString();
  }

  slotChanged(slot: number, state: SlotState, gateway: string, since: Date): void {
    const view = (this.#slots[slot] ??= { gateway, state, since: since.toISOString(), rttMs: null });
    view.gateway = gateway;
    view.state = state;
    view.since = since.toISOString();
    if (state !== "up") view.rttMs = null;
  }

  /** The session of `slot` is live; its counters are read on demand. */
  attachSession(slot: number, stats: () => SessionStats): void {
    const view = this.#slots[slot];
    if (view) view.stats = stats;
  }

  /** The session of `slot` ended: fold its final counters into the totals. */
  detachSession(slot: number): void {
    const view = this.#slots[slot];
    const stats = view?.stats?.();
    if (!view || !stats) return;
    this.#ended.created += stats.streamsCreated;
    this.#ended.closed += stats.streamsClosed + stats.streamsActive;
    this.#ended.toCloud += stats.bytesOut;
    this.#ended.fromCloud += stats.bytesIn;
    view.stats = undefined;
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

  revoked(): void {
    this.#revoked = true;
  }

  reinstated(): void {
    this.#revoked = false;
  }

  state(): ConnectorState {
    if (this.#revoked) return "revoked";
    const up = this.#slots.filter((s) => s.state === "up").length;
    if (up > 0 && up === this.#slots.length) return "connected";
    return up > 0 ? "degraded" : "disconnected";
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
  showRenewal(view: () => { dueAt: string; lastError: string | null }): void {
    this.#renewal = () => {
      const { dueAt, lastError } = view();
      return { renewAt: dueAt, ...(lastError === null ? {} : { renewalError: lastError.slice(0, 1024) }) };
    };
  }

  /** A renewed certificate: status shows its expiry from now on. */
  useIdentity(identity: Identity): void {
    this.identity = identity;
    this.#notAfter = certificateNotAfter(identity).toISOString();
  }

  snapshot(): StatusSnapshot {
    const live = this.#slots.map((s) => s.stats?.());
    const sum = (pick: (s: SessionStats) => number) => live.reduce((total, s) => total + (s ? pick(s) : 0), 0);
    const active = sum((s) => s.streamsActive);
    return {
      state: this.state(),
      connectorId: this.identity.connectorId,
      name: this.identity.name,
      group: this.identity.group,
      version: buildInfo.version,
      certificate: { notAfter: this.#notAfter, ...this.#renewal() },
      controlPlane: { url: this.identity.controlUrl, reachable: this.#controlReachable },
      tunnels: this.#slots.map((s, i) => ({
        gateway: s.gateway,
        state: s.state,
        since: s.since,
        rttMs: s.rttMs,
        streams: live[i]?.streamsActive ?? 0,
      })),
      streams: {
        created: this.#ended.created + sum((s) => s.streamsCreated),
        closed: this.#ended.closed + sum((s) => s.streamsClosed),
        active,
        failures: { ...this.failures() },
        ...this.#dataplane(),
      },
      bytes: { toCloud: this.#ended.toCloud + sum((s) => s.bytesOut), fromCloud: this.#ended.fromCloud + sum((s) => s.bytesIn) },
      apps: this.#health.apps.map((a) => ({ name: a.name, servers: a.servers.map((s) => ({ address: s.address, healthy: s.healthy })) })),
    };
  }

  /** One line for the periodic log (§3: every 5 minutes and on every tunnel change). */
  summary(): Record<string, unknown> {
    const snap = this.snapshot();
    return {
      state: snap.state,
      tunnelsUp: snap.tunnels.filter((t) => t.state === "up").length,
      tunnels: snap.tunnels.length,
      streamsActive: snap.streams.active,
      streamsCreated: snap.streams.created,
      bytesToCloud: snap.bytes.toCloud,
      bytesFromCloud: snap.bytes.fromCloud,
      at: this.now().toISOString(),
    };
  }
}
