/**
 * Build information. `build.ts` replaces the `BUILD_*` globals at compile time (bun build --define);
 * running from source leaves them undefined and the values below say "dev".
 */
declare const BUILD_VERSION: string | undefined;
declare const BUILD_COMMIT: string | undefined;
declare const BUILD_DATE: string | undefined;
declare const BUILD_TARGET: string | undefined;

function defined(read: () => string | undefined, fallback: string): string {
  try {
    return read() ?? fallback;
  } catch {
    return fallback; // a ReferenceError means the global was not defined: running from source
  }
}

/** MAJOR.MINOR.PATCH with an optional pre-release; build metadata is not allowed (it would not order).
 * What a version looks like, for settings (`--pin-version`) and for releases alike. */
export const VERSION_PATTERN =
  /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

export const buildInfo = {
  version: defined(() => BUILD_VERSION, "0.0.0-dev"),
  commit: defined(() => BUILD_COMMIT, "unknown"),
  date: defined(() => BUILD_DATE, "unknown"),
  target: defined(() => BUILD_TARGET, `${process.platform}-${process.arch}-source`),
} as const;

export function versionLine(): string {
  return `connector ${buildInfo.version} (commit ${buildInfo.commit}, built ${buildInfo.date}, target ${buildInfo.target})`;
}
