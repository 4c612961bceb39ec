/**
 * `Rig`: what every path and scenario of one host (this one, or a long-distance namespace) shares — the
 * process registry, where commands run, a scratch directory, the tools — and the two ways to drive load:
 * a one-shot load-generator job, and a held one (idle streams) that is released later. Every wait here has
 * a deadline; a load generator that misses it is killed and its job fails with a reason.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import type { Host } from "./host.ts";
import type { Job } from "./loadgen.ts";
import { BenchError, type Child, type Processes, type SpawnOptions, waitFor } from "./procs.ts";
import type { Tools } from "./tools.ts";

/** Ports for services that cannot take port 0 (sshd, socat, iperf3): below Linux's ephemeral range (32768+). */
const PORT_RANGE = { from: 20_000, to: 32_000 } as const;

export const ErrorLine = v.object({ error: v.string() });

export interface HeldLoad {
  ready: unknown;
  /** Closes the generator's stdin (it closes its streams and exits) and returns its last result line. */
  release(): Promise<unknown>;
}

function parseLines(text: string): unknown[] {
  return text
    .split("\n")
    .filter((l) => l.trim().startsWith("{"))
    .map((l) => JSON.parse(l) as unknown);
}

/** The job failed when its last line is {"error": …}; the error is thrown as a BenchError. */
function resultOf(lines: unknown[], what: string): unknown {
  const last = lines[lines.length - 1];
  if (last === undefined) throw new BenchError(`${what}: the load generator printed no result`);
  if (v.is(ErrorLine, last)) throw new BenchError(`${what}: ${last.error}`);
  return last;
}

export class Rig {
  readonly #used = new Set<number>();

  constructor(
    readonly procs: Processes,
    readonly host: Host,
    /** Scratch directory of this host's services (state dirs, keys, cloud.json). */
    readonly dir: string,
    readonly tools: Tools,
    /** Repository root (test/cloud, dist/connector are found from it). */
    readonly root: string,
  ) {}

  spawn(name: string, cmd: string[], options: SpawnOptions = {}): Child {
    return this.procs.spawn(name, this.host.wrap(cmd), { cwd: this.root, ...options });
  }

  /** A port number no earlier service of this run took; the service's own start fails if it is busy. */
  pickPort(): number {
    for (let i = 0; i < 1_000; i++) {
      const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
      if (!this.#used.has(port)) {
        this.#used.add(port);
        return port;
      }
    }
    throw new BenchError("no unused port left in the benchmark's range");
  }

  #loadgenCmd(job: Job): string[] {
    return [process.execPath, join(import.meta.dir, "loadgen.ts"), JSON.stringify(job)];
  }

  /** Runs one load-generator job to its end (bounded by `timeoutMs`) and returns its result line. */
  async loadgen(job: Job, timeoutMs: number): Promise<unknown> {
    const child = this.spawn(`loadgen-${job.cmd}`, this.#loadgenCmd(job), { stdoutPipe: true });
    const stdout = new Response(child.proc.stdout as ReadableStream<Uint8Array>).text();
    const finished = await Promise.race([child.proc.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
    if (!finished) {
      await this.procs.stop(child);
      throw new BenchError(`load generator (${job.cmd}) did not finish within ${timeoutMs} ms`);
    }
    return resultOf(parseLines(await stdout), `${job.cmd} via port ${job.port}`);
  }

  /** Starts a job that holds its streams (idle) and returns once it reports them ready. */
  async loadgenHeld(job: Job, timeoutMs: number): Promise<HeldLoad> {
    const child = this.spawn(`loadgen-${job.cmd}`, this.#loadgenCmd(job), { stdoutPipe: true, stdin: true });
    const reader = (child.proc.stdout as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readLine = async (deadlineMs: number): Promise<unknown> => {
      const deadline = Date.now() + deadlineMs;
      while (!text.includes("\n")) {
        const left = deadline - Date.now();
        const chunk =
          left > 0 ? await Promise.race([reader.read(), Bun.sleep(left).then(() => "timeout" as const)]) : "timeout";
        if (chunk === "timeout")
          throw new BenchError(`load generator (${job.cmd}) said nothing within ${deadlineMs} ms`);
        if (chunk.done) break;
        text += decoder.decode(chunk.value, { stream: true });
      }
      const at = text.indexOf("\n");
      const line = at < 0 ? text : text.slice(0, at);
      text = at < 0 ? "" : text.slice(at + 1);
      return resultOf(parseLines(line), `${job.cmd} via port ${job.port}`);
    };
    try {
      const ready = await readLine(timeoutMs);
      return {
        ready,
        release: async () => {
          try {
            const stdin = child.proc.stdin;
            if (stdin && typeof stdin !== "number") await stdin.end();
            return await readLine(timeoutMs);
          } finally {
            await this.procs.stop(child);
          }
        },
      };
    } catch (err) {
      await this.procs.stop(child);
      throw err;
    }
  }

  /** Runs a command to its end within `timeoutMs` (killed after); returns its exit code and child (for its log). */
  async runToEnd(
    name: string,
    cmd: string[],
    timeoutMs: number,
    env?: Record<string, string>,
  ): Promise<{ code: number | null; child: Child }> {
    const child = this.spawn(name, cmd, env ? { env } : {});
    const done = await Promise.race([child.proc.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
    if (!done) {
      await this.procs.stop(child);
      throw new BenchError(`${name} did not finish within ${timeoutMs} ms: ${this.procs.tail(child)}`);
    }
    return { code: child.proc.exitCode, child };
  }

  /** Waits until the app carries a stream through `port` (the probe opens one and reads the app's byte). */
  async probe(port: number, timeoutMs: number): Promise<void> {
    await this.loadgen({ cmd: "probe", port, timeoutMs }, timeoutMs + 10_000);
  }

  /** Waits for `pattern` in a child's log (stderr or stdout); fails early when the child exits. */
  async waitForLog(child: Child, pattern: RegExp, timeoutMs: number): Promise<void> {
    const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
    await waitFor(
      `${child.name} to log ${pattern}`,
      () => {
        if (pattern.test(read(`${child.logBase}.err`)) || pattern.test(read(`${child.logBase}.out`))) return true;
        if (child.proc.exitCode !== null)
          throw new BenchError(`${child.name} exited (${child.proc.exitCode}): ${this.procs.tail(child)}`);
        return undefined;
      },
      timeoutMs,
    );
  }
}
