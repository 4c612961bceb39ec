/**
 * The connector registry: every connector enrolled with this cloud, by id. Revocation is permanent and
 * announced to subscribers (gateways close the revoked connector's tunnels).
 */
import { randomBytes } from "node:crypto";
import type { ConnectorDirectory, ConnectorRecord, Unsubscribe } from "./gateway-api.ts";

export type NewConnector = Omit<ConnectorRecord, "id" | "enrolledAt" | "revoked">;

export class ConnectorRegistry implements ConnectorDirectory {
  readonly #connectors = new Map<string, ConnectorRecord>();
  readonly #revokedListeners = new Set<(id: string) => void>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** A fresh connector id: "c-" + 16 hex digits, never reused. */
  newId(): string {
    for (;;) {
      const id = `c-${randomBytes(8).toString("hex")}`;
      if (!this.#connectors.has(id)) return id;
    }
  }

  add(id: string, connector: NewConnector): ConnectorRecord {
    const record: ConnectorRecord = {
      id,
      ...connector,
      enrolledAt: new Date(this.#now()).toISOString(),
      revoked: false,
    };
    this.#connectors.set(id, record);
    return record;
  }

  /** Records a renewed certificate (and the connector's version); false for an unknown id. */
  renewed(
    id: string,
    cert: Pick<ConnectorRecord, "certSerial" | "certFingerprint256" | "certNotAfter" | "version">,
  ): boolean {
    const record = this.#connectors.get(id);
    if (!record) return false;
    this.#connectors.set(id, { ...record, ...cert });
    return true;
  }

  get(id: string): ConnectorRecord | undefined {
    return this.#connectors.get(id);
  }

  list(): ConnectorRecord[] {
    return [...this.#connectors.values()];
  }

  /**
   * Returns false if there is no such connector. `notify: false` revokes without telling subscribers
   * (the gateways): the control plane refuses the connector from now on, and its open tunnels end only
   * when their access tokens expire, which is what tests use to show the token alone ends access.
   */
  revoke(id: string, options: { notify?: boolean } = {}): boolean {
    const record = this.#connectors.get(id);
    if (!record) return false;
    if (!record.revoked) {
      this.#connectors.set(id, { ...record, revoked: true });
      if (options.notify !== false) for (const listener of this.#revokedListeners) listener(id);
    }
    return true;
  }

  onRevoked(listener: (id: string) => void): Unsubscribe {
    this.#revokedListeners.add(listener);
    return () => this.#revokedListeners.delete(listener);
  }
}
