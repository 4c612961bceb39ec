/**
 * A JSON state file the connector wrote itself (0600, owned by it) read back: safely (see
 * `readStateFile`), bounded, parsed and validated. Anything wrong is an answer with the reason, never
 * a throw: such files (the last catalog, the last access token) are fallbacks, and a missing or broken
 * one only means there is no fallback.
 */
import { basename } from "node:path";
import * as v from "valibot";
import { errnoCode } from "../errors.ts";
import { readStateFile, UnsafeStateFileError } from "./state-dir-safety.ts";

export type JsonStateLoad<T> =
  | { readonly found: true; readonly value: T }
  | { readonly found: false; readonly why: string };

export function readJsonState<S extends v.GenericSchema>(
  path: string,
  schema: S,
  maxBytes: number,
): JsonStateLoad<v.InferOutput<S>> {
  const name = basename(path);
  let text: string;
  try {
    text = readStateFile(path, maxBytes, { owner: "self", privateMode: true });
  } catch (err) {
    if (err instanceof UnsafeStateFileError) return { found: false, why: err.message };
    const code = errnoCode(err);
    return { found: false, why: code === "ENOENT" ? `no ${name} yet` : `${name} cannot be read (${code ?? "error"})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { found: false, why: `${name} is not JSON` };
  }
  const parsed = v.safeParse(schema, value);
  return parsed.success
    ? { found: true, value: parsed.output }
    : { found: false, why: `${name} does not match its schema` };
}
