/**
 * The app catalog as the connector sees it: fetched from the control plane with the client
 * certificate (`GET /v1/catalog`, docs/PROTOCOL.md §3.3) and revalidated with its ETag, so an
 * unchanged catalog costs one empty 304. Compiled into an `AllowList` once per version.
 */
import { API_VERSION_PREFIX, CatalogSchema, type Catalog } from "../control/api.ts";
import { type ControlClient, parseJson, validate } from "../control/client.ts";

export type CatalogFetch = { changed: true; catalog: Catalog } | { changed: false };

/** What a catalog fetch needs of a control-plane client. */
export type CatalogClient = Pick<ControlClient, "request">;

export class CatalogSource {
  #etag?: string;
  constructor(private client: CatalogClient) {}

  /** Later requests go through `client` (a renewed certificate); the ETag is kept. */
  useClient(client: CatalogClient): void {
    this.client = client;
  }

  async fetch(): Promise<CatalogFetch> {
    const headers: Record<string, string> = this.#etag ? { "if-none-match": this.#etag } : {};
    const response = await this.client.request("GET", `${API_VERSION_PREFIX}/catalog`, { headers });
    if (response.status === 304) return { changed: false };
    const catalog = validate(CatalogSchema, parseJson(response.text, "app catalog"), "app catalog");
    this.#etag = response.headers.get("etag") ?? `"${catalog.version}"`;
    return { changed: true, catalog };
  }
}
