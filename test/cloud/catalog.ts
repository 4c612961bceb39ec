/**
 * The app catalog (docs/PROTOCOL.md §3.3). Each app belongs to one connector group; a connector is
 * served the apps of its own group. A group's catalog version is a hash of its content, so it changes
 * exactly when what a connector would receive changes, and it is stable across restarts of the cloud
 * (a connector's cached ETag stays valid for identical content).
 */
import { createHash } from "node:crypto";
import type { App, Catalog } from "../../src/control/api.ts";
import type { CatalogView, Unsubscribe } from "./gateway-api.ts";

export interface AppSpec extends App {
  /** Connector group serving the app; default "default". */
  readonly group?: string;
}

type ChangeListener = (change: { group: string; version: string }) => void;

export class CatalogStore implements CatalogView {
  readonly #apps = new Map<string, { group: string; app: App }>();
  readonly #listeners = new Set<ChangeListener>();

  /** Adds or replaces an app; returns the new version of its group's catalog. */
  put(spec: AppSpec): string {
    const { group = "default", ...app } = spec;
    const previous = this.#apps.get(app.name);
    this.#apps.set(app.name, { group, app });
    if (previous && previous.group !== group) this.#announce(previous.group);
    return this.#announce(group);
  }

  /** Removes an app; returns false if there was none. */
  delete(name: string): boolean {
    const entry = this.#apps.get(name);
    if (!entry) return false;
    this.#apps.delete(name);
    this.#announce(entry.group);
    return true;
  }

  forGroup(group: string): Catalog {
    const apps = [...this.#apps.values()]
      .filter((entry) => entry.group === group)
      .map((entry) => entry.app)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { version: versionOf(apps), apps };
  }

  groupOf(app: string): string | undefined {
    return this.#apps.get(app)?.group;
  }

  subscribe(listener: ChangeListener): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #announce(group: string): string {
    const { version } = this.forGroup(group);
    for (const listener of this.#listeners) listener({ group, version });
    return version;
  }
}

/** 16 hex digits of SHA-256 over the canonical JSON of the (sorted) apps. */
function versionOf(apps: readonly App[]): string {
  const canonical = JSON.stringify(
    apps.map((a) => ({ name: a.name, destinations: a.destinations, servers: a.servers })),
  );
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}
