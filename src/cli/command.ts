/** What a subcommand declares: its flags, its help and what it does. */
import type { CliIo } from "./io.ts";
import type { OptionDef, ParsedArgs } from "./parse.ts";

export interface Command {
  readonly name: string;
  /** Paragraphs of the command's help, after its one-line summary (src/cli/commands.ts). */
  readonly about?: readonly string[];
  readonly options: readonly OptionDef[];
  /** Runs the command; resolves to the process exit code. */
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}

export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** Loaded only when used: `status` does not need the daemon's modules. */
  readonly load: () => Promise<Command>;
}
