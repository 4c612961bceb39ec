/**
 * Upgrade reports (POST /v1/upgrade-report, docs/PROTOCOL.md §3.6) as the reference cloud keeps them:
 * per connector, the newest MAX_REPORTS_PER_CONNECTOR, each stamped with when it arrived. The admin
 * API lists them (GET /admin/upgrade-reports) in the order they arrived.
 */
import type { UpgradeReport } from "../../src/control/api.ts";

/** A connector retries unreported outcomes, so a short history per connector is all a test needs. */
export const MAX_REPORTS_PER_CONNECTOR = 100;

export type StoredUpgradeReport = { readonly connectorId: string; readonly receivedAt: string } & UpgradeReport;

export class UpgradeReports {
  readonly #byConnector = new Map<string, (StoredUpgradeReport & { seq: number })[]>();
  #seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  add(connectorId: string, report: UpgradeReport): StoredUpgradeReport {
    const stored = { connectorId, ...report, receivedAt: new Date(this.now()).toISOString(), seq: this.#seq++ };
    const list = this.#byConnector.get(connectorId) ?? [];
    list.push(stored);
    if (list.length > MAX_REPORTS_PER_CONNECTOR) list.splice(0, list.length - MAX_REPORTS_PER_CONNECTOR);
    this.#byConnector.set(connectorId, list);
    const { seq: _seq, ...plain } = stored;
    return plain;
  }

  /** Every kept report, oldest first; only `connectorId`'s when given. */
  list(connectorId?: string): StoredUpgradeReport[] {
    const lists =
      connectorId === undefined ? [...this.#byConnector.values()] : [this.#byConnector.get(connectorId) ?? []];
    return lists
      .flat()
      .sort((a, b) => a.seq - b.seq)
      .map(({ seq: _seq, ...plain }) => plain);
  }
}
