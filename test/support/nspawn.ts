/**
 * A throw-away container with a real systemd as PID 1, for tests of the systemd units: the host's root
 * bind-mounted at /run/ct-<name> and booted with `systemd-nspawn --volatile=overlay` (every write inside
 * lands in a tmpfs that vanishes with the container, so the host is never changed), a private network
 * (loopback only) and no registration with a host machined. Paths of the host stay visible inside, so
 * node_modules' bun and dist/connector run there as they are.
 *
 * One host directory, /var/tmp/ct-<name>, is created before boot and bind-mounted at the same path inside:
 * the only place both sides see each other's writes (an overlay's lower layer is not meant to change under it).
 *
 * Needs root and systemd-nspawn (CI has both); anything missing fails with a message saying so.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin (then closed). */
  readonly input?: string;
  /** Run as this user (runuser inside the container); default root. */
  readonly user?: string;
  /** Kill and fail after this long; default 60 s. */
  readonly timeoutMs?: number;
}

export interface Container {
  /** Machine name; also the container's hostname. */
  readonly name: string;
  /** Host directory shared with the container at the same path. */
  readonly shared: string;
  /** Host pid of the container's PID 1 (its systemd); 0 until booted. */
  readonly pid: number;
  /** Boots and waits until `systemctl is-system-running --wait` says running or degraded. */
  boot(timeoutMs?: number): Promise<void>;
  /** Runs `cmd` inside every namespace of the container with a clean environment. */
  exec(cmd: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but throws (with stdout and stderr) unless the command exits 0. */
  run(cmd: readonly string[], options?: ExecOptions): Promise<string>;
  /** The tail of the container's console. */
  console(chars?: number): string;
  /** Powers off, kills what is left, unmounts and removes the shared dir; safe to call in any state, twice. */
  stop(): Promise<void>;
}

const ROOT_PREFIX = "/run/ct-";
const SHARED_PREFIX = "/var/tmp/ct-";
const CONSOLE_KEEP = 256 * 1024;
/** The environment of every command inside: nothing of the test runner's leaks in. */
const INSIDE_ENV = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "HOME=/root",
  "LANG=C.UTF-8",
  "SYSTEMD_PAGER=",
  "SYSTEMD_COLORS=0",
];

/** Throws with what is missing when this host cannot boot a container. */
export function requireNspawn(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root (the tests mount and boot a container)");
  for (const tool of ["systemd-nspawn", "nsenter", "mount", "umount", "setpriv"]) {
    if (!Bun.which(tool)) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(
      `systemd container tests need ${missing.join(", ")}; install systemd-container (apt-get install systemd-container) and run as root, as CI does`,
    );
  }
}

/** Runs a host command with a deadline (SIGKILL after `timeoutMs`); never throws for its exit code. */
export async function runWithDeadline(
  cmd: readonly string[],
  timeoutMs = 30_000,
  input?: string,
): Promise<ExecResult & { timedOut: boolean }> {
  const proc = Bun.spawn([...cmd], {
    stdin: input === undefined ? "ignore" : new TextEncoder().encode(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

async function command(cmd: readonly string[], timeoutMs = 30_000, input?: string): Promise<ExecResult> {
  const { code, stdout, stderr, timedOut } = await runWithDeadline(cmd, timeoutMs, input);
  if (timedOut)
    throw new Error(
      `${cmd.join(" ")} did not finish within ${timeoutMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
    );
  return { code, stdout, stderr };
}

function parentOf(pid: number): number | undefined {
  try {
    // The command name is in parentheses and may hold spaces: the fields that follow start after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The container's PID 1 as the host sees it: the `systemd` child of the nspawn process. */
function containerInit(nspawnPid: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || parentOf(pid) !== nspawnPid) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd") return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Unmounts the roots of containers whose test process died without cleaning up (SIGKILL, a crashed
 * runner): the pid in the name is no longer alive. Containers of live runs are left alone.
 */
function sweepAbandoned(): void {
  for (const entry of readdirSync("/run")) {
    const match = /^ct-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!match || alive(Number(match[1]))) continue;
    Bun.spawnSync(["umount", "-l", join("/run", entry)]);
    try {
      rmdirSync(join("/run", entry));
    } catch {
      // still busy or already gone: the next sweep tries again
    }
    rmSync(`${SHARED_PREFIX}${entry.slice(3)}`, { recursive: true, force: true });
  }
}

/** A container not yet booted: register `stop()` for cleanup first, then `boot()`. */
export function createContainer(): Container {
  requireNspawn();
  sweepAbandoned();
  const name = `ct-${process.pid}-${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  const root = `${ROOT_PREFIX}${name.slice(3)}`;
  const shared = `${SHARED_PREFIX}${name.slice(3)}`;
  let nspawn: Subprocess | undefined;
  let mounted = false;
  let initPid = 0;
  let stopped = false;
  const consoleChunks: string[] = [];
  let consoleSize = 0;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      consoleChunks.push(text);
      consoleSize += text.length;
      while (consoleSize > CONSOLE_KEEP && consoleChunks.length > 1) consoleSize -= consoleChunks.shift()!.length;
    }
  };
  const consoleTail = (chars = 4000) => consoleChunks.join("").slice(-chars);

  const exec = async (cmd: readonly string[], options: ExecOptions = {}): Promise<ExecResult> => {
    if (initPid === 0 || stopped) throw new Error(`container ${name} is not running (exec ${cmd.join(" ")})`);
    const asUser = options.user === undefined ? [] : ["runuser", "-u", options.user, "--"];
    return command(
      [
        "nsenter",
        "-t",
        String(initPid),
        "-m",
        "-u",
        "-i",
        "-n",
        "-p",
        "--",
        "env",
        "-i",
        ...INSIDE_ENV,
        ...asUser,
        ...cmd,
      ],
      options.timeoutMs ?? 60_000,
      options.input,
    );
  };

  const container: Container = {
    name,
    shared,
    get pid() {
      return initPid;
    },
    async boot(timeoutMs = 180_000) {
      if (nspawn || stopped) throw new Error(`container ${name} was already booted or stopped`);
      mkdirSync(shared, { recursive: true, mode: 0o755 });
      mkdirSync(root, { mode: 0o700 });
      const bound = await command(["mount", "--bind", "/", root]);
      if (bound.code !== 0) throw new Error(`mount --bind / ${root} failed: ${bound.stderr}`);
      mounted = true;
      // The parent-death signal powers the container off should the test runner die without stop().
      nspawn = Bun.spawn(
        [
          "setpriv",
          "--pdeathsig",
          "SIGTERM",
          "systemd-nspawn",
          "-D",
          root,
          "--volatile=overlay",
          "--private-network",
          "--register=no",
          "--keep-unit",
          `--bind=${shared}`,
          "-M",
          name,
          "-b",
        ],
        { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
      );
      void collect(nspawn.stdout as ReadableStream<Uint8Array>);
      void collect(nspawn.stderr as ReadableStream<Uint8Array>);
      const deadline = Date.now() + timeoutMs;
      let last = "";
      while (Date.now() < deadline) {
        if (nspawn.exitCode !== null)
          throw new Error(`systemd-nspawn exited (${nspawn.exitCode}) while booting ${name}:\n${consoleTail()}`);
        initPid ||= containerInit(nspawn.pid) ?? 0;
        if (initPid !== 0) {
          // Fails while PID 1 is still setting up its bus; --wait then blocks until start-up has finished.
          const state = await exec(["systemctl", "is-system-running", "--wait"], {
            timeoutMs: Math.max(1000, deadline - Date.now()),
          }).catch((err: unknown) => ({ code: -1, stdout: "", stderr: String(err) }));
          last = `${state.stdout.trim()} ${state.stderr.trim()}`;
          if (/^(running|degraded)$/.test(state.stdout.trim())) return;
          if (/^(stopping|offline|maintenance)$/.test(state.stdout.trim())) break;
        }
        await Bun.sleep(200);
      }
      throw new Error(
        `container ${name} did not finish booting within ${timeoutMs} ms (last: ${last || "no PID 1 yet"}):\n${consoleTail()}`,
      );
    },
    exec,
    async run(cmd, options) {
      const result = await exec(cmd, options);
      if (result.code !== 0)
        throw new Error(
          `in ${name}: ${cmd.join(" ")} exited ${result.code}\nstdout: ${result.stdout.slice(-3000)}\nstderr: ${result.stderr.slice(-3000)}`,
        );
      return result.stdout;
    },
    console: consoleTail,
    async stop() {
      if (stopped) return;
      if (nspawn && nspawn.exitCode === null) {
        initPid ||= containerInit(nspawn.pid) ?? 0;
        const poweroff =
          initPid !== 0
            ? await exec(["systemctl", "poweroff", "--no-block"], { timeoutMs: 10_000 }).catch(() => undefined)
            : undefined;
        // PID 1 without its bus yet (a failed boot): nspawn's SIGTERM handling asks it to power off instead.
        if (poweroff?.code !== 0) nspawn.kill("SIGTERM");
        stopped = true;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const exited = await Promise.race([
          nspawn.exited.then(() => true),
          new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 30_000))),
        ]);
        clearTimeout(timer);
        if (!exited) {
          // PID 1 dying takes the whole pid namespace with it.
          if (initPid !== 0 && alive(initPid)) process.kill(initPid, "SIGKILL");
          nspawn.kill("SIGKILL");
          await nspawn.exited;
        }
      }
      stopped = true;
      if (mounted) {
        const unmounted = await command(["umount", root]);
        if (unmounted.code !== 0) await command(["umount", "-l", root]);
        mounted = false;
      }
      if (existsSync(root)) rmdirSync(root);
      rmSync(shared, { recursive: true, force: true });
      // nspawn leaves this (empty) when /run is not a tmpfs, as on hosts without systemd as PID 1.
      try {
        rmdirSync(`/run/systemd/nspawn/propagate/${name}`);
      } catch {
        // absent (a tmpfs /run took it away) or not empty: nothing of ours to remove
      }
    },
  };
  return container;
}
