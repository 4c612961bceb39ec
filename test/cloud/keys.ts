/**
 * Provisioning keys (docs/PROTOCOL.md §2): each belongs to a connector group, may be
 * used up to `maxUses` times, expires, and can be revoked.
 *
 * Only the SHA-256 of a key's secret is stored; the secret itself exists once, inside the `cnk1.` token
 * handed to the caller of `createKey`. A use is counted by `recordUse`, which the enrollment calls only
 * after a certificate was issued, so a failed enrollment never consumes a use.
 */
import { createHash, randomBytes } from "node:crypto";
import { encodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { DEFAULT_KEY_MAX_USES, DEFAULT_KEY_TTL_SECONDS, MAX_KEY_USES } from "./config.ts";
import { CloudApiError, badRequest } from "./errors.ts";

export interface NewKeyOptions {
  /** Connector group the enrolled connectors join; default "default". */
  readonly group?: string;
  /** How many enrollments the key allows; default 10. */
  readonly maxUses?: number;
  /** When the key stops working; default one day from now. A past date makes an expired key. */
  readonly expiresAt?: Date;
}

export interface CreatedKey {
  readonly id: string;
  /** The copy-pasteable `cnk1.` token. */
  readonly key: string;
}

/** What the cloud remembers about a key: never the secret. */
export interface KeyInfo {
  readonly id: string;
  readonly group: string;
  readonly maxUses: number;
  readonly uses: number;
  readonly expiresAt: string;
  readonly revoked: boolean;
}

interface KeyRecord {
  id: string;
  group: string;
  maxUses: number;
  uses: number;
  expiresAtMs: number;
  revoked: boolean;
  secretHash: string;
}

const hashSecret = (secret: string) => createHash("sha256").update(secret).digest("hex");

export class KeyStore {
  readonly #byId = new Map<string, KeyRecord>();
  readonly #bySecretHash = new Map<string, KeyRecord>();
  readonly #caPin: string;
  readonly #controlUrl: () => string;
  readonly #now: () => number;

  /** `controlUrl` is read when a key is made (the control plane's port is known only once it listens). */
  constructor(options: { caPin: string; controlUrl: () => string; now?: () => number }) {
    this.#caPin = options.caPin;
    this.#controlUrl = options.controlUrl;
    this.#now = options.now ?? Date.now;
  }

  createKey(options: NewKeyOptions = {}): CreatedKey {
    const group = options.group ?? "default";
    const maxUses = options.maxUses ?? DEFAULT_KEY_MAX_USES;
    const expiresAtMs = options.expiresAt?.getTime() ?? this.#now() + DEFAULT_KEY_TTL_SECONDS * 1000;
    if (group.length < 1 || group.length > 128) throw badRequest("group must be 1 to 128 characters");
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_KEY_USES) {
      throw badRequest(`maxUses must be an integer from 1 to ${MAX_KEY_USES}`);
    }
    if (!Number.isFinite(expiresAtMs)) throw badRequest("expiresAt is not a valid date");

    const secret = randomBytes(32).toString("base64url");
    const record: KeyRecord = {
      id: `k-${randomBytes(6).toString("hex")}`,
      group,
      maxUses,
      uses: 0,
      expiresAtMs,
      revoked: false,
      secretHash: hashSecret(secret),
    };
    this.#byId.set(record.id, record);
    this.#bySecretHash.set(record.secretHash, record);
    const key = encodeProvisioningKey({ controlUrl: this.#controlUrl(), caPin: this.#caPin, secret });
    return { id: record.id, key };
  }

  /** Returns false if there is no such key. Revocation is permanent. */
  revoke(id: string): boolean {
    const record = this.#byId.get(id);
    if (!record) return false;
    record.revoked = true;
    return true;
  }

  /**
   * The key a secret belongs to, if it may enroll a connector now; otherwise throws the PROTOCOL §3.2 error
   * (KEY_UNKNOWN 401; KEY_REVOKED, KEY_EXPIRED, KEY_EXHAUSTED 403). Does not count a use.
   */
  authorize(secret: string): { id: string; group: string } {
    const record = this.#bySecretHash.get(hashSecret(secret));
    if (!record) throw new CloudApiError(401, "KEY_UNKNOWN", "no such provisioning key");
    if (record.revoked) throw new CloudApiError(403, "KEY_REVOKED", "the provisioning key was revoked");
    if (this.#now() >= record.expiresAtMs) {
      throw new CloudApiError(
        403,
        "KEY_EXPIRED",
        `the provisioning key expired at ${new Date(record.expiresAtMs).toISOString()}`,
      );
    }
    if (record.uses >= record.maxUses) {
      throw new CloudApiError(
        403,
        "KEY_EXHAUSTED",
        `the provisioning key has been used its maximum of ${record.maxUses} times`,
      );
    }
    return { id: record.id, group: record.group };
  }

  /** Counts one enrollment against the key; called only once a certificate has been issued. */
  recordUse(id: string): void {
    const record = this.#byId.get(id);
    if (record) record.uses += 1;
  }

  get(id: string): KeyInfo | undefined {
    const record = this.#byId.get(id);
    return record && toInfo(record);
  }

  list(): KeyInfo[] {
    return [...this.#byId.values()].map(toInfo);
  }
}

function toInfo(r: KeyRecord): KeyInfo {
  return {
    id: r.id,
    group: r.group,
    maxUses: r.maxUses,
    uses: r.uses,
    expiresAt: new Date(r.expiresAtMs).toISOString(),
    revoked: r.revoked,
  };
}
