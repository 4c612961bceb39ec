/**
 * Logger construction. Logs go to stderr (stdout is for command output such as `--json`), either
 * human-readable or one JSON object per line for journald and log shippers. Secrets are never passed
 * to the logger; values that might carry one are `Secret` instances, which print as `[redacted]`.
 *
 * Under systemd, stderr is a stream to the journal, which stores every line at priority "info" unless
 * the line starts with an sd-daemon prefix such as `<4>` (sd-daemon(3); the unit's SyslogLevelPrefix=
 * is on by default): each line then gets its level's prefix, so `journalctl -p warning` finds warnings.
 * JSON lines carry the same number as `priority` wherever they go. Fields bound once known (the
 * connector's id) go on every later line of the logger and of its `withTag` children.
 */
import { fstatSync } from "node:fs";
import { createConsola, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola";

export type LogLevelName = "silent" | "error" | "warn" | "info" | "debug" | "trace";
export type LogFormat = "pretty" | "json";
export type Logger = ConsolaInstance;

const LEVELS: Record<LogLevelName, number> = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

/** syslog priority of a consola level: 3 err, 4 warning, 6 info, 7 debug (sd-daemon(3)). */
export function priorityOf(level: number): number {
  if (level <= 0) return 3;
  if (level === 1) return 4;
  if (level <= 3) return 6;
  return 7;
}

/**
 * Whether stderr is a journal stream: systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it
 * connected, and a process whose stderr was redirected elsewhere (a shell started from a service
 * inherits the variable) must not prefix, so the fd's own device and inode must match (systemd.exec(5)).
 */
export function stderrIsJournal(
  env: Record<string, string | undefined> = process.env,
  stat: () => { dev: bigint; ino: bigint } = () => fstatSync(2, { bigint: true }),
): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? "");
  if (!match) return false;
  try {
    const { dev, ino } = stat();
    return String(dev) === match[1] && String(ino) === match[2];
  } catch {
    return false;
  }
}

/** What every logger of one `createLogger` call shares and can be told later. */
class SharedState {
  /** Fields every line carries from now on (`bindLogFields`). */
  fields: Record<string, unknown> = {};
  /** Lines go to the journal: `<N>` prefixes (`logToJournal`). */
  journal = false;
}
const STATE = Symbol("shared log state");
type StatefulReporter = ConsolaReporter & { [STATE]?: SharedState };

function statesOf(log: Logger): SharedState[] {
  return (log.options.reporters as StatefulReporter[]).flatMap((r) => (r[STATE] ? [r[STATE]] : []));
}

/**
 * Adds `fields` to every later line of `log` and of every logger made from it (`withTag`) or from the
 * same `createLogger` call. A logger not made by `createLogger` (a test's) is left as it is.
 */
export function bindLogFields(log: Logger, fields: Record<string, unknown>): void {
  for (const state of statesOf(log)) state.fields = { ...state.fields, ...fields };
}

/**
 * Whether the lines of `log` (and its children) go to the journal, as `stderrIsJournal` found: the
 * process that knows its lines go to stderr says so (the daemon, from its environment).
 */
export function logToJournal(log: Logger, journal: boolean): void {
  for (const state of statesOf(log)) state.journal = journal;
}

/** The fields of one entry: its extra arguments merged (an Error as `error`, anything else as `detail`). */
function entryFields(args: readonly unknown[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const extra of args) {
    if (extra && typeof extra === "object" && !(extra instanceof Error)) Object.assign(fields, extra);
    else if (extra instanceof Error) fields.error = extra.message;
    else fields.detail = String(extra);
  }
  return fields;
}

function messageOf(first: unknown): string {
  return typeof first === "string" ? first : JSON.stringify(first);
}

/** Bound fields go last and never replace a field of the line itself. */
function withBound(fields: Record<string, unknown>, state: SharedState): Record<string, unknown> {
  const out = { ...fields };
  for (const [key, value] of Object.entries(state.fields)) if (!(key in out)) out[key] = value;
  return out;
}

function jsonLine(entry: LogObject, state: SharedState): string {
  const [first, ...rest] = entry.args;
  const priority = priorityOf(entry.level);
  const record: Record<string, unknown> = {
    time: entry.date.toISOString(),
    level: entry.type,
    priority,
    ...(entry.tag ? { component: entry.tag } : {}),
    msg: messageOf(first),
    ...withBound(entryFields(rest), state),
  };
  return `${state.journal ? `<${priority}>` : ""}${JSON.stringify(record)}\n`;
}

/** A value as `key=value` text shows it: bare when that cannot be misread, JSON-quoted otherwise. */
function textValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
  if (value === undefined) return "undefined";
  return JSON.stringify(value) ?? String(value);
}

/**
 * `pretty` to the journal: one line per entry, no colours or time (journald stamps each line),
 * `[component] message key=value …` after the priority prefix. A newline in the message is escaped so
 * that one entry stays one journal record.
 */
function journalTextLine(entry: LogObject, state: SharedState): string {
  const [first, ...rest] = entry.args;
  const parts = [
    `<${priorityOf(entry.level)}>${entry.tag ? `[${entry.tag}] ` : ""}${messageOf(first).replace(/\n/g, "\\n")}`,
  ];
  for (const [key, value] of Object.entries(withBound(entryFields(rest), state)))
    parts.push(`${key}=${textValue(value)}`);
  return `${parts.join(" ")}\n`;
}

/** consola's own reporter (a terminal), the bound fields merged into the line's fields object. */
function withBoundArgs(entry: LogObject, state: SharedState): LogObject {
  if (Object.keys(state.fields).length === 0) return entry;
  const args = [...entry.args];
  const last = args.length > 1 ? args.at(-1) : undefined;
  if (last && typeof last === "object" && !(last instanceof Error))
    args[args.length - 1] = withBound(last as Record<string, unknown>, state);
  else args.push({ ...state.fields });
  return { ...entry, args };
}

export interface LoggerOptions {
  readonly level: LogLevelName;
  readonly format: LogFormat;
  /** Where lines go; stderr when absent. */
  readonly write?: (line: string) => void;
  /**
   * Lines go to the journal: `<N>` priority prefixes. When absent: detected (`stderrIsJournal`) if
   * lines go to stderr, otherwise no until `logToJournal` says so.
   */
  readonly journal?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const state = new SharedState();
  state.journal = options.journal ?? (options.write === undefined && stderrIsJournal());
  const level = LEVELS[options.level];
  if (options.format === "json") {
    const reporter: StatefulReporter = { [STATE]: state, log: (entry) => write(jsonLine(entry, state)) };
    return createConsola({ level, reporters: [reporter] });
  }
  const log = createConsola({ level, stdout: process.stderr, stderr: process.stderr });
  const [terminal] = log.options.reporters;
  const reporter: StatefulReporter = {
    [STATE]: state,
    log(entry, ctx) {
      if (state.journal) write(journalTextLine(entry, state));
      else terminal?.log(withBoundArgs(entry, state), ctx);
    },
  };
  log.setReporters([reporter]);
  return log;
}
