/**
 * Reader for `/etc/connector/connector.env` (systemd EnvironmentFile syntax, the subset we write):
 * `KEY=value` lines, `#` comments, optional `export `, optional single or double quotes.
 */
import { existsSync, readFileSync } from "node:fs";
import { SettingsError } from "../errors.ts";

export function parseEnvFile(text: string, path: string): Record<string, string> {
  const values: Record<string, string> = {};
  text.split(/\r?\n/).forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) throw new SettingsError(`${path} line ${index + 1}: expected KEY=value`);
    let value = match[2] ?? "";
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) value = value.slice(1, -1);
    values[match[1] as string] = value;
  });
  return values;
}

export function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new SettingsError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return parseEnvFile(text, path);
}
