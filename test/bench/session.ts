/**
 * Owns everything a benchmark run leaves behind — process registries, network namespaces, the scratch
 * directory — and removes it all exactly once: at the normal end, on SIGINT/SIGTERM/SIGHUP (then exits
 * 130/143/129), and, as a last resort where nothing can be awaited, from the process 'exit' hook.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteNamespace, staleNamespaces } from "./host.ts";
import { Processes } from "./procs.ts";

/** Namespace names: prefix, owner pid, random suffix — a later run removes those whose owner is gone. */
export const NAMESPACE_PREFIX = "connbench-";

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

export class BenchSession {
  readonly dir: string;
  readonly #registries: Processes[] = [];
  readonly #namespaces = new Set<string>();
  #cleaned: Promise<void> | undefined;

  constructor(readonly keep: boolean) {
    this.dir = mkdtempSync(join(tmpdir(), "connector-bench-"));
  }

  /** A process registry whose logs go to `<dir>/<name>/logs`. */
  processes(name: string): Processes {
    const logs = join(this.dir, name, "logs");
    mkdirSync(logs, { recursive: true });
    const procs = new Processes(logs);
    this.#registries.push(procs);
    return procs;
  }

  /** A fresh namespace name, registered for deletion before it is created. */
  namespaceName(): string {
    const name = `${NAMESPACE_PREFIX}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#namespaces.add(name);
    return name;
  }

  /** Deletes a namespace of this run (its processes must be stopped first). */
  deleteNamespace(name: string): void {
    deleteNamespace(name);
    this.#namespaces.delete(name);
  }

  /** Deletes namespaces of earlier runs whose owner process no longer exists. */
  removeStaleNamespaces(): string[] {
    const stale = Bun.which("ip") && process.getuid?.() === 0 ? staleNamespaces(NAMESPACE_PREFIX) : [];
    for (const name of stale) deleteNamespace(name);
    return stale;
  }

  async cleanup(): Promise<void> {
    this.#cleaned ??= (async () => {
      for (const procs of [...this.#registries].reverse()) await procs.stopAll();
      for (const name of this.#namespaces) deleteNamespace(name);
      this.#namespaces.clear();
      if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#cleaned;
  }

  /** Signal handlers that clean up and exit, and the synchronous last-resort 'exit' hook. */
  installHandlers(): void {
    for (const [signal, code] of Object.entries(SIGNAL_EXIT)) {
      process.on(signal, () => {
        process.stderr.write(`\n${signal}: stopping every process the benchmark started…\n`);
        void this.cleanup().finally(() => process.exit(code));
      });
    }
    process.on("exit", () => {
      for (const procs of this.#registries) procs.killAllSync();
      for (const name of this.#namespaces) deleteNamespace(name);
    });
  }
}
