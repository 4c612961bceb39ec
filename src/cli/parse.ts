/**
 * The command-line parser: exact, from the command's option list. An unknown flag, a stray argument,
 * a flag without its value, a value given to a switch or a flag given twice is a `UsageError` that
 * names the flag (and the nearest known one), so a typo never silently falls back to a default.
 * Accepted spellings: `--flag value`, `--flag=value`, a switch alone (`--json`), an option's aliases
 * (`--no-proxy` for `--proxy-bypass`), `-h`/`--help` anywhere.
 */
import { UsageError } from "../errors.ts";
import { nearest } from "./suggest.ts";

export interface OptionDef {
  /** Without the leading `--`. */
  readonly name: string;
  readonly kind: "string" | "boolean";
  readonly description: string;
  readonly valueHint?: string;
  /** Environment variables that give the same setting, in priority order. */
  readonly env?: readonly string[];
  /** What the help shows as the default. */
  readonly defaultText?: string;
  readonly aliases?: readonly string[];
  /** Rejects a bad value before the command runs: returns what is wrong with it. */
  readonly check?: (value: string) => string | undefined;
}

export const HELP_FLAGS: readonly string[] = ["-h", "--help"];

/** The parsed command line of one command; reading an option it does not declare is a bug, and throws. */
export class ParsedArgs {
  readonly #options: ReadonlyMap<string, OptionDef>;
  readonly #values: ReadonlyMap<string, string | true>;

  constructor(options: readonly OptionDef[], values: ReadonlyMap<string, string | true>) {
    this.#options = new Map(options.map((o) => [o.name, o]));
    this.#values = values;
  }

  string(name: string): string | undefined {
    this.#declared(name, "string");
    const value = this.#values.get(name);
    return typeof value === "string" ? value : undefined;
  }

  flag(name: string): boolean {
    this.#declared(name, "boolean");
    return this.#values.get(name) === true;
  }

  /** Every value given, by option name (settings are resolved from these). */
  strings(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of this.#values) if (typeof value === "string") out[name] = value;
    return out;
  }

  #declared(name: string, kind: OptionDef["kind"]): void {
    if (this.#options.get(name)?.kind !== kind) throw new Error(`the command has no ${kind} option --${name}`);
  }
}

export function isHelpAsked(tokens: readonly string[]): boolean {
  return tokens.some((t) => HELP_FLAGS.includes(t));
}

/** Finds an option by any of its spellings. */
export function findOption(options: readonly OptionDef[], name: string): OptionDef | undefined {
  return options.find((o) => o.name === name || o.aliases?.includes(name));
}

/** "unknown flag --state-dri for status; did you mean --state-dir?" (`command` omitted before the command). */
export function unknownFlagMessage(flag: string, command: string | undefined, options: readonly OptionDef[]): string {
  const names = options.flatMap((o) => [o.name, ...(o.aliases ?? [])]);
  const guess = nearest(flag.replace(/^-+/, ""), names);
  return `unknown flag ${flag}${command ? ` for ${command}` : ""}${guess ? `; did you mean --${guess}?` : ""}`;
}

/** A token that is the next flag, not a value (a negative number is a value: its check rejects it). */
function looksLikeFlag(token: string): boolean {
  return token.startsWith("-") && token.length > 1 && !/^-\d/.test(token);
}

/**
 * A stray argument as shown in the error: escaped, cut short, and never a provisioning key (pasted
 * without --key, it would otherwise land in the terminal's scrollback and in logs).
 */
export function shown(token: string): string {
  if (/^\s*cnk1\./i.test(token)) return "(a provisioning key? give it with --key-file or CONNECTOR_PROVISIONING_KEY)";
  return JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}…` : token);
}

/** Parses `tokens` (the command name already taken out) against `options`; `command` names it in errors. */
export function parseArgs(command: string, tokens: readonly string[], options: readonly OptionDef[]): ParsedArgs {
  const values = new Map<string, string | true>();
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (!looksLikeFlag(token)) throw new UsageError(`unexpected argument ${shown(token)}: ${command} takes flags only`);
    const eq = token.indexOf("=");
    const written = eq < 0 ? token : token.slice(0, eq);
    const option = written.startsWith("--") ? findOption(options, written.slice(2)) : undefined;
    if (!option) throw new UsageError(unknownFlagMessage(written, command, options));
    if (values.has(option.name)) throw new UsageError(`--${option.name} is given twice`);
    if (option.kind === "boolean") {
      if (eq >= 0) throw new UsageError(`${written} is a switch and takes no value: give ${written} alone`);
      values.set(option.name, true);
      continue;
    }
    let value: string;
    if (eq >= 0) value = token.slice(eq + 1);
    else {
      const next = tokens[i + 1];
      if (next === undefined || looksLikeFlag(next))
        throw new UsageError(`${written} needs a value: ${written} ${option.valueHint ?? "VALUE"}`);
      value = next;
      i++;
    }
    const problem = option.check?.(value);
    if (problem) throw new UsageError(`invalid ${written} ${JSON.stringify(value)}: ${problem}`);
    values.set(option.name, value);
  }
  return new ParsedArgs(options, values);
}
