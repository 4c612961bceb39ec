/**
 * The last good app catalog, kept in the state dir (`catalog.json`, 0600, written atomically) so a
 * restart during a control-plane outage can bring tunnels up at once instead of waiting for the
 * first fetch. The file names the connector it was fetched for: a state dir moved to another host or
 * re-enrolled as another connector does not reuse a catalog that was never granted to it. A file
 * that is missing, unreadable, oversized, malformed or another connector's is ignored (and said why),
 * never fatal: the connector then waits for the control plane as it did without one.
 */
import { join } from "node:path";
import * as v from "valibot";
import { CatalogSchema, type Catalog } from "../control/api.ts";
import { MAX_RESPONSE_BYTES } from "../control/config.ts";
import { readJsonState } from "../state/json-state-file.ts";
import { writeFileAtomic, PRIVATE_FILE_MODE } from "../state/atomic-file.ts";

export const CATALOG_FILE = "catalog.json";
/** A stored catalog is one fetched response (bounded by the client) plus a few fields. */
const MAX_STORED_BYTES = MAX_RESPONSE_BYTES + 4096;

const StoredCatalogSchema = v.object({
  /** The connector the catalog was served to. */
  connectorId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  /** ISO time the control plane served it. */
  fetchedAt: v.pipe(v.string(), v.isoTimestamp()),
  catalog: CatalogSchema,
});

export interface StoredCatalog {
  readonly catalog: Catalog;
  readonly fetchedAt: Date;
}

export type CatalogLoad = { found: true; stored: StoredCatalog } | { found: false; why: string };

export class CatalogStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, CATALOG_FILE);
  }

  /** Keeps `catalog` as the last good one for `connectorId`. Throws on a write failure. */
  save(connectorId: string, catalog: Catalog, fetchedAt: Date): void {
    const record: v.InferInput<typeof StoredCatalogSchema> = {
      connectorId,
      fetchedAt: fetchedAt.toISOString(),
      catalog,
    };
    writeFileAtomic(this.path, `${JSON.stringify(record)}\n`, PRIVATE_FILE_MODE);
  }

  /** The stored catalog if it is valid and `connectorId`'s; otherwise why not (for the log). */
  load(connectorId: string): CatalogLoad {
    const loaded = readJsonState(this.path, StoredCatalogSchema, MAX_STORED_BYTES);
    if (!loaded.found) return loaded;
    if (loaded.value.connectorId !== connectorId)
      return { found: false, why: `${CATALOG_FILE} belongs to another connector identity` };
    return { found: true, stored: { catalog: loaded.value.catalog, fetchedAt: new Date(loaded.value.fetchedAt) } };
  }
}
