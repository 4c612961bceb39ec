/**
 * The few libc calls the connector needs and Bun does not expose, through bun:ffi (works in the
 * compiled binary): flock(2) for the daemon lock, prctl(2) to make the process non-dumpable,
 * getenv(3)/memset(3) to overwrite a secret in the process's original environment block (what
 * /proc/PID/environ shows; deleting it from `process.env` does not touch those bytes), and
 * getrlimit(2)/setrlimit(2) for the file-descriptor limit (src/host/rlimit.ts).
 * Loaded on first use; glibc is `libc.so.6`, musl's loader answers to `libc.so`.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const LIBRARY_NAMES = ["libc.so.6", "libc.so"];

const SYMBOLS = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  getenv: { args: [FFIType.cstring], returns: FFIType.ptr },
  strlen: { args: [FFIType.ptr], returns: FFIType.u64 },
  memset: { args: [FFIType.ptr, FFIType.i32, FFIType.u64], returns: FFIType.ptr },
  __errno_location: { args: [], returns: FFIType.ptr },
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
} as const;

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const errors: string[] = [];
  for (const name of LIBRARY_NAMES) {
    try {
      libc = dlopen(name, SYMBOLS).symbols;
      return libc;
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`cannot load the C library (${errors.join("; ")})`);
}

function errno(c: Libc): number {
  const at = c.__errno_location();
  return at === null ? 0 : read.i32(at, 0);
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
/** EWOULDBLOCK (= EAGAIN) on every Linux architecture. */
export const EWOULDBLOCK = 11;

/** flock(2); returns 0 on success, else the errno (EWOULDBLOCK when LOCK_NB and held elsewhere). */
export function flock(fd: number, operation: number): number {
  const c = load();
  return c.flock(fd, operation) === 0 ? 0 : errno(c);
}

const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;

/**
 * Makes the process non-dumpable: no core dump (which would hold the private key and the provisioning
 * key), no ptrace attach by other processes of the same user, and /proc/PID files owned by root.
 */
export function setNonDumpable(): void {
  const c = load();
  if (c.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) !== 0) throw new Error(`prctl(PR_SET_DUMPABLE) failed (errno ${errno(c)})`);
}

export function isDumpable(): boolean {
  return load().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) === 1;
}

/**
 * Overwrites the value of `name` in the C environment with NUL bytes, in place, so neither
 * /proc/PID/environ nor a later getenv shows it. Returns whether the variable was there.
 */
export function scrubEnvironmentValue(name: string): boolean {
  const c = load();
  const value = c.getenv(Buffer.from(`${name}\0`));
  if (value === null) return false;
  c.memset(value, 0, c.strlen(value));
  return true;
}

/** getrlimit(2) into `out` (soft, hard as 64-bit rlim_t); returns 0 on success. Throws without a C library. */
export function getrlimit(resource: number, out: BigUint64Array): number {
  return load().getrlimit(resource, ptr(out));
}

/** setrlimit(2) from `value` (soft, hard); returns 0 on success. Throws without a C library. */
export function setrlimit(resource: number, value: BigUint64Array): number {
  return load().setrlimit(resource, ptr(value));
}
