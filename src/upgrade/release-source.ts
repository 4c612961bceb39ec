/**
 * Where releases come from and how they are fetched: the manifest URL (the `manifest-url` setting, else
 * `<base>/<channel>/manifest.json` with the base URL compiled in by the release build) and the
 * retrieval bounds. The trust roots are not here on purpose: nothing configurable touches them.
 */
import type { Settings } from "../config/settings.ts";
import { DEFAULT_RETRIEVAL, type RetrievalPolicy } from "./download.ts";
import { UpgradeError } from "./errors.ts";
import { MANIFEST_FILE } from "./format.ts";
import { releaseBaseUrl } from "./trust-roots.ts";

export type SourceSettings = Pick<Settings, "manifestUrl" | "channel" | "proxy" | "noProxy">;

/** The channel's manifest URL; NO_RELEASE_SOURCE when neither a setting nor the build names one. */
export function manifestUrlFor(settings: SourceSettings, baseUrl: string | undefined = releaseBaseUrl): URL {
  if (settings.manifestUrl) return new URL(settings.manifestUrl);
  if (baseUrl)
    return new URL(
      `${encodeURIComponent(settings.channel)}/${MANIFEST_FILE}`,
      baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`,
    );
  throw new UpgradeError(
    "NO_RELEASE_SOURCE",
    "No release source: this build names no release host. Set manifest-url (flag --manifest-url or CONNECTOR_MANIFEST_URL in /etc/connector/connector.env) to the channel's manifest.json.",
  );
}

export function retrievalPolicy(settings: SourceSettings, signal?: AbortSignal): RetrievalPolicy {
  return { ...DEFAULT_RETRIEVAL, proxy: settings.proxy, noProxy: settings.noProxy, signal };
}

/** A URL for messages and status: no credentials, no query. */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
