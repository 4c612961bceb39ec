/**
 * The last access token, kept in the state dir (`access-token.json`, 0600, written atomically) so a
 * connector restarted during a control-plane outage can still dial its tunnels while that token lives
 * (the stored catalog says where streams may go; the token is what gateways need to take a tunnel).
 * A token is useless without the private key of the certificate it is bound to, which lives in the
 * same directory under the same protection. The file names the certificate (SHA-256 of its PEM): after
 * a renewal or a re-enrollment the stored token is not offered. Anything wrong with the file makes it
 * ignored, never fatal: the connector then waits for a fresh token as it would without one.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import * as v from "valibot";
import { AccessTokenValueSchema } from "../control/api.ts";
import { readJsonState } from "../state/json-state-file.ts";
import { Secret } from "../secret.ts";
import { PRIVATE_FILE_MODE, writeFileAtomic } from "../state/atomic-file.ts";

export const TOKEN_FILE = "access-token.json";
/** A token is at most 8 KiB (docs/PROTOCOL.md §5.2, TOKEN_UPDATE); the record adds a few fields. */
const MAX_STORED_BYTES = 16 * 1024;

const StoredTokenSchema = v.object({
  certificateSha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  /** The API's rule: a corrupted stored token is ignored here instead of failing every dial. */
  token: AccessTokenValueSchema,
  /** When the token expires by this host's clock (its life as answered, counted from receipt). */
  expiresAt: v.pipe(v.string(), v.isoTimestamp()),
});

export interface StoredToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export function certificateDigest(certificatePem: string): string {
  return createHash("sha256").update(certificatePem).digest("hex");
}

export class TokenStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, TOKEN_FILE);
  }

  /** Keeps `token`, bound to `certificatePem`, valid until `expiresAt`. Throws on a write failure. */
  save(certificatePem: string, token: string, expiresAt: Date): void {
    const record: v.InferInput<typeof StoredTokenSchema> = {
      certificateSha256: certificateDigest(certificatePem),
      token,
      expiresAt: expiresAt.toISOString(),
    };
    writeFileAtomic(this.path, `${JSON.stringify(record)}\n`, PRIVATE_FILE_MODE);
  }

  /** The stored token for `certificatePem`, or why there is none usable (for a debug line). */
  load(certificatePem: string): { found: true; stored: StoredToken } | { found: false; why: string } {
    const loaded = readJsonState(this.path, StoredTokenSchema, MAX_STORED_BYTES);
    if (!loaded.found) return loaded;
    if (loaded.value.certificateSha256 !== certificateDigest(certificatePem))
      return { found: false, why: `${TOKEN_FILE} is for another certificate` };
    return { found: true, stored: { token: loaded.value.token, expiresAt: new Date(loaded.value.expiresAt) } };
  }

  /** The stored token as `AccessTokens.seed` takes it, its life counted against `now`; or why none. */
  seedFor(certificatePem: string, now: Date) {
    const loaded = this.load(certificatePem);
    if (!loaded.found) return loaded;
    const { token, expiresAt } = loaded.stored;
    return {
      found: true as const,
      seed: {
        value: new Secret(token),
        certificate: certificatePem,
        expiresAt: expiresAt.toISOString(),
        lifeLeftMs: expiresAt.getTime() - now.getTime(),
      },
    };
  }
}
