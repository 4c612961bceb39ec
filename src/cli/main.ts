/**
 * The command line, runnable in-process: `run(argv, io)` parses, dispatches and maps every outcome to
 * an exit code — a command's own code, a `ConnectorError`'s, 2 for a usage error — writing only
 * through `io`. src/main.ts is the process around it.
 */
import { ConnectorError, ExitCode, UsageError } from "../errors.ts";
import { buildInfo, versionLine } from "../version.ts";
import type { Command, CommandEntry } from "./command.ts";
import { COMMANDS } from "./commands.ts";
import { HELP_ROW, optionLines, paragraph } from "./help.ts";
import type { CliIo } from "./io.ts";
import { GLOBAL_OPTIONS, PRE_COMMAND_OPTIONS } from "./options.ts";
import { findOption, isHelpAsked, parseArgs, shown, unknownFlagMessage } from "./parse.ts";
import { nearest } from "./suggest.ts";

const VERSION_FLAGS: readonly string[] = ["-v", "--version"];

export function rootHelp(): string {
  return [
    ...paragraph(
      `connector ${buildInfo.version}: ZTNA app connector: dials out to the cloud and relays user traffic to private applications`,
    ),
    "",
    "Usage: connector [global flags] COMMAND [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)}${c.summary}`),
    "",
    "Global flags (every command; before or after it):",
    ...optionLines(GLOBAL_OPTIONS, [
      ["-h, --help", "Show this help; connector COMMAND --help shows a command's flags"],
      ["-v, --version", "Print the version, commit, build date and target"],
    ]),
    "",
    ...paragraph(
      "A setting is taken from its flag (--flag VALUE or --flag=VALUE), else its environment variable, else the env file, else its default. An unknown flag, a stray argument or an invalid value is a usage error (exit 2).",
    ),
    "",
  ].join("\n");
}

export function commandHelp(entry: CommandEntry, command: Command): string {
  return [
    `Usage: connector ${entry.name} [flags]`,
    "",
    ...paragraph(`${entry.summary}.`),
    ...(command.about ?? []).flatMap((text) => ["", ...paragraph(text)]),
    "",
    "Flags:",
    ...optionLines(command.options, [HELP_ROW]),
    "",
  ].join("\n");
}

/** Splits `argv` into the command's entry and its arguments (global flags before it included). */
function locateCommand(argv: readonly string[]): { entry?: CommandEntry; tokens: string[] } {
  const before: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith("-") || token === "-") {
      const entry = COMMANDS.find((c) => c.name === token);
      if (entry) return { entry, tokens: [...before, ...argv.slice(i + 1)] };
      const guess = nearest(
        token,
        COMMANDS.map((c) => c.name),
      );
      throw new UsageError(
        `unknown command ${shown(token)}; ${guess ? `did you mean ${guess}?` : `the commands are ${COMMANDS.map((c) => c.name).join(", ")}`}`,
      );
    }
    before.push(token);
    if (isHelpAsked([token])) continue;
    if (VERSION_FLAGS.includes(token)) throw new UsageError(`${token} goes alone: connector ${token}`);
    const eq = token.indexOf("=");
    const written = eq < 0 ? token : token.slice(0, eq);
    const option = written.startsWith("--") ? findOption(PRE_COMMAND_OPTIONS, written.slice(2)) : undefined;
    if (!option) {
      throw new UsageError(
        `${unknownFlagMessage(written, undefined, PRE_COMMAND_OPTIONS)} (a command's own flags go after the command)`,
      );
    }
    // Its value is the next word: a command name there is the value, not the command.
    if (eq < 0 && i + 1 < argv.length) before.push(argv[++i] as string);
  }
  return { tokens: before };
}

async function dispatch(argv: readonly string[], io: CliIo, context: { help: string }): Promise<number> {
  if (argv.length === 1 && VERSION_FLAGS.includes(argv[0] as string)) {
    io.stdout(`${versionLine()}\n`);
    return ExitCode.ok;
  }
  if (argv.length === 0) {
    io.stderr(rootHelp());
    return ExitCode.usage;
  }
  const { entry, tokens } = locateCommand(argv);
  if (!entry) {
    if (isHelpAsked(tokens)) {
      io.stdout(rootHelp());
      return ExitCode.ok;
    }
    throw new UsageError(`no command given: connector [global flags] COMMAND [flags]`);
  }
  const command = await entry.load();
  context.help = `connector ${entry.name} --help`;
  if (isHelpAsked(tokens)) {
    io.stdout(commandHelp(entry, command));
    return ExitCode.ok;
  }
  const args = parseArgs(entry.name, tokens, command.options);
  return command.run(args, io);
}

function report(err: unknown, io: CliIo, help: string): number {
  if (err instanceof ConnectorError) {
    io.stderr(`error: ${err.message} [${err.code}]\n`);
    if (err.exitCode === ExitCode.usage) io.stderr(`See ${help}.\n`);
    return err.exitCode;
  }
  io.stderr(`error: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.failure;
}

/** Runs the `connector` command line `argv` (without the program name); resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const context = { help: "connector --help" };
  try {
    return await dispatch(argv, io, context);
  } catch (err) {
    return report(err, io, context.help);
  }
}
