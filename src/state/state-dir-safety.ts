/**
 * What sits at the top of the state dir is trusted: `provision_key` names the cloud to enroll with,
 * `.identity.old` is renamed into place by recovery, `catalog.json` says where streams may go,
 * `access-token.json` is offered to gateways. So, like sshd's StrictModes, a state dir another local
 * user could write into is refused (never chmodded: it may be shared, or someone else's), and every
 * state file is opened without following a symlink, checked on the opened fd (regular file, owner,
 * mode) and read, bounded, from that same fd, so nothing can be swapped in between a check and a read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { ConnectorError, errnoCode, ExitCode, StateError } from "../errors.ts";

const euid = (): number | undefined => process.geteuid?.();
const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, "0");

/** Why `stats` (of a directory or file) could be written by someone other than us or root, or undefined. */
function foreignWriter(stats: Stats, me: number | undefined): string | undefined {
  if (me !== undefined && stats.uid !== me && stats.uid !== 0)
    return `owned by uid ${stats.uid}, not by this user (uid ${me}) or root`;
  if ((stats.mode & 0o022) === 0) return undefined;
  const writers = [
    (stats.mode & 0o020) !== 0 ? "its group" : undefined,
    (stats.mode & 0o002) !== 0 ? "all users" : undefined,
  ];
  return `writable by ${writers.filter((w) => w !== undefined).join(" and ")}`;
}

/**
 * Refuses a state dir (followed if a symlink) not owned by the effective uid or root, or writable by
 * group or others (sticky or not): another local user could plant files there that the connector
 * trusts. Does nothing when the directory does not exist (whoever creates it creates it 0700).
 * `judgedFor: "owner"` asks whether the dir is safe for the user who owns it, not for this process.
 */
export function assertStateDirSafe(dir: string, judgedFor: "self" | "owner" = "self"): void {
  let stats: Stats;
  try {
    stats = statSync(dir);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return;
    throw err;
  }
  if (!stats.isDirectory()) return; // the caller reports STATE_DIR_NOT_A_DIRECTORY
  // "owner": root checking a dir for the service user that owns it (preflight on an installed host):
  // whoever owns it is who the daemon runs as, so only writers other than the owner matter.
  const problem = foreignWriter(stats, judgedFor === "owner" ? stats.uid : euid());
  if (problem === undefined) return;
  throw new StateError(
    "STATE_DIR_UNSAFE",
    `The state dir ${dir} is ${problem} (mode ${octal(stats.mode)}, owner uid ${stats.uid}): another local user could plant an identity or a key there, so it is not used. ` +
      `Fix it: chmod go-w ${dir} (and chown it to the connector's user if needed), or choose another --state-dir.`,
  );
}

export interface StateFileRule {
  /** "self": owned by the effective uid (files the connector writes); "self-or-root": root may own it too. */
  readonly owner: "self" | "self-or-root";
  /** Refuse a file group or others may write (files the connector writes itself, always 0600). */
  readonly privateMode: boolean;
  /** Root may read a file any user owns (`connector status` run by root on the connector user's dir). */
  readonly rootReadsAny?: boolean;
}

/** A state file that is there but must not be trusted (symlink, not a regular file, foreign owner, shared mode, too big). */
export class UnsafeStateFileError extends ConnectorError {
  override readonly name = "UnsafeStateFileError";
  constructor(path: string, why: string) {
    super("STATE_FILE_UNSAFE", `${path} ${why}; it is not used.`, ExitCode.failure);
  }
}

/**
 * Reads the state file `path` as UTF-8: opened O_NOFOLLOW (and O_NONBLOCK, so a planted FIFO does not
 * hang the open), checked with fstat on that fd against `rule`, at most `maxBytes` read from it.
 * A missing file throws the ENOENT error as it is; anything refused throws `UnsafeStateFileError`.
 */
export function readStateFile(path: string, maxBytes: number, rule: StateFileRule): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === "ELOOP") throw new UnsafeStateFileError(path, "is a symbolic link");
    throw err;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new UnsafeStateFileError(path, "is not a regular file");
    const me = euid();
    const ownerOk =
      me === undefined ||
      stats.uid === me ||
      (rule.owner === "self-or-root" && stats.uid === 0) ||
      (rule.rootReadsAny === true && me === 0);
    if (!ownerOk) throw new UnsafeStateFileError(path, `is owned by uid ${stats.uid}, not by this user (uid ${me})`);
    if (rule.privateMode && (stats.mode & 0o022) !== 0)
      throw new UnsafeStateFileError(path, `is writable by other users (mode ${octal(stats.mode)})`);
    if (stats.size > maxBytes)
      throw new UnsafeStateFileError(path, `is ${stats.size} bytes, over the ${maxBytes}-byte limit`);
    const buffer = Buffer.alloc(maxBytes + 1);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, null);
      if (n === 0) break;
      read += n;
    }
    if (read > maxBytes) throw new UnsafeStateFileError(path, `is over the ${maxBytes}-byte limit`);
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
