/**
 * The reference cloud as a process (test/cloud/README.md). Starts everything on 127.0.0.1 with OS-chosen
 * ports (each gateway in a child process), writes DIR/cloud.json atomically once ready (and again
 * when a gateway's pid changes), and runs until SIGTERM or SIGINT, then stops
 * cleanly with exit 0 (a second signal exits at once). Usage: see cli-args.ts or `--help`.
 * Exit codes: 0 stopped by a signal, 1 failed to start, 2 usage error.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ConnectorError, describeError, ExitCode } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import { writeFileAtomic } from "../../src/state/atomic-file.ts";
import { parseCloudArgs, USAGE, type CloudCli } from "./cli-args.ts";
import { startCloud } from "./cloud.ts";
import { toCloudJson } from "./cloud-json.ts";

function parseOrExit(): CloudCli {
  try {
    const cli = parseCloudArgs(process.argv.slice(2));
    if (cli.help) {
      console.log(USAGE);
      process.exit(ExitCode.ok);
    }
    return cli;
  } catch (err) {
    console.error(`${describeError(err)}\n${USAGE}`);
    process.exit(err instanceof ConnectorError ? err.exitCode : ExitCode.usage);
  }
}

async function main(): Promise<void> {
  const cli = parseOrExit();
  const log = createLogger({ level: "info", format: "pretty" }).withTag("cloud");
  const cloudJsonPath = join(cli.dir, "cloud.json");
  mkdirSync(cli.dir, { recursive: true });
  // A cloud.json left by an earlier run must not be mistaken for this one's.
  rmSync(cloudJsonPath, { force: true });

  const { dir: _dir, help: _help, ...options } = cli;
  const cloud = await startCloud({ ...options, log });
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(ExitCode.failure);
    stopping = true;
    log.info(`${signal}: stopping`);
    void cloud.stop().then(() => process.exit(ExitCode.ok));
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  const writeCloudJson = () => writeFileAtomic(cloudJsonPath, `${JSON.stringify(toCloudJson(cloud), null, 2)}\n`);
  writeCloudJson();
  // A gateway restarted through the admin API has a new pid: keep the file true (written atomically).
  cloud.onGatewaysChanged(() => {
    if (!stopping) writeCloudJson();
  });
  log.info(`control plane ${cloud.controlUrl}, admin ${cloud.adminUrl}, CA pin ${cloud.caPin}`);
  if (cloud.releases)
    log.info(
      `releases ${cloud.releases.baseUrl} (channels: ${Object.keys(cloud.releases.channels).join(", ") || "none yet"})`,
    );
  log.info(`gateways ${cloud.gateways.map((g) => g.url).join(", ")}; ready, wrote ${cloudJsonPath}`);
}

main().catch((err: unknown) => {
  console.error(`reference cloud failed to start: ${describeError(err)}`);
  process.exit(ExitCode.failure);
});
