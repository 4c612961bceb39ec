// @ts-check
/**
 * Sets up one interop run: loopback apps, the interop gateway (listening first, so its URL can be
 * given to the cloud), the reference cloud as a subprocess under Bun (`--gateways 0 --extra-gateway
 * URL`: the connector knows no other gateway), and compiled connector daemons (dist/connector, built
 * by `bun build.ts --host`). A scenario that breaks a tunnel gets a fresh reconnect backoff: its own
 * connector, or its own slot of a `Pool` (a connector with many tunnels, one per scenario); scenarios
 * that keep the tunnel up may share one. Everything lives in one temp dir, removed at the end unless a
 * scenario failed.
 *
 * Nothing here or in ./gateway imports from src/ or test/cloud/: the cloud and the connector are
 * processes, reached only through their CLIs, cloud.json, the control plane and the admin API.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startApps } from "./apps.mjs";
import { assertGoodRequest } from "./checks.mjs";
import { httpJson } from "./gateway/http-json.mjs";
import { fetchCa, listenGateway } from "./gateway/server.mjs";
import { Changes, DEADLINE_MS, ENROLL_DEADLINE_MS, until } from "./gateway/wait.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BINARY = join(ROOT, "dist", "connector");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const CLOUD_MAIN = join(ROOT, "test", "cloud", "main.ts");

/**
 * @param {{ tokenTtlSeconds?: number }} [o]
 */
export async function startInterop(o = {}) {
  if (!existsSync(BINARY))
    throw new Error(`${BINARY} is missing: build it with ./node_modules/.bin/bun build.ts --host`);
  const dir = mkdtempSync(join(tmpdir(), "interop-"));
  const apps = await startApps();
  const gateway = await listenGateway();
  const cloudDir = join(dir, "cloud");
  mkdirSync(cloudDir); // watched for cloud.json from the start
  const cloudArgs = [
    CLOUD_MAIN,
    "--dir",
    cloudDir,
    "--gateways",
    "0",
    "--extra-gateway",
    gateway.url,
    "--key-uses",
    "1000",
  ];
  for (const [name, address] of Object.entries(apps.catalog)) cloudArgs.push("--app", `${name}=${address}`);
  if (o.tokenTtlSeconds) cloudArgs.push("--token-ttl", String(o.tokenTtlSeconds));
  const cloud = spawn(BUN, cloudArgs, { stdio: ["ignore", "pipe", "pipe"] });
  const cloudOut = collect(cloud);
  /** @type {any} */
  let json;
  try {
    json = await waitForFile(join(cloudDir, "cloud.json"), cloud, cloudOut);
    const ext = json.extraGateways;
    gateway.configure({
      certPem: ext.gateways[0].certPem,
      keyPem: ext.gateways[0].keyPem,
      caPem: await fetchCa(json.controlUrl, json.caPin),
      adminUrl: json.adminUrl,
      tokenPublicKeyPem: ext.tokenPublicKeyPem,
      tokenTtlSeconds: ext.tokenTtlSeconds,
    });
  } catch (err) {
    cloud.kill("SIGKILL");
    await gateway.close();
    apps.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  /** @type {Connector[]} */
  const connectors = [];
  let keep = false;
  const h = {
    dir,
    apps,
    gateway,
    cloud: json,
    /** Everything the cloud printed. */
    cloudOutput: () => cloudOut.join(""),
    /** The admin API (test/cloud/README.md): JSON in and out. @param {string} path @param {unknown} [body] */
    async admin(path, body, method = body === undefined ? "GET" : "POST") {
      const response = await httpJson(`${json.adminUrl}${path}`, { method, body });
      if (response.status >= 300) throw new Error(`admin ${method} ${path}: ${response.status} ${response.text}`);
      return response.body;
    },
    /**
     * Starts `connector run` enrolled with the cloud's key; each gets its own state dir and name.
     * @param {string} name @param {{ tunnels?: number, gracePeriod?: number }} [co]
     */
    startConnector(name, co = {}) {
      const c = new Connector(join(dir, name), name, json.provisioningKey, co);
      connectors.push(c);
      return c;
    },
    /**
     * Starts a connector with `size` tunnels, for scenarios that each break one tunnel: every slot has
     * its own reconnect backoff, so breaking each first tunnel once costs one short backoff each.
     * @param {string} name @param {number} size
     */
    async startPool(name, size) {
      const connector = h.startConnector(name, { tunnels: size });
      const pool = new Pool(gateway, connector, size);
      await pool.full(ENROLL_DEADLINE_MS);
      pool.fresh = pool.open();
      return pool;
    },
    /**
     * Runs a scenario; on failure prints the log tail of connector `connector`, the gateway's dials and
     * frame logs of that connector, and keeps the temp dir.
     * @template T @param {string} label @param {string} connector @param {() => Promise<T>} fn @returns {Promise<T>}
     */
    async scenario(label, connector, fn) {
      try {
        return await fn();
      } catch (err) {
        keep = true;
        const c = connectors.find((x) => x.name === connector);
        const report = [
          `\n===== interop scenario "${label}" failed: ${err instanceof Error ? err.message : err}`,
          `----- connector ${connector} log (tail) -----`,
          c ? c.output().split("\n").slice(-80).join("\n") : "(no connector of that name)",
          `----- gateway: dials and frames of ${connector} -----`,
          gateway.report(connector),
          `----- temp dir kept: ${dir} -----\n`,
        ].join("\n");
        writeFileSync(join(dir, `${label.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 80)}.failure.txt`), report);
        process.stderr.write(report);
        throw err;
      }
    },
    async stop() {
      const t0 = Date.now();
      await Promise.all(
        connectors.map(async (c) => {
          const t = Date.now();
          await c.stop(5_000);
          if (process.env.INTEROP_DEBUG) process.stderr.write(`stop ${c.name} ${Date.now() - t}\n`);
        }),
      );
      if (process.env.INTEROP_DEBUG) process.stderr.write(`stopped all in ${Date.now() - t0}\n`);
      for (const c of connectors) writeFileSync(join(dir, `${c.name}.log`), c.output());
      cloud.kill("SIGTERM");
      const killer = setTimeout(() => cloud.kill("SIGKILL"), 5_000);
      if (cloud.exitCode === null && cloud.signalCode === null) await new Promise((r) => cloud.once("exit", r));
      clearTimeout(killer);
      await gateway.close();
      apps.close();
      if (keep) process.stderr.write(`interop: temp dir kept for the failed scenarios: ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** @typedef {Awaited<ReturnType<typeof startInterop>>} Interop */

/** The tunnels of one connector with several: scenarios take one each, in turn, and see it replaced. */
export class Pool {
  /** @param {import("./gateway/server.mjs").Gateway} gateway @param {Connector} connector @param {number} size */
  constructor(gateway, connector, size) {
    this.gateway = gateway;
    this.connector = connector;
    this.name = connector.name;
    this.size = size;
    /** @type {import("./gateway/tunnel.mjs").Tunnel[]} first tunnels not yet taken */
    this.fresh = [];
  }

  /** The connector's tunnels that are open now. */
  open() {
    return this.gateway.tunnels.filter((t) => t.name === this.name && !t.closeInfo);
  }

  /** Resolves once `size` tunnels are open. */
  full(timeoutMs = DEADLINE_MS) {
    return until(
      this.gateway.changes,
      `${this.size} open tunnels of ${this.name}`,
      () => this.open().length >= this.size,
      timeoutMs,
    );
  }

  /** A first tunnel nobody broke yet (so its slot's backoff is still at its first step). */
  take() {
    const t = this.fresh.shift();
    if (!t || t.closeInfo) throw new Error(`pool ${this.name}: no untouched tunnel left`);
    return t;
  }

  /** After `closed` ended: the connector filled its slot again with a new tunnel, and still runs. */
  async replaced(/** @type {import("./gateway/tunnel.mjs").Tunnel} */ closed) {
    await this.full();
    const newer = this.open().filter((t) => t.seq > closed.seq);
    if (newer.length === 0 || !this.connector.running)
      throw new Error(`pool ${this.name}: tunnel ${closed.seq} not replaced`);
    const tunnel = /** @type {import("./gateway/tunnel.mjs").Tunnel} */ (newer.at(-1));
    assertGoodRequest(tunnel.dial);
    return tunnel;
  }
}

export class Connector {
  /** @param {string} stateDir @param {string} name @param {string} key @param {{ tunnels?: number, gracePeriod?: number }} o */
  constructor(stateDir, name, key, o) {
    this.name = name;
    this.stateDir = stateDir;
    const args = ["run", "--state-dir", stateDir, "--name", name, "--log-format", "json", "--log-level", "debug"];
    args.push("--tunnels", String(o.tunnels ?? 1), "--auto-upgrade", "off");
    // A short grace so the suite's teardown does not wait out streams a scenario left open.
    args.push("--grace-period", String(o.gracePeriod ?? 1));
    this.proc = spawn(BINARY, args, {
      stdio: ["ignore", "pipe", "pipe"],
      // Only what it needs: no developer proxy or CONNECTOR_* setting leaks in, no /etc env file is read.
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/tmp",
        CONNECTOR_ENV_FILE: "/nonexistent/connector.env",
        CONNECTOR_PROVISIONING_KEY: key,
      },
    });
    this.changes = new Changes();
    this.chunks = collect(this.proc, this.changes);
    /** @type {Promise<number | null>} */
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))),
    );
    this.exitCode = /** @type {number | null | undefined} */ (undefined);
    void this.exited.then((code) => (this.exitCode = code));
  }

  output() {
    return this.chunks.join("");
  }

  /** Resolves when `check()` holds, looked at whenever the connector writes to its log (or exits). @param {string} what @param {() => unknown} check */
  waitFor(what, check, timeoutMs = DEADLINE_MS) {
    return until(this.changes, `${what} (connector ${this.name})`, check, timeoutMs);
  }

  get running() {
    return this.exitCode === undefined;
  }

  /** SIGTERM, SIGKILL after `timeoutMs`; resolves with the exit code. */
  async stop(timeoutMs = 20_000) {
    if (this.running) this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** @param {import("node:child_process").ChildProcess} proc @param {Changes} [changes] */
function collect(proc, changes) {
  /** @type {string[]} */
  const chunks = [];
  const add = (/** @type {string} */ c) => (chunks.push(c), changes?.changed());
  proc.stdout?.setEncoding("utf8").on("data", add);
  proc.stderr?.setEncoding("utf8").on("data", add);
  proc.once("exit", () => changes?.changed());
  return chunks;
}

/** Waits (fs events, 30 s deadline) for the cloud to write cloud.json; fails early if it exits. */
function waitForFile(
  /** @type {string} */ path,
  /** @type {import("node:child_process").ChildProcess} */ proc,
  /** @type {string[]} */ out,
) {
  return new Promise((resolve, reject) => {
    const finish = (/** @type {Error | undefined} */ err, /** @type {any} */ value = undefined) => {
      watcher.close();
      clearTimeout(timer);
      proc.off("exit", onExit);
      if (err) reject(err);
      else resolve(value);
    };
    const check = () => {
      if (!existsSync(path)) return;
      try {
        finish(undefined, JSON.parse(readFileSync(path, "utf8")));
      } catch {
        // renamed into place whole, so this is a race with our read: look again on the next event
      }
    };
    const onExit = (/** @type {number} */ code) =>
      finish(new Error(`the cloud exited (${code}) before cloud.json:\n${out.join("")}`));
    proc.on("exit", onExit);
    const watcher = watch(dirname(path), check);
    const timer = setTimeout(() => finish(new Error(`no ${path} within 30 s:\n${out.join("")}`)), 30_000);
    check();
  });
}
