/**
 * The app catalog over the daemon's life: the first fetch, retried with backoff (a revoked
 * connector only every `REVOKED_RETRY_MS`), then refreshes on CONFIG_CHANGED and on the poll. Refreshes
 * are single-flight: concurrent triggers (CONFIG_CHANGED from N tunnels, the poll) share one fetch,
 * plus one more after it, so a change announced mid-fetch is not missed. A new catalog goes to the
 * daemon; what the control plane said about this connector (served, revoked) goes to `Revocation`
 * (revocation.ts), which decides what it means for tunnels; the control-plane flag in status is kept here.
 *
 * Every catalog the control plane serves is kept in the state dir (`CatalogStore`). When the first
 * fetch fails because the control plane cannot be reached or fails (network, proxy, timeout, 5xx),
 * the kept catalog is used at once so tunnels come up during an outage, and fetching goes on in the
 * background with backoff until the control plane answers. A refusal (CONNECTOR_REVOKED, any 4xx, a
 * certificate the pinned CA did not sign) is not an outage: the kept catalog is not used then.
 */
import type { CatalogSource } from "../apps/catalog.ts";
import type { CatalogStore } from "../apps/catalog-store.ts";
import { sleep, type Clock } from "../clock.ts";
import type { Catalog } from "../control/api.ts";
import {
  ApiRejectedError,
  ConnectionRefusedError,
  ControlTimeoutError,
  DnsFailureError,
  ProxyFailureError,
} from "../control/errors.ts";
import { ConnectorError, describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { Backoff } from "../retry/backoff.ts";
import type { CatalogEvent, DaemonEvents } from "./events.ts";
import { isRevokedAnswer, REVOKED_RETRY_MS, type RevocationSink } from "./revocation.ts";
import type { StatusModel } from "./status-model.ts";

export interface CatalogRefreshDeps {
  readonly source: CatalogSource;
  readonly status: StatusModel;
  readonly log: Logger;
  /** Each fetch's result goes there as a `catalog` event (event-log.ts writes its line). */
  readonly events: Pick<DaemonEvents, "emit">;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** A new catalog version arrived. */
  readonly changed: (catalog: Catalog) => void;
  /** Told whether the control plane serves this connector or revoked it (and read: revoked retries slowly). */
  readonly revocation: RevocationSink;
  /** Where the last good catalog is kept, and whose it is. */
  readonly store?: { readonly catalogs: CatalogStore; readonly connectorId: string };
}

/** The control plane could not be reached or failed: not a decision about this connector. */
export function isOutage(err: unknown): boolean {
  if (err instanceof ApiRejectedError) return err.status >= 500;
  return (
    err instanceof ConnectionRefusedError ||
    err instanceof ControlTimeoutError ||
    err instanceof DnsFailureError ||
    err instanceof ProxyFailureError
  );
}

export class CatalogRefresh {
  #refreshing?: Promise<void>;
  #again = false;
  /** The control plane has served a catalog (or a 304), or revoked this connector, since start. */
  #answered = false;
  /** The version in use, for a "not modified" answer's event. */
  #version?: string;

  constructor(private readonly deps: CatalogRefreshDeps) {}

  /** The first catalog, retried until it comes or the daemon stops (undefined then). */
  async first(): Promise<Catalog | undefined> {
    const { source, status, clock, signal } = this.deps;
    const backoff = new Backoff();
    let storeTried = false;
    while (!signal.aborted) {
      try {
        const result = await source.fetch();
        status.controlPlane(true);
        this.deps.revocation.served();
        this.#answered = true;
        if (result.changed) {
          this.#keep(result.catalog, "start");
          return result.catalog;
        }
      } catch (err) {
        status.controlPlane(false);
        const revoked = isRevokedAnswer(err);
        if (revoked) this.deps.revocation.confirmed();
        // The stored catalog is looked at once: on the first failure that is an outage.
        const outage = !revoked && isOutage(err);
        const kept = outage && !storeTried ? this.#stored(err) : undefined;
        storeTried ||= outage;
        if (kept) {
          void this.#untilServed(backoff);
          return kept;
        }
        const delay = revoked ? REVOKED_RETRY_MS : backoff.nextDelayMs();
        this.#emit({ ...failure(err, "start", revoked), retryInMs: delay });
        await sleep(clock, delay, signal);
      }
    }
    return undefined;
  }

  /** The kept catalog for this connector, told as used; undefined (and why, logged) if there is none. */
  #stored(err: unknown): Catalog | undefined {
    const { store, log, status, clock } = this.deps;
    if (!store) return undefined;
    const load = store.catalogs.load(store.connectorId);
    if (!load.found) {
      log.info("no stored app catalog to start with", { reason: load.why });
      return undefined;
    }
    const { catalog, fetchedAt } = load.stored;
    status.catalogFrom("stored", catalog.version, fetchedAt);
    this.#version = catalog.version;
    const { code, error } = failure(err, "start", false);
    this.#emit({
      type: "catalog",
      ok: true,
      during: "start",
      source: "stored",
      version: catalog.version,
      changed: true,
      apps: catalog.apps.length,
      fetchedAt,
      ageSeconds: Math.max(0, Math.round((clock.wallNow().getTime() - fetchedAt.getTime()) / 1000)),
      code,
      error,
    });
    return catalog;
  }

  /** After starting on the stored catalog: fetch with backoff until the control plane answers (or revokes). */
  async #untilServed(backoff: Backoff): Promise<void> {
    const { clock, signal, revocation } = this.deps;
    while (!this.#answered && !signal.aborted && !revocation.revoked) {
      await sleep(clock, backoff.nextDelayMs(), signal);
      if (!signal.aborted) await this.refresh();
    }
  }

  /** Keeps a catalog the control plane served; a state dir that cannot be written costs only the fallback. */
  #keep(catalog: Catalog, during: "start" | "refresh"): void {
    const { store, log, status, clock } = this.deps;
    const now = clock.wallNow();
    status.catalogFrom("control-plane", catalog.version, now);
    this.#version = catalog.version;
    this.#emit({
      type: "catalog",
      ok: true,
      during,
      source: "control-plane",
      version: catalog.version,
      changed: true,
      apps: catalog.apps.length,
    });
    if (!store) return;
    try {
      store.catalogs.save(store.connectorId, catalog, now);
    } catch (err) {
      log.warn(
        "cannot keep the app catalog in the state dir (a restart during a control-plane outage will wait for it)",
        {
          path: store.catalogs.path,
          error: describeError(err),
        },
      );
    }
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
    const { source, status } = this.deps;
    try {
      const result = await source.fetch();
      status.controlPlane(true);
      this.#answered = true;
      if (result.changed) {
        this.#keep(result.catalog, "refresh");
        this.deps.changed(result.catalog);
      } else if (this.#version !== undefined) {
        const version = this.#version;
        this.#emit({ type: "catalog", ok: true, during: "refresh", source: "control-plane", version, changed: false });
      }
      this.deps.revocation.served();
    } catch (err) {
      status.controlPlane(false);
      const revoked = isRevokedAnswer(err);
      this.#emit(failure(err, "refresh", revoked));
      if (revoked) {
        // From here the slow revocation schedule asks again, not the outage retries.
        this.#answered = true;
        this.deps.revocation.confirmed();
      }
    }
  }

  #emit(event: CatalogEvent): void {
    this.deps.events.emit(event);
  }
}

/** A failed fetch as an event. */
function failure(err: unknown, during: "start" | "refresh", revoked: boolean): Extract<CatalogEvent, { ok: false }> {
  const code = err instanceof ConnectorError ? err.code : "UNEXPECTED";
  return { type: "catalog", ok: false, during, code, error: describeError(err), revoked };
}
