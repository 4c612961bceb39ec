import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "../../src/errors.ts";
import { ensureStateDir, probeWritable, writeNewFileDurably } from "../../src/state/atomic-file.ts";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "atomic-file-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o7777;

function caught(fn: () => void): ConnectorError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectorError);
    return err as ConnectorError;
  }
  throw new Error("expected a ConnectorError, nothing was thrown");
}

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

  test("an existing dir others may write into (1777, 0777, 0770) is refused STATE_DIR_UNSAFE and keeps its mode", () => {
    for (const m of [0o1777, 0o777, 0o770, 0o720]) {
      const dir = join(root, `shared-${m.toString(8)}`);
      mkdirSync(dir);
      chmodSync(dir, m);
      const err = caught(() => ensureStateDir(dir));
      expect(err.code).toBe("STATE_DIR_UNSAFE");
      expect(err.message).toContain(`mode ${m.toString(8).padStart(4, "0")}`);
      expect(err.message).toContain(`chmod go-w ${dir}`);
      expect(mode(dir)).toBe(m);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  test.skipIf(process.geteuid?.() !== 0)(
    "an existing dir owned by another user is refused STATE_DIR_UNSAFE, naming the owner; left as it is",
    () => {
      const dir = join(root, "theirs");
      mkdirSync(dir, { mode: 0o700 });
      chownSync(dir, 65534, 65534);
      const err = caught(() => ensureStateDir(dir));
      expect(err.code).toBe("STATE_DIR_UNSAFE");
      expect(err.message).toContain("uid 65534");
      expect(statSync(dir).uid).toBe(65534);
      expect(mode(dir)).toBe(0o700);
    },
  );

  test("a symlink to a shared dir is refused; its target keeps its mode", () => {
    const target = join(root, "shared-target");
    mkdirSync(target);
    chmodSync(target, 0o1777);
    symlinkSync(target, join(root, "shared-link"));
    expect(caught(() => ensureStateDir(join(root, "shared-link"))).code).toBe("STATE_DIR_UNSAFE");
    expect(mode(target)).toBe(0o1777);
  });

  test("a symlink to a directory is used without chmodding its target", () => {
    const target = join(root, "target");
    mkdirSync(target);
    chmodSync(target, 0o755);
    symlinkSync(target, join(root, "link"));
    ensureStateDir(join(root, "link"));
    expect(mode(target)).toBe(0o755);
  });

  // The tree sits behind a symlink (`link` → `top`): code that wrongly climbs into existing parents
  // chmods `a` and then stops at the link (O_NOFOLLOW), never reaching /tmp or /.
  describe("chmods only what it created, however the path is spelt", () => {
    let top: string;
    let link: string;
    beforeEach(() => {
      top = join(root, "top");
      mkdirSync(join(top, "a"), { recursive: true });
      chmodSync(top, 0o755);
      chmodSync(join(top, "a"), 0o755);
      link = join(root, "link");
      symlinkSync(top, link);
    });

    test("a trailing slash: a/b/", () => {
      ensureStateDir(`${link}/a/b/`);
      expect(mode(join(top, "a"))).toBe(0o755);
      expect(mode(join(top, "a", "b"))).toBe(0o700);
    });

    test("a double slash: a//b/c", () => {
      ensureStateDir(`${link}/a//b/c`);
      expect(mode(join(top, "a"))).toBe(0o755);
      expect(mode(join(top, "a", "b"))).toBe(0o700);
      expect(mode(join(top, "a", "b", "c"))).toBe(0o700);
    });

    test("a dot-dot: a/b/../c", () => {
      ensureStateDir(`${link}/a/b/../c`);
      expect(mode(join(top, "a"))).toBe(0o755);
      expect(mode(join(top, "a", "c"))).toBe(0o700);
    });

    test("a relative path, resolved against the working directory", () => {
      const cwd = process.cwd();
      process.chdir(join(link, "a"));
      try {
        ensureStateDir("b/c/");
      } finally {
        process.chdir(cwd);
      }
      expect(mode(join(top, "a"))).toBe(0o755);
      expect(mode(join(top, "a", "b"))).toBe(0o700);
      expect(mode(join(top, "a", "b", "c"))).toBe(0o700);
    });
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

describe("writeNewFileDurably", () => {
  test("sets the exact mode on the file it wrote, not on a symlink swapped in for it before the close returns", () => {
    const victim = join(root, "victim");
    writeFileSync(victim, "not ours");
    chmodSync(victim, 0o644);
    const path = join(root, "new-file");
    const real = fs.closeSync;
    let swapped = false;
    const spy = spyOn(fs, "closeSync").mockImplementation((fd: number) => {
      real(fd);
      if (!swapped) {
        swapped = true;
        renameSync(path, join(root, "moved-away"));
        symlinkSync(victim, path);
      }
    });
    const old = process.umask(0o077);
    try {
      writeNewFileDurably(path, "secret", 0o640);
    } finally {
      process.umask(old);
      spy.mockRestore();
    }
    expect(swapped).toBe(true);
    expect(mode(victim)).toBe(0o644);
    expect(mode(join(root, "moved-away"))).toBe(0o640);
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
