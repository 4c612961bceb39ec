/**
 * Makes the compiled executable deaf to the environment variables through which the Bun runtime
 * would run other code than the connector's or print its secrets: `BUN_OPTIONS` (e.g.
 * `--preload ./x.ts`), `BUN_BE_BUN` (the binary becomes the `bun` CLI), `BUN_INSPECT*` (a debugger
 * that evaluates code sent to it) and `BUN_CONFIG_VERBOSE_FETCH` (prints every request with its
 * headers and body, the provisioning secret included). Bun 1.4.5 has no build flag for these.
 *
 * The runtime holds each name as bytes in the executable, in a NUL-terminated string pool and in
 * length-delimited tables. The first byte of each occurrence is overwritten with NUL: the entry
 * keeps its length, and a name starting with NUL is one no environment can hold, so no lookup
 * matches it any more. Suffixes the linker merged into the same bytes (e.g. "OPTIONS") are
 * untouched. An occurrence followed by "_" is a longer name (patched under its own entry), and one
 * after "process.env." is the source of a built-in JS module, left intact: it only runs under the
 * inspector, which can no longer be enabled.
 *
 * The expected counts are those of Bun 1.4.5 on every Linux target (the runtime is the same code
 * there). A Bun upgrade that moves, adds or drops one fails the build instead of shipping an
 * unpatched binary: find where the new runtime reads the name and update this table.
 */

export const NEUTRALIZED_ENV_NAMES: Readonly<Record<string, number>> = {
  BUN_OPTIONS: 2,
  BUN_BE_BUN: 1,
  BUN_INSPECT: 2,
  BUN_INSPECT_CONNECT_TO: 4,
  BUN_INSPECT_NOTIFY: 1,
  BUN_INSPECT_PRELOAD: 2,
  BUN_CONFIG_VERBOSE_FETCH: 2,
};

const JS_ACCESS = Buffer.from("process.env.", "latin1");
const UNDERSCORE = "_".charCodeAt(0);

/** Offsets of `name` in `binary` that are the name itself, not a longer name or built-in JS source. */
function occurrences(binary: Buffer, name: string): number[] {
  const needle = Buffer.from(name, "latin1");
  const offsets: number[] = [];
  for (let at = binary.indexOf(needle); at !== -1; at = binary.indexOf(needle, at + 1)) {
    if (binary[at + needle.length] === UNDERSCORE) continue;
    if (at >= JS_ACCESS.length && binary.subarray(at - JS_ACCESS.length, at).equals(JS_ACCESS)) continue;
    offsets.push(at);
  }
  return offsets;
}

/** Patches `binary` in place; throws (naming each variable and its count) unless every count is as expected. */
export function neutralizeRuntimeEnv(
  binary: Buffer,
  expected: Readonly<Record<string, number>> = NEUTRALIZED_ENV_NAMES,
): void {
  const found = Object.entries(expected).map(([name, count]) => ({ name, count, offsets: occurrences(binary, name) }));
  const wrong = found.filter((f) => f.offsets.length !== f.count);
  if (wrong.length > 0) {
    const list = wrong.map((f) => `${f.name} ${f.offsets.length} times (expected ${f.count})`).join(", ");
    throw new Error(
      `cannot neutralize the Bun runtime's environment variables: found ${list}. The Bun runtime changed: ` +
        "find where it now reads these names and update scripts/neutralize-runtime-env.ts before releasing.",
    );
  }
  // Patched only once every count matched, so a failure leaves the bytes as the compiler wrote them.
  for (const { offsets } of found) for (const at of offsets) binary[at] = 0;
}
