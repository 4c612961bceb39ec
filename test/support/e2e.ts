/**
 * `test` and `beforeAll` for end-to-end files, the same signatures as bun:test's, that report their
 * outcome to test/support/diagnostics.ts: a failing test (an assertion, an error, or a timeout) prints
 * the log tails of the daemons and clouds it ran and keeps their temp dirs. bun:test gives hooks no
 * test outcome, so the wrapper records it: a test passed only if its body returned.
 */
import { beforeAll as bunBeforeAll, onTestFinished, test as bunTest } from "bun:test";
import { begin, end } from "./diagnostics.ts";

type Body = () => unknown | Promise<unknown>;

export function test(name: string, fn: Body, timeoutMs?: number): void {
  bunTest(
    name,
    async () => {
      let passed = false;
      begin();
      // Runs after the body and afterEach hooks, and also when the test timed out (its body still pending).
      onTestFinished(() => end(name, !passed));
      await fn();
      passed = true;
    },
    timeoutMs,
  );
}

/** A failing setup (a stack that never came up) prints the same diagnostics, then fails as usual. */
export function beforeAll(fn: Body, timeoutMs?: number): void {
  bunBeforeAll(async () => {
    begin();
    let passed = false;
    try {
      await fn();
      passed = true;
    } finally {
      end("beforeAll", !passed);
    }
  }, timeoutMs);
}
