/**
 * The kernel's NTP state through adjtimex(2), read-only (modes = 0, so no privilege is needed), via
 * bun:ffi: Bun has no API for it. A clock nobody disciplines drifts seconds per day, and a skew of
 * minutes breaks certificate validity checks and access-token lifetimes, so preflight warns about it.
 *
 * `struct timex` is 208 bytes on x86_64 and arm64 (the targets the connector is built for): `modes`
 * (u32) at 0, then 8-byte longs `offset`, `freq`, `maxerror`, `esterror` at 8..39, `status` (int) at
 * 40. The return value is the clock state; TIME_ERROR (5) means "not synchronised", as does the
 * STA_UNSYNC bit in `status` (set by the kernel until an NTP daemon says otherwise).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

export const TIMEX_BYTES = 208;
const STATUS_OFFSET = 40;
const MAXERROR_OFFSET = 24;
export const TIME_ERROR = 5;
export const STA_UNSYNC = 0x0040;

export type ClockSyncState = "synced" | "unsynced" | "unknown";

export interface ClockSync {
  readonly state: ClockSyncState;
  /** What was read, for the summary line (`adjtimex state 5, status 0x0041`). */
  readonly detail: string;
}

/** Reads what adjtimex(2) returned: its return value and the `status` and `maxerror` fields of the struct. */
export function clockSyncFromTimex(returned: number, status: number, maxErrorMicros?: number): ClockSync {
  const hex = `0x${(status >>> 0).toString(16).padStart(4, "0")}`;
  if (returned < 0) return { state: "unknown", detail: `adjtimex failed (returned ${returned})` };
  const detail = `adjtimex state ${returned}, status ${hex}${maxErrorMicros === undefined ? "" : `, max error ${Math.round(maxErrorMicros / 1000)} ms`}`;
  if (returned === TIME_ERROR || (status & STA_UNSYNC) !== 0) return { state: "unsynced", detail };
  return { state: "synced", detail };
}

const LIBRARY_NAMES = ["libc.so.6", "libc.so"];

/** Calls adjtimex(2) with modes = 0 (read only). "unknown" where there is no libc or not Linux. */
export function readClockSync(): ClockSync {
  if (process.platform !== "linux") return { state: "unknown", detail: `not Linux (${process.platform})` };
  let lib: ReturnType<typeof dlopen<{ adjtimex: { args: [FFIType.ptr]; returns: FFIType.i32 } }>> | undefined;
  const errors: string[] = [];
  for (const name of LIBRARY_NAMES) {
    try {
      lib = dlopen(name, { adjtimex: { args: [FFIType.ptr], returns: FFIType.i32 } });
      break;
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!lib) return { state: "unknown", detail: `cannot load the C library (${errors.join("; ")})` };
  try {
    const timex = new Uint8Array(TIMEX_BYTES); // modes = 0: nothing is changed
    const returned = lib.symbols.adjtimex(ptr(timex));
    const view = new DataView(timex.buffer);
    return clockSyncFromTimex(
      returned,
      view.getInt32(STATUS_OFFSET, true),
      Number(view.getBigInt64(MAXERROR_OFFSET, true)),
    );
  } finally {
    lib.close();
  }
}
