/**
 * The last check before a binary is trusted: it must run on this machine and say, in its own words,
 * that it is the version and target the signed manifest promised. It runs with an empty environment
 * (nothing of ours, no secrets, leaks into it), no stdin, its output capped and a deadline, so a
 * candidate that hangs, floods or crashes is refused, never waited on.
 */
import { errnoCode } from "../errors.ts";
import { UpgradeError } from "./errors.ts";

export const SELF_CHECK_TIMEOUT_MS = 10_000;
export const MAX_SELF_CHECK_OUTPUT_BYTES = 4096;

type Output = { text: string } | { overflow: true };

async function readCapped(reader: {
  read(): Promise<{ done: boolean; value?: Uint8Array | undefined }>;
}): Promise<Output> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || value === undefined) break;
      total += value.byteLength;
      if (total > MAX_SELF_CHECK_OUTPUT_BYTES) return { overflow: true };
      chunks.push(value);
    }
  } catch {
    // the pipe broke or was cancelled: what was read so far is judged
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)) };
}

const printable = (text: string): string => text.slice(0, 200).replace(/[^\x20-\x7e]/g, "?");

/** Runs `<binaryPath> --version`; anything but exit 0 and `connector <version> (... target <target>)` is SELF_CHECK_FAILED. */
export async function selfCheck(
  binaryPath: string,
  expected: { version: string; target: string },
  timeoutMs = SELF_CHECK_TIMEOUT_MS,
): Promise<void> {
  const fail = (why: string) =>
    new UpgradeError(
      "SELF_CHECK_FAILED",
      `The new binary ${binaryPath} ${why}; expected "connector ${expected.version} (... target ${expected.target})". It is not installed.`,
    );
  let proc: Bun.Subprocess<"ignore", "pipe", "ignore">;
  try {
    proc = Bun.spawn({ cmd: [binaryPath, "--version"], env: {}, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  } catch (err) {
    throw fail(`cannot be started (${errnoCode(err) ?? "error"})`);
  }
  const reader = proc.stdout.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    // Reading to EOF and the exit together, against the deadline: a grandchild that keeps stdout open
    // cannot hold this past it.
    const outcome = await Promise.race([
      readCapped(reader).then(async (output) => {
        if ("overflow" in output) proc.kill("SIGKILL");
        return { output, exitCode: await proc.exited };
      }),
      deadline,
    ]);
    if (outcome === "timeout") throw fail(`did not answer --version within ${timeoutMs} ms`);
    const { output } = outcome;
    if ("overflow" in output) throw fail(`printed more than ${MAX_SELF_CHECK_OUTPUT_BYTES} bytes for --version`);
    if (proc.signalCode !== null) throw fail(`was killed by ${proc.signalCode} when asked for --version`);
    if (outcome.exitCode !== 0)
      throw fail(`exited with status ${outcome.exitCode} for --version (printed "${printable(output.text.trim())}")`);
    const line = output.text.split("\n")[0]!.trim();
    if (!line.startsWith(`connector ${expected.version} (`) || !line.endsWith(`target ${expected.target})`)) {
      throw fail(`printed "${printable(line)}" for --version`);
    }
  } finally {
    clearTimeout(timer);
    proc.kill("SIGKILL"); // no-op once it has exited
    reader.cancel().catch(() => {});
  }
}
