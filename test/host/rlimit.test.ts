/**
 * The fd limit and the out-of-fds probe, on the real host: a child process under `prlimit` that has
 * used up its fds sees Bun report a dial as refused, and the dialer answers BUSY instead of REFUSED
 * without reporting the address (the app is not to blame).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import {
  countOpenFds,
  getNoFileLimit,
  MAX_SOFT_NOFILE,
  outOfFds,
  raiseNoFileLimit,
  type Libc,
} from "../../src/host/rlimit.ts";

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
  expect(raised?.after.soft).toBe(Math.min(raised!.after.hard, MAX_SOFT_NOFILE));
  expect(countOpenFds()).toBeGreaterThan(2);
  expect(outOfFds()).toBe(false);
});

test("a huge or infinite hard limit (containers) raises the soft one to 1,048,576 only, keeping the hard one", () => {
  for (const hard of [1_073_741_816n, 0xffff_ffff_ffff_ffffn]) {
    const limits = new BigUint64Array([1024n, hard]);
    const fake: Libc = {
      getrlimit: (_resource, out) => {
        out.set(limits);
        return 0;
      },
      setrlimit: (_resource, value) => {
        limits.set(value);
        return 0;
      },
    };
    const raised = raiseNoFileLimit(fake);
    expect(raised?.after.soft).toBe(MAX_SOFT_NOFILE);
    expect(MAX_SOFT_NOFILE).toBe(1_048_576);
    expect(limits[0]).toBe(1_048_576n);
    expect(limits[1]).toBe(hard);
  }
});

test("out of fds, a dial Bun reports as refused is answered BUSY and neither passive nor active health blames the app", async () => {
  const script = join(import.meta.dir, "../support/scripts/emfile-dial.ts");
  const child = Bun.spawn(["prlimit", "--nofile=64:64", process.execPath, script, String(server.port)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  clearTimeout(timer);
  expect(await child.exited, err).toBe(0);
  const result = JSON.parse(out) as {
    held: number;
    bunError: string;
    failure: string;
    attempts: unknown[];
    healthCheck: string;
    outOfFds: boolean;
  };
  expect(result.held).toBeGreaterThan(0);
  // The fact the probe exists for: Bun says "refused" although nothing refused anything.
  expect(result.bunError).toBe("ECONNREFUSED");
  expect(result.outOfFds).toBe(true);
  expect(result.failure).toBe("BUSY");
  expect(result.attempts).toEqual([]);
  expect(result.healthCheck).toBe("threw BUSY");
});
