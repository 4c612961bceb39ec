/**
 * Retrieval of a release over HTTP(S), treating the release host (and any proxy) as hostile: every
 * body is read as a stream and cut at its cap (a manifest never grows past MAX_MANIFEST_BYTES in
 * memory, a binary never past its signed size + 1 byte on disk), every retrieval has an overall
 * deadline and a speed floor over a sliding window (a trickle that would hold the connection for
 * days is cut), and a binary is hashed as it is written, to a new file that is removed on any failure.
 */
import { createHash } from "node:crypto";
import { closeSync, fchmodSync, fsync, openSync, rmSync, writeSync } from "node:fs";
import { describeError, errnoCode } from "../errors.ts";
import { describeProxy, proxyFor } from "../control/no-proxy.ts";
import { UpgradeError } from "./errors.ts";
import { describeUrl, Guard, type RetrievalPolicy } from "./retrieval-guard.ts";
import {
  KEYSET_FILE,
  keysetSignatureFile,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  MAX_KEYSET_BYTES,
  MAX_MANIFEST_BYTES,
  type ManifestTarget,
} from "./format.ts";
import type { ReleaseFiles } from "./verify.ts";

export { describeUrl, type RetrievalPolicy };

export const DEFAULT_RETRIEVAL: Omit<RetrievalPolicy, "proxy" | "noProxy" | "signal" | "clock"> = {
  deadlineMs: 30 * 60_000,
  minBytesPerSecond: 16 * 1024,
  speedWindowMs: 30_000,
};

/** Signatures are 64 bytes; anything much bigger is not a signature and is not read further. */
const MAX_SIGNATURE_FILE_BYTES = 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Release hosts often redirect to a CDN; a chain longer than this is a loop or a trap. */
const MAX_REDIRECTS = 5;

/**
 * The response to GET `url` (redirects followed by hand, each hop on http(s) only and with its own
 * proxy choice), or undefined for a 404. Any other status than 200 is DOWNLOAD_FAILED.
 */
async function open(url: URL, guard: Guard): Promise<Response | undefined> {
  let current = url;
  for (let hop = 0; ; hop++) {
    if (current.protocol !== "https:" && current.protocol !== "http:") {
      throw new UpgradeError(
        "DOWNLOAD_FAILED",
        `${describeUrl(current)} is not an http or https URL; releases are retrieved over HTTP(S) only. Check --manifest-url.`,
      );
    }
    const proxy = proxyFor(current, guard.policy.proxy, guard.policy.noProxy);
    let response: Response;
    try {
      response = await fetch(current.toString(), {
        // `false` keeps Bun from applying HTTPS_PROXY/NO_PROXY from the environment on its own.
        proxy: proxy === undefined ? false : { url: proxy, respectNoProxy: false },
        signal: guard.controller.signal,
        redirect: "manual",
        headers: { accept: "*/*", "accept-encoding": "identity" },
      });
    } catch (err) {
      throw failureOf(err, current, guard, proxy);
    }
    const location = response.headers.get("location");
    if (response.status !== 200) await response.body?.cancel().catch(() => {});
    if (REDIRECTS.has(response.status) && location !== null && hop < MAX_REDIRECTS) {
      try {
        current = new URL(location, current);
      } catch {
        throw new UpgradeError(
          "DOWNLOAD_FAILED",
          `${describeUrl(current)} redirected to something that is not a URL. Check the release host.`,
        );
      }
      continue;
    }
    if (response.status === 404) return undefined;
    if (response.status !== 200) {
      throw new UpgradeError(
        "DOWNLOAD_FAILED",
        `The release host answered HTTP ${response.status} for ${describeUrl(current)}. Check --manifest-url and the release host.`,
      );
    }
    return response;
  }
}

function failureOf(err: unknown, url: URL, guard: Guard, proxy: string | undefined): UpgradeError {
  if (guard.failure) return guard.failure;
  if (err instanceof UpgradeError) return err;
  const via = proxy === undefined ? "" : ` through the proxy ${describeProxy(proxy)}`;
  const code = errnoCode(err) ?? (err instanceof Error ? err.name : "error");
  // No cause attached: what fetch throws may quote the URL with its credentials.
  return new UpgradeError(
    "DOWNLOAD_FAILED",
    `The retrieval of ${describeUrl(url)}${via} failed (${code}). Check the network, the proxy settings and --manifest-url.`,
  );
}

/** Reads the body into memory, refusing it past `maxBytes` without reading further. */
async function readCapped(
  response: Response,
  maxBytes: number,
  guard: Guard,
  tooLarge: () => UpgradeError,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  if (reader === undefined) return new Uint8Array();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      guard.count(value.byteLength);
      if (total > maxBytes) throw tooLarge();
      chunks.push(value);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function fetchSmall(url: URL, maxBytes: number, guard: Guard): Promise<Uint8Array | undefined> {
  const proxy = proxyFor(url, guard.policy.proxy, guard.policy.noProxy);
  const response = await open(url, guard);
  if (response === undefined) return undefined;
  try {
    return await readCapped(
      response,
      maxBytes,
      guard,
      () =>
        new UpgradeError(
          "MANIFEST_TOO_LARGE",
          `${describeUrl(url)} is over its ${maxBytes}-byte limit; it is not read. The release host serves something that is not a release.`,
        ),
    );
  } catch (err) {
    throw failureOf(err, url, guard, proxy);
  }
}

/**
 * The manifest, its signature, the key set and one key-set signature per root in `rootIds`, all beside
 * `manifestUrl`. A missing signature (404) is left out for verification to judge; a missing manifest
 * or key set is DOWNLOAD_FAILED.
 */
export async function fetchReleaseFiles(
  manifestUrl: URL,
  rootIds: readonly string[],
  policy: RetrievalPolicy,
): Promise<ReleaseFiles> {
  const guard = new Guard(policy, `the release at ${describeUrl(manifestUrl)}`);
  try {
    const beside = (name: string) => new URL(name, manifestUrl);
    const required = async (name: string, max: number): Promise<Uint8Array> => {
      const url = beside(name);
      const bytes = await fetchSmall(url, max, guard);
      if (bytes === undefined)
        throw new UpgradeError(
          "DOWNLOAD_FAILED",
          `The release host has no ${name} at ${describeUrl(url)} (HTTP 404). Check --manifest-url and --channel.`,
        );
      return bytes;
    };
    const manifest = await required(MANIFEST_FILE, MAX_MANIFEST_BYTES);
    const manifestSignature = await fetchSmall(beside(MANIFEST_SIGNATURE_FILE), MAX_SIGNATURE_FILE_BYTES, guard);
    const keyset = await required(KEYSET_FILE, MAX_KEYSET_BYTES);
    const keysetSignatures = new Map<string, Uint8Array>();
    for (const rootId of new Set(rootIds)) {
      const signature = await fetchSmall(beside(keysetSignatureFile(rootId)), MAX_SIGNATURE_FILE_BYTES, guard);
      if (signature !== undefined) keysetSignatures.set(rootId, signature);
    }
    return { manifest, manifestSignature, keyset, keysetSignatures };
  } finally {
    guard.done();
  }
}

function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset);
}

/**
 * Streams the binary at `url` to `destPath` (a new file, created exclusively, 0700), hashing as it
 * goes: stops as soon as it has more than `target.size` bytes (BODY_TOO_LONG), refuses a body that
 * ends short (BODY_TOO_SHORT) or hashes wrong (HASH_MISMATCH). On any failure `destPath` is removed.
 */
export async function downloadBinary(
  url: URL,
  target: ManifestTarget,
  destPath: string,
  policy: RetrievalPolicy,
): Promise<void> {
  const guard = new Guard(policy, describeUrl(url));
  const proxy = proxyFor(url, policy.proxy, policy.noProxy);
  let fd: number | undefined;
  let created = false;
  try {
    const response = await open(url, guard);
    if (response === undefined)
      throw new UpgradeError(
        "DOWNLOAD_FAILED",
        `The release host has no binary at ${describeUrl(url)} (HTTP 404), though its manifest names it. Report it to the release team.`,
      );
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    if (declared > target.size) {
      await response.body?.cancel().catch(() => {});
      throw tooLong(url, target);
    }
    fd = openSync(destPath, "wx", 0o700);
    created = true;
    const hash = createHash("sha256");
    let received = 0;
    const reader = response.body?.getReader();
    try {
      for (;;) {
        if (reader === undefined) break;
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
        guard.count(value.byteLength);
        if (received > target.size) throw tooLong(url, target);
        hash.update(value);
        writeAll(fd, value);
      }
    } catch (err) {
      if (guard.failure === undefined && !(err instanceof UpgradeError) && received < target.size) {
        // The connection ended mid-body (a truncated transfer): short of what the manifest says.
        throw new UpgradeError(
          "BODY_TOO_SHORT",
          `The transfer of ${describeUrl(url)} broke off after ${received} of ${target.size} bytes (${errnoCode(err) ?? "connection closed"}); it is discarded and retried on the next check.`,
        );
      }
      throw failureOf(err, url, guard, proxy);
    } finally {
      reader?.cancel().catch(() => {});
    }
    if (received < target.size) {
      throw new UpgradeError(
        "BODY_TOO_SHORT",
        `The binary ${describeUrl(url)} ended after ${received} bytes, short of the ${target.size} its signed manifest says; it is discarded and retried on the next check.`,
      );
    }
    const digest = hash.digest("hex");
    if (digest !== target.sha256) {
      throw new UpgradeError(
        "HASH_MISMATCH",
        `The binary ${describeUrl(url)} does not have the SHA-256 its signed manifest says (got ${digest}); it was altered or corrupted and is discarded.`,
      );
    }
    fchmodSync(fd, 0o700); // the umask may have narrowed it
    // Off the event loop: flushing 100 MiB can take seconds, and the daemon relays streams meanwhile.
    await fsyncAsync(fd);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
    if (created) rmSync(destPath, { force: true });
    if (err instanceof UpgradeError) throw err;
    if (!created && errnoCode(err) !== undefined && guard.failure === undefined) {
      throw new UpgradeError(
        "DOWNLOAD_FAILED",
        `The binary cannot be written to ${destPath} (${errnoCode(err)}): ${describeError(err)}. Check the state dir.`,
      );
    }
    throw failureOf(err, url, guard, proxy);
  } finally {
    if (fd !== undefined) closeSync(fd);
    guard.done();
  }
}

function tooLong(url: URL, target: ManifestTarget): UpgradeError {
  return new UpgradeError(
    "BODY_TOO_LONG",
    `The binary ${describeUrl(url)} is longer than the ${target.size} bytes its signed manifest says; it is discarded.`,
  );
}
