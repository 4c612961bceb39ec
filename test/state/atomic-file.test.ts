import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "../../src/errors.ts";
import { ensureStateDir, probeWritable } from "../../src/state/atomic-file.ts";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "atomic-file-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o7777;

describe("ensureStateDir", () => {
  test("creates a missing dir and its missing parents 0700, whatever the umask", () => {
    const dir = join(root, "a", "b", "state");
    const old = process.umask(0o077 | 0o200); // would give 0500 without the fix-up
    try {
      ensureStateDir(dir);
    } finally {
      process.umask(old);
    }
    for (const d of [join(root, "a"), join(root, "a", "b"), dir]) expect(mode(d)).toBe(0o700);
  });

  test("an existing shared dir keeps its mode and sticky bit", () => {
    const dir = join(root, "shared");
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    ensureStateDir(dir);
    expect(mode(dir)).toBe(0o1777);
  });

  test("a symlink to a directory is used without chmodding its target", () => {
    const target = join(root, "target");
    mkdirSync(target);
    chmodSync(target, 0o755);
    symlinkSync(target, join(root, "link"));
    ensureStateDir(join(root, "link"));
    expect(mode(target)).toBe(0o755);
  });

  test("a file in the way is STATE_DIR_NOT_A_DIRECTORY", () => {
    writeFileSync(join(root, "file"), "");
    let caught: unknown;
    try {
      ensureStateDir(join(root, "file"));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConnectorError);
    expect((caught as ConnectorError).code).toBe("STATE_DIR_NOT_A_DIRECTORY");
  });
});

describe("probeWritable", () => {
  test("writes the file and removes it", () => {
    probeWritable(join(root, ".probe.tmp"), 16 * 1024);
    expect(readdirSync(root)).toEqual([]);
  });

  test("fails when the file cannot be created, leaving nothing", () => {
    expect(() => probeWritable(join(root, "missing", ".probe.tmp"), 16)).toThrow();
    expect(existsSync(join(root, "missing"))).toBe(false);
  });
});
