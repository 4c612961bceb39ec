/**
 * Subcommands whose capability has not shipped yet say so plainly and exit 1, instead of printing
 * output that could be mistaken for a result.
 */
import { ConnectorError, ExitCode } from "../errors.ts";

export function unavailable(command: string, what: string): never {
  throw new ConnectorError(
    "COMMAND_UNAVAILABLE",
    `"connector ${command}" is not available in this version yet: ${what} ships in a later release.`,
    ExitCode.failure,
  );
}
