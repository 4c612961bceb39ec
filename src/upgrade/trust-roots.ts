/**
 * The release trust compiled into this binary: the root public keys a release-key set must be signed
 * by (at least ROOT_THRESHOLD of them), and the release host's base URL. `build.ts` defines
 * BUILD_TRUST_ROOTS (an array of base64 SPKI DER) and BUILD_RELEASE_BASE_URL at compile time.
 *
 * Deliberately no flag, environment variable or file can change these at runtime: whoever could set
 * them could make the connector run a binary of their choosing. Running from source defines neither,
 * so there are no roots (every release is refused with NO_TRUST_ROOTS) and no base URL.
 */
import { keyIdOf } from "./format.ts";

declare const BUILD_TRUST_ROOTS: unknown;
declare const BUILD_RELEASE_BASE_URL: unknown;

/** The define's value, or undefined when the global was not defined (a ReferenceError: from source). */
function defined(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return undefined;
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Only a well-formed array of base64 strings counts; anything else embeds no roots rather than a guess. */
export function parseTrustRoots(value: unknown): readonly string[] {
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === "string" && BASE64.test(item)))
    return Object.freeze([]);
  return Object.freeze([...value]);
}

export function parseReleaseBaseUrl(value: unknown): string | undefined {
  return typeof value === "string" && /^https?:\/\/\S+$/.test(value) ? value : undefined;
}

/** Base64 SPKI DER of every compiled-in root (sorted by the build); empty when running from source. */
export const trustedRoots: readonly string[] = parseTrustRoots(defined(() => BUILD_TRUST_ROOTS));

/** `<base>/<channel>/manifest.json` is the default manifest URL; undefined when none was baked in. */
export const releaseBaseUrl: string | undefined = parseReleaseBaseUrl(defined(() => BUILD_RELEASE_BASE_URL));

/** Key ids of the compiled-in roots, in the order of `trustedRoots` (they name the key-set signatures). */
export function rootIds(): string[] {
  return trustedRoots.map(keyIdOf);
}
