/** `--help` text: plain, wrapped to 100 columns, flags with their env vars and defaults. */
import type { OptionDef } from "./parse.ts";

const WIDTH = 100;
const FLAG_COLUMN = 30;

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function flagText(option: OptionDef): string {
  return option.kind === "string" ? `--${option.name} ${option.valueHint ?? "VALUE"}` : `--${option.name}`;
}

/** Lines for a list of options: the flag, its description, then its env vars and default, indented. */
export function optionLines(options: readonly OptionDef[], extra: readonly [string, string][] = []): string[] {
  const rows: [string, string[]][] = [
    ...options.map((o): [string, string[]] => {
      const details = [
        o.env?.length ? `env ${o.env.join(", ")}` : "",
        o.defaultText !== undefined ? `default ${o.defaultText}` : "",
      ].filter(Boolean);
      return [flagText(o), details.length ? [o.description, details.join("; ")] : [o.description]];
    }),
    ...extra.map(([flag, text]): [string, string[]] => [flag, [text]]),
  ];
  const out: string[] = [];
  const indent = " ".repeat(FLAG_COLUMN);
  for (const [flag, texts] of rows) {
    const lines = texts.flatMap((text) => wrap(text, WIDTH - FLAG_COLUMN));
    const head = `  ${flag}`;
    if (head.length + 2 <= FLAG_COLUMN) out.push(head.padEnd(FLAG_COLUMN) + (lines.shift() ?? ""));
    else out.push(head);
    for (const line of lines) out.push(indent + line);
  }
  return out;
}

export const HELP_ROW: [string, string] = ["-h, --help", "Show this help"];

export function paragraph(text: string): string[] {
  return wrap(text, WIDTH);
}
