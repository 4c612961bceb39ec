/**
 * The app catalog over the daemon's life (§3): the first fetch, retried with backoff (a revoked
 * connector only every `REVOKED_RETRY_MS`), then refreshes on CONFIG_CHANGED and on the poll. Refreshes
 * are single-flight: concurrent triggers (CONFIG_CHANGED from N tunnels, the poll) share one fetch,
 * plus one more after it, so a change announced mid-fetch is not missed. Outcomes are reported to the
 * daemon, which decides what they mean for tunnels; the control-plane flag in status is kept here.
 */
import type { CatalogSource } from "../apps/catalog.ts";
import { sleep, type Clock } from "../clock.ts";
import type { Catalog } from "../control/api.ts";
import { ApiRejectedError } from "../control/errors.ts";
import { ConnectorError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { Backoff } from "../tunnel/backoff.ts";
import type { StatusModel } from "./status-model.ts";

/** A revoked connector retries only slowly (§3). */
export const REVOKED_RETRY_MS = 10 * 60_000;

export interface CatalogRefreshDeps {
  readonly source: CatalogSource;
  readonly status: StatusModel;
  readonly log: Logger;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** A new catalog version arrived. */
  readonly changed: (catalog: Catalog) => void;
  /** The control plane answered (changed or not): a revoked connector may be reinstated. */
  readonly served: () => void;
  /** The control plane says CONNECTOR_REVOKED. */
  readonly revoked: () => void;
}

function isRevocation(err: unknown): boolean {
  return err instanceof ApiRejectedError && err.apiCode === "CONNECTOR_REVOKED";
}

export class CatalogRefresh {
  #refreshing?: Promise<void>;
  #again = false;

  constructor(private readonly deps: CatalogRefreshDeps) {}

  /** The first catalog, retried until it comes or the daemon stops (undefined then). */
  async first(): Promise<Catalog | undefined> {
    const { source, status, log, clock, signal } = this.deps;
    const backoff = new Backoff();
    while (!signal.aborted) {
      try {
        const result = await source.fetch();
        status.controlPlane(true);
        status.reinstated();
        if (result.changed) return result.catalog;
      } catch (err) {
        status.controlPlane(false);
        const revoked = isRevocation(err);
        if (revoked) status.revoked();
        const delay = revoked ? REVOKED_RETRY_MS : backoff.nextDelayMs();
        log.error(revoked ? "this connector has been revoked by the cloud; re-enroll it with a new key" : "cannot fetch the app catalog", {
          code: err instanceof ConnectorError ? err.code : "UNEXPECTED",
          error: describeError(err),
          retryInMs: delay,
        });
        await sleep(clock, delay, signal);
      }
    }
    return undefined;
  }

  /** Revalidates the catalog (single flight, see above); never throws. */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = this.#fetch().finally(() => {
      this.#refreshing = undefined;
      if (this.#again) {
        this.#again = false;
        void this.refresh();
      }
    });
    return this.#refreshing;
  }

  async #fetch(): Promise<void> {
    const { source, status, log } = this.deps;
    try {
      const result = await source.fetch();
      status.controlPlane(true);
      if (result.changed) this.deps.changed(result.catalog);
      this.deps.served();
    } catch (err) {
      status.controlPlane(false);
      if (isRevocation(err)) return this.deps.revoked();
      log.warn("catalog refresh failed; keeping the current one", { error: describeError(err) });
    }
  }
}
