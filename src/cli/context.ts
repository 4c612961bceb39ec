/**
 * Turns parsed args into resolved settings and a logger: the one place where the CLI layer meets the
 * environment (`io.env`, or the copy a command made of it when it took its secrets out).
 */
import { resolveSettings, type Settings } from "../config/settings.ts";
import { createLogger, type Logger } from "../log.ts";
import type { CliIo } from "./io.ts";
import type { ParsedArgs } from "./parse.ts";

export interface CliContext {
  settings: Settings;
  log: Logger;
}

export function cliContext(args: ParsedArgs, io: CliIo, env: Record<string, string | undefined> = io.env): CliContext {
  const flags = args.strings();
  const { settings } = resolveSettings({ flags, env, envFile: flags["env-file"], isTTY: io.stderrIsTTY });
  return {
    settings,
    log: createLogger({
      level: settings.logLevel,
      format: settings.logFormat,
      write: io.stderr,
      journal: io.stderrIsJournal,
    }),
  };
}
