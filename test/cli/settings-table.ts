/**
 * The settings table of docs/OPERATIONS.md, generated from the settings spec and the commands' flags:
 * `bun test/cli/settings-table.ts` prints it (markdown), so the docs copy it rather than retype it.
 */
import { COMMANDS } from "../../src/cli/commands.ts";
import { defaultText, ENV_FILE_OPTION, SETTINGS } from "../../src/config/settings.ts";

/** `|` would end a cell. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

export async function settingsTable(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map(async (c) => ({ name: c.name, command: await c.load() })));
  const takenBy = (flag: string) =>
    commands.filter(({ command }) => command.options.some((o) => o.name === flag)).map((c) => c.name);
  const rows = [...Object.values(SETTINGS), ENV_FILE_OPTION].map((spec) => {
    const aliases = "aliases" in spec && spec.aliases ? spec.aliases.map((a) => `, \`--${a}\``).join("") : "";
    const commandsText = takenBy(spec.flag);
    return [
      cell(`\`--${spec.flag} ${spec.valueHint}\`${aliases}`),
      spec.env.map((e) => `\`${e}\``).join(", "),
      cell(defaultText(spec)),
      commandsText.length === COMMANDS.length ? "all" : commandsText.join(", "),
      cell(spec.description),
    ];
  });
  return [
    "| flag | environment (first set wins) | default | commands | meaning |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

if (import.meta.main) console.log(await settingsTable());
