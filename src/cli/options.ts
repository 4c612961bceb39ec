/**
 * The flags that give settings, generated from the settings table (src/config/settings.ts): name,
 * aliases, env vars, default and help text come from there, so `--help` always says what is read.
 * Flags of one command that are not settings (--json, --key, …) are declared by that command.
 */
import { defaultText, ENV_FILE_OPTION, SETTINGS, type SettingName, type SettingSpec } from "../config/settings.ts";
import type { OptionDef } from "./parse.ts";

function fromSpec(
  spec: Pick<SettingSpec, "flag" | "env" | "fallback" | "description" | "valueHint"> & Partial<SettingSpec>,
): OptionDef {
  return {
    name: spec.flag,
    kind: "string",
    description: spec.description,
    valueHint: spec.valueHint,
    env: spec.env,
    defaultText: defaultText(spec),
    ...(spec.aliases ? { aliases: spec.aliases } : {}),
  };
}

export function settingOptions(...names: SettingName[]): OptionDef[] {
  return names.map((name) => fromSpec(SETTINGS[name]));
}

/** Every command takes these; they may also come before the command (`connector --state-dir /x status`). */
export const GLOBAL_OPTIONS: readonly OptionDef[] = [
  ...settingOptions("stateDir", "logLevel", "logFormat"),
  fromSpec(ENV_FILE_OPTION),
];

/** Every command that talks to the cloud. */
export const PROXY_OPTIONS: readonly OptionDef[] = settingOptions("proxy", "noProxy");

/** Flags that may come before the command: every setting's (the command then says whether it takes it). */
export const PRE_COMMAND_OPTIONS: readonly OptionDef[] = [
  ...settingOptions(...(Object.keys(SETTINGS) as SettingName[])),
  fromSpec(ENV_FILE_OPTION),
];

/** Where `enroll` and `preflight` take a provisioning key from on the command line. */
export const KEY_OPTIONS: readonly OptionDef[] = [
  {
    name: "key",
    kind: "string",
    description: "Provisioning key cnk1.… (other users can see argv: prefer --key-file or CONNECTOR_PROVISIONING_KEY)",
    valueHint: "KEY",
  },
  { name: "key-file", kind: "string", description: "Read the provisioning key from this file", valueHint: "PATH" },
];
