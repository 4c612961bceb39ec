import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { begin, end, tail, watch } from "./diagnostics.ts";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "diagnostics-test-"));
  dirs.push(dir);
  return dir;
};

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs `body` as a test scope would, with console.error captured; returns what it printed. */
function scope(failed: boolean, body: () => void): string {
  const printed: string[] = [];
  const spy = spyOn(console, "error").mockImplementation((...args: unknown[]) => void printed.push(args.join(" ")));
  try {
    begin();
    body();
    end("a test", failed);
  } finally {
    spy.mockRestore();
  }
  return printed.join("\n");
}

describe("a watched process's temp dir", () => {
  test("is removed at once when released outside a test", () => {
    const dir = tempDir();
    watch({ label: "p", output: () => "", dirs: [dir] }).release();
    expect(existsSync(dir)).toBe(false);
  });

  test("released during a passing test: removed at its end, nothing printed", () => {
    const dir = tempDir();
    const printed = scope(false, () => {
      watch({ label: "p", output: () => "log line", dirs: [dir] }).release();
      expect(existsSync(dir)).toBe(true); // waits for the verdict
    });
    expect(existsSync(dir)).toBe(false);
    expect(printed).toBe("");
  });

  test("a failing test prints the log tails of running and stopped processes and keeps their dirs", () => {
    const [running, stopped] = [tempDir(), tempDir()];
    const alive = watch({ label: "daemon A", output: () => "a1\na2\n", dirs: [running] });
    const printed = scope(true, () => {
      watch({ label: "cloud B", output: () => "b1", dirs: [stopped] }).release();
    });
    expect(printed).toContain('"a test" failed');
    expect(printed).toContain("--- daemon A ---\na1\na2");
    expect(printed).toContain("--- cloud B ---\nb1");
    expect(printed).toContain(running);
    expect(printed).toContain(stopped);
    alive.release(); // after the failure: kept
    expect(existsSync(running)).toBe(true);
    expect(existsSync(stopped)).toBe(true);
  });

  test("keep() keeps the dir whatever the outcome (a wait on it failed)", () => {
    const dir = tempDir();
    const watched = watch({ label: "p", output: () => "", dirs: [dir] });
    watched.keep();
    watched.release();
    expect(existsSync(dir)).toBe(true);
  });
});

describe("tail", () => {
  test("keeps the last lines, without the empty one after a final newline", () => {
    const text = `${Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n")}\n`;
    const lines = tail(text, 3).split("\n");
    expect(lines).toEqual(["line 97", "line 98", "line 99"]);
  });

  test("cuts the middle of a very long line and says how much", () => {
    const line = `${"a".repeat(1000)}${"z".repeat(1000)}`;
    const cut = tail(line);
    expect(cut.length).toBeLessThan(700);
    expect(cut).toStartWith("aaa");
    expect(cut).toEndWith("zzz");
    expect(cut).toContain("…[1400 chars]…");
  });
});
