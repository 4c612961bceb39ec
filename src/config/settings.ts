/**
 * Settings resolution: each setting of the table in setting-spec.ts comes from its flag, else its
 * environment variable(s), else `/etc/connector/connector.env`, else its default. Values are validated with valibot; an
 * invalid one is reported with the setting's name and where the value came from, so an operator
 * knows which file or flag to fix.
 */
import * as v from "valibot";
import { SettingsError } from "../errors.ts";
import { readEnvFile } from "./env-file.ts";
import { DEFAULT_ENV_FILE, SETTINGS, SPEC } from "./setting-spec.ts";

export {
  DEFAULT_ENV_FILE,
  DEFAULT_STATE_DIR,
  defaultText,
  ENV_FILE_OPTION,
  SETTINGS,
  type SettingSpec,
} from "./setting-spec.ts";

type Spec = typeof SPEC;
export type SettingName = keyof Spec;

/** Environment variables of settings that may hold a password (the proxy URL): scrubbed from the
 * process environment at start (src/host/process-secrets.ts); settings read them from the copy. */
export const SECRET_SETTING_ENV_VARS: readonly string[] = Object.values(SETTINGS).flatMap((spec) =>
  spec.secret ? [...spec.env] : [],
);
export type Settings = {
  [K in SettingName]: Spec[K]["fallback"] extends string
    ? v.InferOutput<Spec[K]["schema"]>
    : v.InferOutput<Spec[K]["schema"]> | undefined;
} & { logFormat: "pretty" | "json" };

export interface SettingsInput {
  /** Parsed flags by flag name (e.g. `state-dir`); undefined means not given. */
  flags: Record<string, string | undefined>;
  env: Record<string, string | undefined>;
  /** Path of the env file; `CONNECTOR_ENV_FILE` or the default when omitted. */
  envFile?: string;
  isTTY: boolean;
}

export type SettingSource = "flag" | "env" | "env-file" | "default";

function pick(
  spec: Spec[SettingName],
  input: SettingsInput,
  fileValues: Record<string, string>,
  envFile: string,
): { value: string | undefined; source: SettingSource; origin: string } {
  const flagValue = input.flags[spec.flag];
  if (flagValue !== undefined) return { value: flagValue, source: "flag", origin: `flag --${spec.flag}` };
  for (const name of spec.env) {
    const value = input.env[name];
    if (value !== undefined && value !== "") return { value, source: "env", origin: `environment variable ${name}` };
  }
  for (const name of spec.env) {
    const value = fileValues[name];
    if (value !== undefined && value !== "") return { value, source: "env-file", origin: `${name} in ${envFile}` };
  }
  return { value: spec.fallback, source: "default", origin: "default" };
}

export function resolveSettings(input: SettingsInput): {
  settings: Settings;
  sources: Record<SettingName, SettingSource>;
} {
  const envFile = input.envFile ?? input.env.CONNECTOR_ENV_FILE ?? DEFAULT_ENV_FILE;
  const fileValues = readEnvFile(envFile);
  const settings: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  for (const [name, spec] of Object.entries(SPEC) as [SettingName, Spec[SettingName]][]) {
    const { value, source, origin } = pick(spec, input, fileValues, envFile);
    sources[name] = source;
    if (value === undefined) {
      settings[name] = undefined;
      continue;
    }
    const result = v.safeParse(spec.schema, value);
    if (!result.success) {
      const reason = result.issues[0]?.message ?? "invalid value";
      // A proxy URL may carry a password anywhere a parser could misread it (one with a "/" does not
      // look like userinfo at all): such a value is never echoed, only named with its source.
      const shown = "secret" in spec ? "(value not shown: it may hold a password)" : `= ${JSON.stringify(value)}`;
      throw new SettingsError(`Invalid setting --${spec.flag} ${shown} (from ${origin}): ${reason}`);
    }
    settings[name] = result.output;
  }
  settings.logFormat ??= input.isTTY ? "pretty" : "json";
  return { settings: settings as Settings, sources: sources as Record<SettingName, SettingSource> };
}
