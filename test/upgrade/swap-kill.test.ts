import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prevPath, type SwapStep } from "../../src/upgrade/swap.ts";
import { runVersion, writeFakeBinary } from "../support/swap-binaries.ts";

const CHILD = join(import.meta.dir, "../support/swap-child.ts");
const STEPS: readonly SwapStep[] = [
  "temp-written",
  "temp-synced",
  "temp-executable",
  "checked",
  "prev-kept",
  "renamed",
  "dir-synced",
];
/** From this step on the new binary is in place; before it the old one still is. */
const FIRST_NEW = STEPS.indexOf("renamed");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "swap-kill-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("swapBinary killed with SIGKILL at every step", () => {
  for (const [index, step] of STEPS.entries()) {
    test(`killed after "${step}": connector is the complete ${index >= FIRST_NEW ? "new" : "old"} binary and runs`, async () => {
      const installed = join(dir, "bin", "connector");
      mkdirSync(join(dir, "bin"));
      const oldBytes = writeFakeBinary(installed, "1.0.0");
      const newBytes = writeFakeBinary(join(dir, "new-connector"), "1.1.0", "linux-x64", 5000);
      const child = Bun.spawn([process.execPath, CHILD, installed, join(dir, "new-connector"), step], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const exitCode = await child.exited;
      const stderr = await new Response(child.stderr).text();
      expect({ signal: child.signalCode, exitCode, stderr: child.signalCode === "SIGKILL" ? "" : stderr }).toEqual({
        signal: "SIGKILL",
        exitCode: 137,
        stderr: "",
      });

      const now = readFileSync(installed);
      const expected = index >= FIRST_NEW ? newBytes : oldBytes;
      expect(Buffer.compare(now, expected)).toBe(0);
      expect(runVersion(installed)).toContain(index >= FIRST_NEW ? "connector 1.1.0 " : "connector 1.0.0 ");
      // Once the old binary was kept, connector.prev is the complete old binary.
      if (index >= STEPS.indexOf("prev-kept"))
        expect(Buffer.compare(readFileSync(prevPath(installed)), oldBytes)).toBe(0);
      if (index >= FIRST_NEW) expect(readdirSync(join(dir, "bin")).sort()).toEqual(["connector", "connector.prev"]);
    });
  }

  test("the helper runs a swap to the end when the step is never reached", async () => {
    const installed = join(dir, "connector");
    writeFakeBinary(installed, "1.0.0");
    writeFakeBinary(join(dir, "new"), "1.1.0");
    const child = Bun.spawn([process.execPath, CHILD, installed, join(dir, "new"), "no-such-step"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await child.exited).toBe(0);
    expect(runVersion(installed)).toContain("connector 1.1.0 ");
    expect(existsSync(prevPath(installed))).toBe(true);
  });
});
