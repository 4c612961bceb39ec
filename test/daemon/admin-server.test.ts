import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "../../src/errors.ts";
import { startAdminServer } from "../../src/daemon/admin-server.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "admin-server-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A snapshot that says who answered (only the field the test reads). */
const answeredBy = (who: string) => () => ({ name: who }) as unknown as StatusSnapshot;

async function whoAnswers(path: string): Promise<string> {
  // No pooled connection: each ask must reach whatever socket the path names now.
  const response = await fetch("http://localhost/v1/status", {
    unix: path,
    keepalive: false,
    signal: AbortSignal.timeout(5_000),
  });
  return ((await response.json()) as { name: string }).name;
}

test("a second daemon is refused while the admin socket answers", async () => {
  const first = await startAdminServer(dir, answeredBy("first"));
  const err = await startAdminServer(dir, answeredBy("second")).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectorError);
  expect((err as ConnectorError).code).toBe("ALREADY_RUNNING");
  expect(await whoAnswers(first.path)).toBe("first");
  first.stop();
  expect(existsSync(first.path)).toBe(false);
});

test("hand-over: the successor takes the path over; the old one stopping leaves the successor's socket in place", async () => {
  const old = await startAdminServer(dir, answeredBy("old"));
  expect(statSync(old.path).mode & 0o777).toBe(0o660);
  const successor = await startAdminServer(dir, answeredBy("successor"), { takeOver: true });
  expect(successor.path).toBe(old.path);
  expect(await whoAnswers(old.path)).toBe("successor");
  expect(old.owned()).toBe(false);
  expect(successor.owned()).toBe(true);
  old.stop();
  expect(await whoAnswers(successor.path)).toBe("successor");
  successor.stop();
  expect(existsSync(successor.path)).toBe(false);
});

test("after a failed hand-over the old process binds the path again; the successor stopping then leaves it alone", async () => {
  const old = await startAdminServer(dir, answeredBy("old"));
  const successor = await startAdminServer(dir, answeredBy("successor"), { takeOver: true });
  expect(old.owned()).toBe(false);
  old.stop();
  const again = await startAdminServer(dir, answeredBy("old again"), { takeOver: true });
  expect(await whoAnswers(again.path)).toBe("old again");
  expect(successor.owned()).toBe(false);
  successor.stop();
  expect(await whoAnswers(again.path)).toBe("old again");
  again.stop();
});
