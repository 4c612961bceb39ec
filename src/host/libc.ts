/**
 * The few libc calls the connector needs and Bun does not expose, through bun:ffi (works in the
 * compiled binary): flock(2) for the daemon lock, prctl(2) to make the process non-dumpable,
 * getenv(3)/memset(3) to overwrite a secret in the process's original environment block (what
 * /proc/PID/environ shows; deleting it from `process.env` does not touch those bytes), and
 * getrlimit(2)/setrlimit(2) for the file-descriptor limit (src/host/rlimit.ts), and a datagram
 * sendto(2) on a Unix socket for systemd's readiness protocol (src/host/sd-notify.ts).
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
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sendto: {
    args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32],
    returns: FFIType.i64,
  },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
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

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** sizeof(struct sockaddr_un): 2 bytes of family, 108 of path. */
const SOCKADDR_UN_BYTES = 110;

/**
 * Sends one datagram to the Unix socket at `path` (a leading "@" names the abstract namespace, as
 * systemd writes it). Returns 0 on success, else the errno. Throws without a C library.
 */
export function sendUnixDatagram(path: string, message: Uint8Array): number {
  const name = Buffer.from(path.startsWith("@") ? `\0${path.slice(1)}` : path);
  if (name.byteLength >= SOCKADDR_UN_BYTES - 2) return 36; // ENAMETOOLONG
  const address = new Uint8Array(SOCKADDR_UN_BYTES);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, 2);
  const c = load();
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno(c);
  try {
    const body = message.byteLength > 0 ? message : new Uint8Array(1);
    const sent = c.sendto(fd, ptr(body), BigInt(message.byteLength), 0, ptr(address), 2 + name.byteLength);
    return sent < 0 ? errno(c) : 0;
  } finally {
    c.close(fd);
  }
}
