/**
 * The help is generated from the settings table: every setting shows up in the help of each command
 * that takes it, with all its env names and its default, so the two cannot drift; the status exit
 * codes come from the table scripts branch on.
 */
import { describe, expect, test } from "bun:test";
import { defaultText, ENV_FILE_OPTION, SETTINGS, type SettingName } from "../../src/config/settings.ts";
import { STATUS_EXIT } from "../../src/status/schema.ts";
import { citesNothingOutside, runCli } from "./harness.ts";

const GLOBAL: SettingName[] = ["stateDir", "logLevel", "logFormat"];
const PROXY: SettingName[] = ["proxy", "noProxy"];
/** The settings each command takes as flags (the rest it reads from the environment only, if at all). */
const TAKES: Record<string, SettingName[]> = {
  preflight: [...GLOBAL, ...PROXY, "name"],
  enroll: [...GLOBAL, ...PROXY, "name"],
  run: Object.keys(SETTINGS) as SettingName[],
  status: GLOBAL,
  upgrade: [...GLOBAL, ...PROXY, "manifestUrl", "channel"],
};

/** The lines of one flag's entry in a help text, joined (its description wraps). */
function entryOf(help: string, flag: string): string | undefined {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`  --${flag} `) || l === `  --${flag}`);
  if (start < 0) return undefined;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => !/^ {4,}\S/.test(l));
  return [lines[start], ...rest.slice(0, end < 0 ? rest.length : end)].map((l) => l!.trim()).join(" ");
}

async function helpOf(command: string): Promise<string> {
  const result = await runCli([command, "--help"]);
  expect(result.code).toBe(0);
  return result.stdout;
}

describe("help from the settings table", () => {
  test("every setting is a flag of some command", () => {
    const taken = new Set(Object.values(TAKES).flat());
    expect((Object.keys(SETTINGS) as SettingName[]).filter((s) => !taken.has(s))).toEqual([]);
  });

  for (const [command, settings] of Object.entries(TAKES)) {
    test(`${command} --help: each of its settings with its value, env names and default`, async () => {
      const help = await helpOf(command);
      for (const name of settings) {
        const spec = SETTINGS[name];
        const entry = entryOf(help, spec.flag);
        expect(entry, `${command}: --${spec.flag}`).toBeDefined();
        expect(entry).toStartWith(`--${spec.flag} ${spec.valueHint} `);
        expect(entry).toContain(spec.description);
        expect(entry).toContain(`env ${spec.env.join(", ")}`);
        expect(entry).toContain(`default ${defaultText(spec)}`);
      }
      const envFile = entryOf(help, ENV_FILE_OPTION.flag);
      expect(envFile).toContain(`env CONNECTOR_ENV_FILE; default ${ENV_FILE_OPTION.fallback}`);
      // No other setting is offered: a flag shown is a flag taken.
      for (const name of Object.keys(SETTINGS) as SettingName[])
        if (!settings.includes(name)) expect(entryOf(help, SETTINGS[name].flag), `${command}: ${name}`).toBeUndefined();
    });
  }

  test("--no-proxy is accepted as --proxy-bypass and said so", async () => {
    expect(entryOf(await helpOf("enroll"), "proxy-bypass")).toContain("also --no-proxy");
  });

  test("status --help lists every status exit code", async () => {
    const help = (await helpOf("status")).replace(/\s+/g, " ");
    for (const [state, code] of Object.entries(STATUS_EXIT))
      expect(help).toContain(`${code} ${state.replaceAll("-", " ")}`);
  });

  test("the root help lists the commands and the global flags", async () => {
    const result = await runCli(["--help"]);
    expect(result.code).toBe(0);
    for (const command of Object.keys(TAKES)) expect(result.stdout).toMatch(new RegExp(`^  ${command} +\\S`, "m"));
    for (const name of GLOBAL)
      expect(entryOf(result.stdout, SETTINGS[name].flag)).toContain(`env ${SETTINGS[name].env[0]}`);
    expect(result.stdout).toContain("unknown flag");
  });

  test("no help cites a section or a document outside the repository; lines fit 100 columns", async () => {
    for (const argv of [["--help"], ...Object.keys(TAKES).map((c) => [c, "--help"])]) {
      const { stdout } = await runCli(argv);
      expect(citesNothingOutside(stdout), argv.join(" ")).toBe(true);
      expect(stdout.split("\n").filter((l) => l.length > 100)).toEqual([]);
    }
  });
});
