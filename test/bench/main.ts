/**
 * `bun test/bench/main.ts [--json] [--quick] [--only ID[,ID…]]` — the benchmark of BENCHMARKS.md: the connector
 * side by side with direct, `ssh -L` and socat, every scenario on every path in one run, on loopback only.
 * Progress goes to stderr; stdout gets the table, or with --json exactly the BenchDoc of report.ts.
 * Every process it starts is stopped on exit, on Ctrl-C and on failure (session.ts).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEADLINES, profile } from "./config.ts";
import { formatReport } from "./format.ts";
import { LOCAL_HOST } from "./host.ts";
import { runLongDistance } from "./long-distance.ts";
import { connectorMissing, connectorSetup } from "./paths/connector.ts";
import { type BenchDoc, type PathId, PATHS, ResultTable } from "./report.ts";
import { Rig } from "./rig.ts";
import { runScenarios, startPaths } from "./run-host.ts";
import { LONG_DISTANCE_ID, SCENARIO_IDS, SCENARIOS } from "./scenarios.ts";
import { PHASES } from "./scenario.ts";
import { BenchSession } from "./session.ts";
import { startTargets } from "./targets.ts";
import { detectTools, load1m, machineInfo, versions } from "./tools.ts";

const ROOT = join(import.meta.dir, "..", "..");

const USAGE = `usage: bun test/bench/main.ts [--json] [--quick] [--only ID[,ID…]] [--paths ID[,ID…]] [--no-build] [--no-iperf] [--keep] [--netns-no-delay]
  --json            print only the JSON document on stdout
  --quick           short durations, fewer streams (CI guard; under 2 minutes; long-distance not run)
  --only IDS        run only these scenarios: ${SCENARIO_IDS.join(", ")}
  --paths IDS       measure only these columns: ${PATHS.join(", ")} (the others show as not selected)
  --no-build        use dist/connector as it is instead of building it first
  --no-iperf        bulk scenarios with the harness's own sender even when iperf3 is installed
  --keep            keep the scratch directory (logs of every process) and print where it is
  --netns-no-delay  run the long-distance scenario without netem (checks the namespace plumbing only)
  --cloud-main F, --connector-bin F
                    another cloud entry point or connector binary (e.g. an older build, to compare)`;

export interface Options {
  json: boolean;
  quick: boolean;
  only: string[] | undefined;
  /** Columns to measure (default all): quicker A/B runs of one path against one baseline. */
  paths: PathId[] | undefined;
  build: boolean;
  iperf: boolean;
  keep: boolean;
  netnsNoDelay: boolean;
  cloudMain: string | undefined;
  connectorBin: string | undefined;
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      paths: { type: "string" },
      "no-build": { type: "boolean", default: false },
      "no-iperf": { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      "netns-no-delay": { type: "boolean", default: false },
      "cloud-main": { type: "string" },
      "connector-bin": { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = values.only
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only?.filter((id) => !SCENARIO_IDS.includes(id)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${SCENARIO_IDS.join(", ")}`);
  const paths = values.paths
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknownPaths = paths?.filter((id) => !(PATHS as readonly string[]).includes(id)) ?? [];
  if (unknownPaths.length > 0) throw new Error(`unknown path ${unknownPaths.join(", ")}; known: ${PATHS.join(", ")}`);
  return {
    json: values.json,
    quick: values.quick,
    only,
    paths: paths as PathId[] | undefined,
    build: !values["no-build"],
    iperf: !values["no-iperf"],
    keep: values.keep,
    netnsNoDelay: values["netns-no-delay"],
    cloudMain: values["cloud-main"],
    connectorBin: values["connector-bin"],
  };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Builds dist/connector; returns why the connector column is skipped, or undefined when the build worked. */
async function buildConnector(rig: Rig): Promise<string | undefined> {
  progress("building dist/connector (bun build.ts --host)…");
  const { code, child } = await rig.runToEnd("build", [process.execPath, "build.ts", "--host"], DEADLINES.buildMs);
  return code === 0 ? undefined : `build failed (exit ${code}): ${rig.procs.tail(child)}`;
}

async function run(options: Options, session: BenchSession): Promise<BenchDoc> {
  const loadAtStart = load1m();
  const stale = session.removeStaleNamespaces();
  if (stale.length > 0) progress(`removed namespaces left by earlier runs: ${stale.join(", ")}`);
  const tools = detectTools();
  const useIperf = options.iperf && tools.iperf3 !== undefined;
  const prof = profile(options.quick);
  const procs = session.processes("host");
  const rigFor = (name: string) => {
    const dir = join(session.dir, "host", name);
    mkdirSync(dir, { recursive: true });
    return new Rig(procs, LOCAL_HOST, dir, tools, ROOT);
  };
  const table = new ResultTable();
  const selected = (id: string) => !options.only || options.only.includes(id);
  progress(
    `bulk scenarios use ${useIperf ? "iperf3" : "the harness's own sender"}${options.quick ? "; quick profile" : ""}`,
  );

  const connector = connectorSetup(
    ROOT,
    options.cloudMain && resolve(options.cloudMain),
    options.connectorBin && resolve(options.connectorBin),
  );
  let connectorSkip = connectorMissing(connector);
  // build only when it is the build that is missing or stale, never when the cloud is absent anyway
  if (options.build && connector.real && existsSync(connector.cloudMain)) {
    connectorSkip = (await buildConnector(rigFor("build"))) ?? connectorMissing(connector);
  }

  for (const phase of PHASES) {
    const scenarios = SCENARIOS.filter((s) => s.phase === phase && selected(s.id));
    if (scenarios.length === 0) continue;
    progress(`${phase} phase: starting the target app and every path on 127.0.0.1…`);
    const rig = rigFor(phase);
    const targets = await startTargets(rig, useIperf);
    const paths = await startPaths(rig, targets, { connectorSkip, connector, only: options.paths }, progress);
    await runScenarios({ rig, profile: prof, useIperf }, paths, scenarios, table, progress);
    await procs.stopAll(); // the next phase starts fresh relays, and the CPU is free for it
  }
  if (selected(LONG_DISTANCE_ID)) {
    await runLongDistance({
      session,
      table,
      profile: prof,
      tools,
      root: ROOT,
      useIperf,
      connectorSkip,
      connector,
      paths: options.paths,
      notRun: options.quick ? "not run with --quick (slow start over long round trips needs long runs)" : undefined,
      noDelay: options.netnsNoDelay,
      progress,
    });
  }
  return {
    machine: machineInfo(new Date(), loadAtStart),
    versions: versions(tools, connector.real ? connector.command[0]! : ""),
    scenarios: table.rows(),
  };
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  const session = new BenchSession(options.keep);
  session.installHandlers();
  try {
    const doc = await run(options, session);
    console.log(options.json ? JSON.stringify(doc, null, 2) : formatReport(doc));
    return 0;
  } catch (err) {
    console.error(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  } finally {
    await session.cleanup();
    if (options.keep) progress(`logs and scratch files kept in ${session.dir}`);
  }
}

if (import.meta.main) process.exit(await main());
