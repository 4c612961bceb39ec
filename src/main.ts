/**
 * Process entry point. Parses the command line with citty and maps every outcome to an exit code:
 * a subcommand returns its code, a `ConnectorError` carries one, a citty usage error is 2.
 */
import { runCommand, showUsage } from "citty";
import { ConnectorError, ExitCode } from "./errors.ts";
import { rootCommand } from "./cli/root.ts";
import { versionLine } from "./version.ts";

const SUBCOMMANDS = Object.keys(rootCommand.subCommands as Record<string, unknown>);

/** `--no-proxy LIST` is the documented spelling (as NO_PROXY); citty would read it as `--proxy=false`. */
function normaliseArgs(rawArgs: readonly string[]): string[] {
  return rawArgs.map((arg) =>
    arg === "--no-proxy" ? "--proxy-bypass" : arg.startsWith("--no-proxy=") ? `--proxy-bypass=${arg.slice(11)}` : arg,
  );
}

async function main(given: string[]): Promise<number> {
  const rawArgs = normaliseArgs(given);
  if (rawArgs.length === 1 && (rawArgs[0] === "--version" || rawArgs[0] === "-v")) {
    process.stdout.write(`${versionLine()}\n`);
    return ExitCode.ok;
  }
  const helpAsked = rawArgs.some((a) => a === "--help" || a === "-h");
  // The subcommand may come after global flags (`connector --state-dir /x status`): it is the first
  // argument that names one; the first bare word otherwise (for the error message).
  const sub = rawArgs.find((a) => SUBCOMMANDS.includes(a)) ?? rawArgs.find((a) => !a.startsWith("-"));
  if (helpAsked || rawArgs.length === 0) {
    const subDef = sub && SUBCOMMANDS.includes(sub) ? await resolveSub(sub) : undefined;
    await showUsage(subDef ?? rootCommand, subDef ? rootCommand : undefined);
    return rawArgs.length === 0 ? ExitCode.usage : ExitCode.ok;
  }
  if (!sub || !SUBCOMMANDS.includes(sub)) {
    process.stderr.write(
      `Unknown command "${sub ?? rawArgs[0]}". Commands: ${SUBCOMMANDS.join(", ")}. See connector --help.\n`,
    );
    return ExitCode.usage;
  }
  // Run the subcommand directly: citty's root dispatch drops a subcommand's return value (its exit code).
  const subDef = await resolveSub(sub);
  const subArgs = rawArgs.filter((_, i) => i !== rawArgs.indexOf(sub));
  const { result } = await runCommand(subDef as Parameters<typeof runCommand>[0], { rawArgs: subArgs });
  return typeof result === "number" ? result : ExitCode.ok;
}

async function resolveSub(name: string) {
  const subs = rootCommand.subCommands as Record<string, () => Promise<Parameters<typeof showUsage>[0]>>;
  return subs[name]?.();
}

function report(err: unknown): number {
  if (err instanceof ConnectorError) {
    process.stderr.write(`error: ${err.message} [${err.code}]\n`);
    return err.exitCode;
  }
  if (err instanceof Error && err.name === "CLIError") {
    process.stderr.write(`error: ${err.message}. See connector --help.\n`);
    return ExitCode.usage;
  }
  process.stderr.write(
    `error: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return ExitCode.failure;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(report(err)),
);
