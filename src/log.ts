/**
 * Logger construction. Logs go to stderr (stdout is for command output such as `--json`), either
 * human-readable or one JSON object per line for journald and log shippers. Secrets are never passed
 * to the logger; values that might carry one are `Secret` instances, which print as `[redacted]`.
 */
import { createConsola, type ConsolaInstance, type LogObject } from "consola";

export type LogLevelName = "silent" | "error" | "warn" | "info" | "debug" | "trace";
export type LogFormat = "pretty" | "json";
export type Logger = ConsolaInstance;

const LEVELS: Record<LogLevelName, number> = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

function jsonReporter(write: (line: string) => void) {
  return {
    log(entry: LogObject) {
      const [first, ...rest] = entry.args;
      const record: Record<string, unknown> = {
        time: entry.date.toISOString(),
        level: entry.type,
        ...(entry.tag ? { component: entry.tag } : {}),
        msg: typeof first === "string" ? first : JSON.stringify(first),
      };
      for (const extra of rest) {
        if (extra && typeof extra === "object" && !(extra instanceof Error)) Object.assign(record, extra);
        else if (extra instanceof Error) record.error = extra.message;
        else record.detail = String(extra);
      }
      write(`${JSON.stringify(record)}\n`);
    },
  };
}

export function createLogger(options: {
  level: LogLevelName;
  format: LogFormat;
  write?: (line: string) => void;
}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  if (options.format === "json") {
    return createConsola({ level: LEVELS[options.level], reporters: [jsonReporter(write)] });
  }
  return createConsola({ level: LEVELS[options.level], stdout: process.stderr, stderr: process.stderr });
}
