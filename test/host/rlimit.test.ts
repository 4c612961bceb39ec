/**
 * The fd limit and the out-of-fds probe, on the real host: a child process under `prlimit` that has
 * used up its fds sees Bun report a dial as refused, and the dialer answers BUSY instead of REFUSED
 * without reporting the address (the app is not to blame).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { countOpenFds, getNoFileLimit, outOfFds, raiseNoFileLimit } from "../../src/host/rlimit.ts";

let server: { port: number; stop(): void };
beforeAll(() => {
  const listener = Bun.listen<undefined>({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  server = { port: listener.port, stop: () => listener.stop(true) };
});
afterAll(() => server.stop());

test("the limits are read through libc and the soft one is raised to the hard one", () => {
  const limit = getNoFileLimit();
  expect(limit).toBeDefined();
  expect(limit!.soft).toBeGreaterThan(0);
  const raised = raiseNoFileLimit();
  expect(raised?.after.soft).toBe(raised?.after.hard);
  expect(countOpenFds()).toBeGreaterThan(2);
  expect(outOfFds()).toBe(false);
});

test("out of fds, a dial Bun reports as refused is answered BUSY and neither passive nor active health blames the app", async () => {
  const script = join(import.meta.dir, "../support/scripts/emfile-dial.ts");
  const child = Bun.spawn(["prlimit", "--nofile=64:64", process.execPath, script, String(server.port)], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  clearTimeout(timer);
  expect(await child.exited, err).toBe(0);
  const result = JSON.parse(out) as { held: number; bunError: string; failure: string; attempts: unknown[]; healthCheck: string; outOfFds: boolean };
  expect(result.held).toBeGreaterThan(0);
  // The fact the probe exists for: Bun says "refused" although nothing refused anything.
  expect(result.bunError).toBe("ECONNREFUSED");
  expect(result.outOfFds).toBe(true);
  expect(result.failure).toBe("BUSY");
  expect(result.attempts).toEqual([]);
  expect(result.healthCheck).toBe("threw BUSY");
});
