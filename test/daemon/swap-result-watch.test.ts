import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RESULT_POLL_MS, watchSwapResult, type SwapResult } from "../../src/daemon/swap-result-watch.ts";
import { FakeClock } from "../support/fake-clock.ts";

let dir: string;
let clock: FakeClock;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "swap-result-"));
  mkdirSync(join(dir, "upgrade"), { mode: 0o700 });
  clock = new FakeClock();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Written as the upgrade flow does: a new file renamed into place. */
function writeResult(body: unknown): void {
  const tmp = join(dir, "upgrade", "result.json.tmp");
  writeFileSync(tmp, typeof body === "string" ? body : JSON.stringify(body), { mode: 0o600 });
  renameSync(tmp, join(dir, "upgrade", "result.json"));
}

function watch() {
  const swapped: SwapResult[] = [];
  const unreadable: string[] = [];
  const watcher = watchSwapResult({
    stateDir: dir,
    clock,
    version: "1.0.0",
    onSwapped: (r) => swapped.push(r),
    onUnreadable: (e) => unreadable.push(e),
  });
  return { swapped, unreadable, watcher };
}

test("a new swapped result to another version triggers once; a result there at start never does", async () => {
  writeResult({ schema: 1, id: "old", result: "swapped", to: "0.9.0" });
  const { swapped, watcher } = watch();
  await clock.advance(3 * RESULT_POLL_MS);
  expect(swapped).toEqual([]);
  writeResult({
    schema: 1,
    id: "new",
    action: "apply",
    result: "swapped",
    from: "1.0.0",
    to: "1.1.0",
    at: "2026-01-01T00:00:00Z",
  });
  await clock.advance(RESULT_POLL_MS);
  expect(swapped.map((r) => r.id)).toEqual(["new"]);
  // Rewritten with the same id (e.g. touched): not a second hand-over.
  writeResult({ schema: 1, id: "new", result: "swapped", to: "1.1.0" });
  await clock.advance(3 * RESULT_POLL_MS);
  expect(swapped.map((r) => r.id)).toEqual(["new"]);
  watcher.stop();
});

test("results that are not a swap to another version are ignored; a broken file is reported", async () => {
  const { swapped, unreadable, watcher } = watch();
  writeResult({ schema: 1, id: "a", result: "refused", code: "NOT_NEWER" });
  await clock.advance(RESULT_POLL_MS);
  writeResult({ schema: 1, id: "b", result: "swapped", to: "1.0.0" }); // the running version
  await clock.advance(RESULT_POLL_MS);
  writeResult("{not json");
  await clock.advance(RESULT_POLL_MS);
  expect(swapped).toEqual([]);
  expect(unreadable).toHaveLength(1);
  writeResult({ schema: 1, id: "c", result: "swapped" }); // no version named: hand over
  await clock.advance(RESULT_POLL_MS);
  expect(swapped.map((r) => r.id)).toEqual(["c"]);
  watcher.stop();
  writeResult({ schema: 1, id: "d", result: "swapped", to: "2.0.0" });
  await clock.advance(3 * RESULT_POLL_MS);
  expect(swapped.map((r) => r.id)).toEqual(["c"]);
});
