/**
 * The kill -9 helper of test/upgrade/swap-kill.test.ts: swaps `<installed>` for the bytes of
 * `<new-file>` and SIGKILLs itself when the swap reaches `<step>` (no cleanup, no finally blocks run:
 * what a power cut or an OOM kill leaves). Exits 0 when the step is never reached; when the swap
 * fails, prints `SWAP_ERROR <code>: <message>` and exits 3 (tests run it as another user, too).
 *   bun test/support/swap-child.ts <installed> <new-file> <step>
 */
import { readFileSync } from "node:fs";
import { isUpgradeError } from "../../src/upgrade/errors.ts";
import { canReplace, swapBinary, type SwapStep } from "../../src/upgrade/swap.ts";

const [installed, newFile, killAt] = process.argv.slice(2);
if (installed === undefined || newFile === undefined || killAt === undefined) {
  console.error("usage: swap-child.ts <installed> <new-file> <step>");
  process.exit(2);
}
console.log(`CAN_REPLACE ${canReplace(installed)}`);
await swapBinary({
  installed,
  bytes: readFileSync(newFile),
  check: async (temp) => {
    const child = Bun.spawnSync([temp, "--version"], { env: {} });
    if (child.exitCode !== 0) throw new Error(`${temp} --version exited ${child.exitCode}`);
  },
  hook: (step: SwapStep) => {
    if (step === killAt) process.kill(process.pid, "SIGKILL");
  },
}).catch((err: unknown) => {
  console.log(
    `SWAP_ERROR ${isUpgradeError(err) ? err.code : "?"}: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(3);
});
