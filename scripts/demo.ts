/**
 * `npm run demo`: the product end to end on this machine. Builds the connector, starts a sample private
 * app and the reference cloud, enrolls the real binary, runs it, sends a user request through
 * gateway → tunnel → connector → app, prints `connector status`, then stops everything gracefully.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
const binary = join(root, "dist/connector");
const work = mkdtempSync(join(tmpdir(), "connector-demo-"));
const stateDir = join(work, "state");
const cloudDir = join(work, "cloud");
const children: Bun.Subprocess[] = [];

function step(text: string) {
  console.log(`\n\x1b[1m▶ ${text}\x1b[0m`);
}

async function run(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code, out, err };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await Bun.sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface CloudJson {
  controlUrl: string;
  provisioningKey: string;
  gateways: { id: string; url: string }[];
  apps: Record<string, { listen: string | null }>;
}

/** Sends one HTTP request over a raw TCP connection to `listen` and returns the response text. */
function httpGet(listen: string, path: string): Promise<string> {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: wiki\r\nConnection: close\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error("no response within 10 s")));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
    socket.on("error", reject);
  });
}

async function main() {
  step("Build the connector for this machine");
  const build = await run([bun, "build.ts", "--host"]);
  if (build.code !== 0) throw new Error(build.err);
  console.log(build.out.trim());
  console.log((await run([binary, "--version"])).out.trim());

  step("Start a sample private app (HTTP on 127.0.0.1, reachable only from this host)");
  const app = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => new Response(`hello from the private wiki — you asked for ${new URL(req.url).pathname}\n`),
  });
  console.log(`private app on 127.0.0.1:${app.port}`);

  step("Start the reference cloud (control plane with CA, 2 gateways)");
  const cloud = Bun.spawn(
    [bun, "test/cloud/main.ts", "--dir", cloudDir, "--gateways", "2", "--app", `wiki=127.0.0.1:${app.port}`],
    {
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    },
  );
  children.push(cloud);
  const cloudJson = await waitFor("cloud.json", () => {
    const path = join(cloudDir, "cloud.json");
    return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as CloudJson) : undefined;
  });
  console.log(`control plane ${cloudJson.controlUrl}; gateways ${cloudJson.gateways.map((g) => g.url).join(", ")}`);

  step("Enroll: key pair generated here, CSR sent, signed identity stored");
  const enroll = await run(
    [binary, "enroll", "--state-dir", stateDir, "--name", "demo-connector", "--json", "--log-format", "json"],
    {
      CONNECTOR_PROVISIONING_KEY: cloudJson.provisioningKey,
    },
  );
  if (enroll.code !== 0) throw new Error(`enroll failed (exit ${enroll.code}): ${enroll.err}`);
  console.log(enroll.out.trim());

  step("Run the connector daemon");
  const daemon = Bun.spawn([binary, "run", "--state-dir", stateDir, "--log-format", "pretty", "--log-level", "info"], {
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  });
  children.push(daemon);
  await waitFor("all tunnels up", async () =>
    (await run([binary, "status", "--state-dir", stateDir, "--json"])).code === 0 ? true : undefined,
  );

  const listen = cloudJson.apps.wiki?.listen;
  if (!listen) throw new Error("the reference cloud gave no user listener for the app");
  step(`A user connects to the gateway's listener for "wiki" (${listen})`);
  const response = await httpGet(listen, "/welcome");
  console.log(response.trim());

  step("connector status");
  console.log((await run([binary, "status", "--state-dir", stateDir])).out.trim());

  step("Graceful stop (SIGTERM): GO_AWAY to the gateways, open streams finish, exit 0");
  daemon.kill("SIGTERM");
  console.log(`connector exited with code ${await daemon.exited}`);
  app.stop(true);
}

async function cleanup() {
  for (const child of children.reverse()) {
    if (child.exitCode === null) child.kill("SIGTERM");
    await Promise.race([child.exited, Bun.sleep(5_000)]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  rmSync(work, { recursive: true, force: true });
}

process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
main().then(
  async () => {
    await cleanup();
    console.log("\ndemo finished");
  },
  async (err: unknown) => {
    console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
    await cleanup();
    process.exit(1);
  },
);
