/**
 * The releases the reference release server can serve: DIR itself and each direct subdirectory of
 * DIR that holds a manifest.json (as `bun run release` writes them). Re-read on every request, so a
 * test publishes release B by writing `DIR/b/`. Only a manifest's `channel` and `sequence` are read
 * here, loosely, so a test may also publish a manifest the connector must refuse; the newest release
 * of a channel is the one with the highest sequence (ties: the last directory name in sort order).
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import {
  binaryFile,
  Channel,
  KEYSET_FILE,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  MAX_MANIFEST_BYTES,
  TARGETS,
} from "../../../src/upgrade/format.ts";

/** Releases looked at per request: a release directory of a test holds a handful. */
export const MAX_RELEASE_DIRS = 1_000;

/** File names a release server hands out: the release format's, nothing else (never a path). */
const SERVED_NAMES = new Set<string>([
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  KEYSET_FILE,
  "install.sh",
  ...TARGETS.map(binaryFile),
]);
const KEYSET_SIGNATURE = /^release-keys\.json\.([0-9a-f]{16})\.sig$/;

export function isServedName(name: string): boolean {
  return SERVED_NAMES.has(name) || KEYSET_SIGNATURE.test(name);
}

/** The target a binary file name is for, or undefined for any other file. */
export function targetOf(name: string): string | undefined {
  return TARGETS.find((t) => binaryFile(t) === name);
}

/** A release directory name as it appears in `/r/<name>/`: one path segment, no dot-dot. */
export const isReleaseName = (name: string) => /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name);

export interface ReleaseDir {
  /** Its name under `/r/`, or undefined for DIR itself. */
  readonly name: string | undefined;
  readonly path: string;
  readonly channel: string;
  readonly sequence: number;
  /** The manifest's exact bytes. */
  readonly manifestText: string;
}

const ManifestHead = v.looseObject({ channel: Channel, sequence: v.pipe(v.number(), v.integer(), v.minValue(0)) });

/** Reads at most MAX_MANIFEST_BYTES of a regular file; undefined if it is missing, not regular or bigger. */
export function readSmallFile(path: string, maxBytes = MAX_MANIFEST_BYTES): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const buffer = Buffer.alloc(st.size);
    let read = 0;
    while (read < st.size) {
      const n = readSync(fd, buffer, read, st.size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function readRelease(path: string, name: string | undefined): ReleaseDir | undefined {
  const bytes = readSmallFile(join(path, MANIFEST_FILE));
  if (!bytes) return undefined;
  const manifestText = bytes.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(manifestText);
  } catch {
    return undefined;
  }
  const head = v.safeParse(ManifestHead, json);
  return head.success
    ? { name, path, channel: head.output.channel, sequence: head.output.sequence, manifestText }
    : undefined;
}

export class ReleaseStore {
  constructor(readonly root: string) {}

  /** Every release now: DIR itself (if it holds a manifest) and its subdirectories, in name order. */
  list(): ReleaseDir[] {
    const found: ReleaseDir[] = [];
    const own = readRelease(this.root, undefined);
    if (own) found.push(own);
    let names: string[];
    try {
      names = readdirSync(this.root).filter(isReleaseName).sort().slice(0, MAX_RELEASE_DIRS);
    } catch {
      return found;
    }
    for (const name of names) {
      const path = join(this.root, name);
      try {
        if (!statSync(path).isDirectory()) continue;
      } catch {
        continue;
      }
      const release = readRelease(path, name);
      if (release) found.push(release);
    }
    return found;
  }

  /** The newest (highest sequence) release of `channel`. */
  newest(channel: string): ReleaseDir | undefined {
    let best: ReleaseDir | undefined;
    for (const r of this.list()) if (r.channel === channel && (!best || r.sequence >= best.sequence)) best = r;
    return best;
  }

  /** The release in `DIR/<name>/`. */
  byName(name: string): ReleaseDir | undefined {
    if (!isReleaseName(name)) return undefined;
    return this.list().find((r) => r.name === name);
  }

  channels(): string[] {
    return [...new Set(this.list().map((r) => r.channel))].sort();
  }
}
