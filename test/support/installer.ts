/**
 * install.sh for tests: a copy baked like `bun run release` bakes it (roots, release host, channel,
 * the units of packaging/systemd/), run with `bash` against a release server, and a snapshot of the
 * files it wrote under `--root`:
 *
 *   const script = bakeInstallerCopy(join(tmp, "install.sh"), { rootSpkis: keys.roots.map((r) => r.publicKey), baseUrl });
 *   const run = await runInstaller(script, ["--root", root]);     // { code, stdout, stderr }
 *   const files = snapshot(root);                                 // relative path -> mode, inode, mtime, bytes
 *
 * The installer always runs with `--root` in tests: without it, it would create users and start
 * services on the machine running the tests.
 */
import { chmodSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { bakeInstaller } from "../../scripts/release-files.ts";

const ROOT = join(import.meta.dir, "..", "..");
export const INSTALL_SH = join(ROOT, "install.sh");

export interface BakeOptions {
  readonly rootSpkis: readonly string[];
  readonly baseUrl?: string;
  readonly channel?: string;
}

/** The repository's install.sh baked with these values, written to `path` (0755). */
export function bakeInstallerCopy(path: string, options: BakeOptions): string {
  const text = bakeInstaller(readFileSync(INSTALL_SH, "utf8"), {
    rootSpkis: options.rootSpkis,
    channel: options.channel ?? "stable",
    ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
  });
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

export interface InstallerRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Added to a minimal environment (PATH, TMPDIR); nothing else of the test's environment leaks in. */
  readonly env?: Record<string, string>;
  /** Run `bash -s -- ARGS` with this script text on stdin instead of `bash SCRIPT ARGS`. */
  readonly stdin?: string | Uint8Array;
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** Runs the installer (asynchronously: the release server may live in this process) with a deadline. */
export async function runInstaller(
  script: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<InstallerRun> {
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    TMPDIR: process.env.TMPDIR ?? "/tmp",
    LANG: "C",
    ...options.env,
  };
  const cmd = options.stdin === undefined ? ["bash", script, ...args] : ["bash", "-s", "--", ...args];
  const proc = Bun.spawn(cmd, {
    env,
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** For a failing expectation's message: the exit code and both streams. */
export const describeRun = (run: InstallerRun): string =>
  `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

export interface FileFacts {
  readonly type: "file" | "dir" | "link" | "other";
  /** Permission bits, e.g. 0o755. */
  readonly mode: number;
  readonly ino: number;
  readonly nlink: number;
  readonly mtimeNs: bigint;
  readonly size: number;
}

/** Every path under `root` (relative, "" excluded) with its facts; symlinks are not followed. */
export function snapshot(root: string): Map<string, FileFacts> {
  const out = new Map<string, FileFacts>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path, { bigint: true });
      const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "link" : "other";
      out.set(relative(root, path), {
        type,
        mode: Number(st.mode & 0o7777n),
        ino: Number(st.ino),
        nlink: Number(st.nlink),
        mtimeNs: st.mtimeNs,
        size: Number(st.size),
      });
      if (type === "dir") walk(path);
    }
  };
  walk(root);
  return out;
}

export interface CountingServer {
  readonly url: string;
  /** Requests received so far, whatever their path. */
  readonly requests: number;
  stop(): void;
}

/** A server that answers every request 404 and counts them: proof that a run downloaded nothing. */
export function startCountingServer(): CountingServer {
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      requests++;
      return new Response("not here\n", { status: 404 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    get requests() {
      return requests;
    },
    stop: () => server.stop(true),
  };
}

/** A loopback port nothing listens on (bound, then released). */
export function closedPort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}
