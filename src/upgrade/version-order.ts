/**
 * Version precedence as semver defines it (MAJOR.MINOR.PATCH, then pre-release identifiers; a release
 * is above its pre-releases). Rollback checks and "is this newer" rest on it, so it must order
 * `1.10.0` above `1.9.0` and `1.5.0-rc.10` above `1.5.0-rc.9`, which string comparison does not.
 */
import { VERSION_PATTERN } from "./format.ts";

interface Parsed {
  core: [number, number, number];
  pre: string[];
}

function parse(version: string): Parsed {
  const m = VERSION_PATTERN.exec(version);
  if (!m) throw new TypeError(`"${version.slice(0, 64)}" is not a version such as 1.4.2 or 1.5.0-rc.1`);
  return { core: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] === undefined ? [] : m[4].split(".") };
}

const sign = (n: number): -1 | 0 | 1 => (n < 0 ? -1 : n > 0 ? 1 : 0);
const NUMERIC = /^\d+$/;

function compareIdentifier(a: string, b: string): -1 | 0 | 1 {
  const an = NUMERIC.test(a);
  const bn = NUMERIC.test(b);
  if (an && bn) return sign(Number(a) - Number(b));
  if (an !== bn) return an ? -1 : 1; // numeric identifiers have lower precedence than alphanumeric ones
  return a < b ? -1 : a > b ? 1 : 0; // ASCII order
}

/** -1 when a precedes b, 1 when it follows, 0 when equal. Throws TypeError for a string that is not a version. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = sign(pa.core[i]! - pb.core[i]!);
    if (d !== 0) return d;
  }
  if (pa.pre.length === 0 || pb.pre.length === 0) return sign(pb.pre.length - pa.pre.length);
  for (let i = 0; i < Math.min(pa.pre.length, pb.pre.length); i++) {
    const d = compareIdentifier(pa.pre[i]!, pb.pre[i]!);
    if (d !== 0) return d;
  }
  return sign(pa.pre.length - pb.pre.length);
}
