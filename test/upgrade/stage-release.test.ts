import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UpgradeError } from "../../src/upgrade/errors.ts";
import { requestAndWait } from "../../src/upgrade/stage-release.ts";
import { readRequest, requestPath, writeResult } from "../../src/upgrade/staging.ts";
import { FakeClock, flushQueued } from "../support/fake-clock.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "stage-release-"));
  dirs.push(dir);
  return dir;
}

test("the answer to this request (by id) is returned; another request's answer is not taken for it", async () => {
  const dir = stateDir();
  const clock = new FakeClock();
  const waiting = requestAndWait(dir, "apply", { deadlineMs: 60_000, pollMs: 1_000, clock });
  await flushQueued();
  const id = readRequest(dir)!.id;
  writeResult(dir, {
    id: "someone-else",
    action: "apply",
    result: "refused",
    from: "1.0.0",
    at: new Date().toISOString(),
  });
  await clock.advance(2_000);
  writeResult(dir, {
    id,
    action: "apply",
    result: "swapped",
    from: "1.0.0",
    to: "1.1.0",
    at: new Date().toISOString(),
  });
  await clock.advance(2_000);
  expect(await waiting).toMatchObject({ id, result: "swapped", to: "1.1.0" });
});

test("no unit answers by the deadline: APPLY_TIMEOUT, and the request is withdrawn", async () => {
  const dir = stateDir();
  const clock = new FakeClock();
  const waiting = requestAndWait(dir, "rollback", { deadlineMs: 10_000, pollMs: 1_000, clock }).catch(
    (e: unknown) => e,
  );
  await flushQueued();
  expect(existsSync(requestPath(dir))).toBe(true);
  await clock.advance(11_000);
  const error = await waiting;
  expect(error).toBeInstanceOf(UpgradeError);
  expect((error as UpgradeError).code).toBe("APPLY_TIMEOUT");
  expect(existsSync(requestPath(dir))).toBe(false);
});
