/**
 * The app catalog as the connector sees it: fetched from the control plane with the client
 * certificate (`GET /v1/catalog`, docs/PROTOCOL.md §3.3) and revalidated with its ETag, so an
 * unchanged catalog costs one empty 304. Compiled into an `AllowList` once per version.
 */
import * as v from "valibot";
import { API_VERSION_PREFIX, CatalogSchema, type Catalog } from "../control/api.ts";
import type { ControlClient } from "../control/client.ts";
import { BadResponseError } from "../control/errors.ts";

export type CatalogFetch = { changed: true; catalog: Catalog } | { changed: false };

export class CatalogSource {
  #etag?: string;
  constructor(private client: ControlClient) {}

  /** Later requests go through `client` (a renewed certificate); the ETag is kept. */
  useClient(client: ControlClient): void {
    this.client = client;
  }

  async fetch(): Promise<CatalogFetch> {
    const headers: Record<string, string> = this.#etag ? { "if-none-match": this.#etag } : {};
    const response = await this.client.request("GET", `${API_VERSION_PREFIX}/catalog`, { headers });
    if (response.status === 304) return { changed: false };
    let body: unknown;
    try {
      body = JSON.parse(response.text);
    } catch {
      throw new BadResponseError("app catalog", "the body is not JSON");
    }
    const parsed = v.safeParse(CatalogSchema, body);
    if (!parsed.success) {
      const where = parsed.issues[0]?.path?.map((p) => String(p.key)).join(".") || "(root)";
      throw new BadResponseError("app catalog", `field ${where} does not match the protocol`);
    }
    this.#etag = response.headers.get("etag") ?? `"${parsed.output.version}"`;
    return { changed: true, catalog: parsed.output };
  }
}
