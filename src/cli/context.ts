/**
 * Turns parsed citty args into resolved settings and a logger: the one place where the CLI layer
 * meets the process environment.
 */
import { resolveSettings, type Settings } from "../config/settings.ts";
import { createLogger, type Logger } from "../log.ts";

export interface CliContext {
  settings: Settings;
  log: Logger;
}

export function cliContext(
  args: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): CliContext {
  const flags: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(args)) {
    if (typeof value === "string") flags[name] = value;
    else if (typeof value === "number") flags[name] = String(value);
  }
  const { settings } = resolveSettings({
    flags,
    env,
    envFile: flags["env-file"],
    isTTY: Boolean(process.stderr.isTTY),
  });
  return { settings, log: createLogger({ level: settings.logLevel, format: settings.logFormat }) };
}

/** Writes command output (not logs) to stdout. */
export function printOut(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}
