/** The generated settings table: one row per setting, with every env name and the default help shows. */
import { expect, test } from "bun:test";
import { defaultText, SETTINGS } from "../../src/config/settings.ts";
import { settingsTable } from "./settings-table.ts";

test("one row per setting and the env file, each with its env names, default and commands", async () => {
  const lines = (await settingsTable()).split("\n");
  expect(lines).toHaveLength(2 + Object.keys(SETTINGS).length + 1);
  for (const spec of Object.values(SETTINGS)) {
    const row = lines.find((l) => l.startsWith(`| \`--${spec.flag} `));
    expect(row, spec.flag).toBeDefined();
    for (const env of spec.env) expect(row).toContain(`\`${env}\``);
    expect(row).toContain(`| ${defaultText(spec)} |`);
    expect(row).toMatch(/\| (all|[a-z, ]*run[a-z, ]*) \|/);
  }
  expect(lines.find((l) => l.startsWith("| `--state-dir DIR`"))).toContain("| all |");
  expect(lines.find((l) => l.startsWith("| `--proxy-bypass LIST`, `--no-proxy`"))).toBeDefined();
});

test("docs/OPERATIONS.md holds the settings table as generated", async () => {
  const doc = await Bun.file(new URL("../../docs/OPERATIONS.md", import.meta.url)).text();
  const m = /<!-- settings-table:begin -->\n([\s\S]*?)\n<!-- settings-table:end -->/.exec(doc);
  expect(m?.[1]).toBe(await settingsTable());
});
