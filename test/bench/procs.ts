/**
 * Every process the benchmark starts goes through `Processes`: each runs in its own process group (so a
 * forking relay — socat, sshd — is stopped with its children), writes its output to a log file (a pipe
 * nobody drains would stall it), and is stopped on exit, on Ctrl-C and on failure: SIGTERM, a deadline,
 * then SIGKILL. `waitFor` is the only way to wait for something, and it always has a deadline.
 */
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEADLINES } from "./config.ts";

export class BenchError extends Error {
  override readonly name = "BenchError";
}

/** Polls `probe` every `intervalMs` until it returns a value, throws, or `timeoutMs` passes (then throws). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < Math.ceil(timeoutMs / intervalMs) + 1; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) break;
    await Bun.sleep(intervalMs);
  }
  throw new BenchError(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface Child {
  name: string;
  proc: Bun.Subprocess<"pipe" | "ignore", "pipe" | number, number>;
  pid: number;
  logBase: string;
}

export interface SpawnOptions {
  /** Pipe stdin (the load generator is told to stop through it); otherwise /dev/null. */
  stdin?: boolean;
  /** Pipe stdout to the caller (load-generator results); otherwise to `<name>.out` in the log directory. */
  stdoutPipe?: boolean;
  env?: Record<string, string>;
  cwd?: string;
}

/** Live descendants of `pid` from /proc (a forked child may have left the group with setsid, as sshd's do). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process exited while we read /proc
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 1_000_000) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export class Processes {
  readonly #children = new Set<Child>();
  readonly #secrets: string[] = [];
  #seq = 0;

  constructor(readonly logDir: string) {}

  /** Text that must never appear in what the harness prints (the provisioning key). */
  addSecret(secret: string): void {
    if (secret) this.#secrets.push(secret);
  }

  redact(text: string): string {
    return this.#secrets.reduce((acc, s) => acc.split(s).join("[redacted]"), text);
  }

  spawn(name: string, cmd: string[], options: SpawnOptions = {}): Child {
    const logBase = join(this.logDir, `${String(++this.#seq).padStart(3, "0")}-${name.replace(/[^\w.-]+/g, "_")}`);
    const outFd = options.stdoutPipe ? undefined : openSync(`${logBase}.out`, "w");
    const errFd = openSync(`${logBase}.err`, "w");
    try {
      const proc = Bun.spawn(cmd, {
        stdin: options.stdin ? "pipe" : "ignore",
        stdout: outFd ?? "pipe",
        stderr: errFd,
        env: { ...process.env, ...options.env },
        cwd: options.cwd,
        detached: true,
      });
      const child: Child = { name, proc, pid: proc.pid, logBase };
      this.#children.add(child);
      void proc.exited.then(() => this.#children.delete(child));
      return child;
    } finally {
      if (outFd !== undefined) closeSync(outFd);
      closeSync(errFd);
    }
  }

  /** Last lines of a child's stderr (and stdout when logged), secrets redacted, for a skip reason. */
  tail(child: Child, lines = 5): string {
    const read = (path: string) => {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return "";
      }
    };
    const text = `${read(`${child.logBase}.err`)}\n${read(`${child.logBase}.out`)}`.trim();
    return this.redact(text.split("\n").slice(-lines).join(" | ")).slice(0, 600);
  }

  /** SIGTERM to the child's group and descendants, SIGKILL after the deadline. */
  async stop(child: Child): Promise<void> {
    const tree = descendants(child.pid);
    signal(-child.pid, "SIGTERM");
    for (const pid of tree) signal(pid, "SIGTERM");
    const exited = await Promise.race([
      child.proc.exited.then(() => true),
      Bun.sleep(DEADLINES.stopMs).then(() => false),
    ]);
    signal(-child.pid, "SIGKILL");
    for (const pid of tree) signal(pid, "SIGKILL");
    if (!exited) await Promise.race([child.proc.exited, Bun.sleep(DEADLINES.stopMs)]);
  }

  /** Stops every live child, newest first (clients before the servers they talk to). */
  async stopAll(): Promise<void> {
    for (const child of [...this.#children].reverse()) await this.stop(child);
  }

  /** Last resort from an exit handler, where nothing can be awaited: SIGKILL to every group left. */
  killAllSync(): void {
    for (const child of this.#children) {
      for (const pid of descendants(child.pid)) signal(pid, "SIGKILL");
      signal(-child.pid, "SIGKILL");
    }
  }
}
