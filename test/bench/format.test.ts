import { describe, expect, test } from "bun:test";
import { formatNumber, formatRatio, formatReport, formatSkips, formatTable, formatUnit } from "./format.ts";
import { buildRow } from "./report.ts";

describe("formatNumber", () => {
  test("shows about three significant digits, thousands separated", () => {
    expect(formatNumber(21.634)).toBe("21.6");
    expect(formatNumber(3.9)).toBe("3.90");
    expect(formatNumber(120732.4)).toBe("120,732");
    expect(formatNumber(0.01234)).toBe("0.0123");
    expect(formatNumber(0)).toBe("0");
  });

  test("shows a dash for a value that was not measured", () => {
    expect(formatNumber(null)).toBe("—");
    expect(formatNumber(Number.NaN)).toBe("—");
  });
});

test("formatRatio shows two decimals and a times sign, two significant digits when tiny, or a dash", () => {
  expect(formatRatio(1.5)).toBe("1.50×");
  expect(formatRatio(0.00213)).toBe("0.0021×");
  expect(formatRatio(null)).toBe("—");
});

test("formatUnit marks which direction is better", () => {
  expect(formatUnit({ unit: "Gbit/s", higherIsBetter: true })).toBe("Gbit/s ↑");
  expect(formatUnit({ unit: "µs", higherIsBetter: false })).toBe("µs ↓");
});

const rows = [
  buildRow(
    { name: "bulk", unit: "Gbit/s", higherIsBetter: true },
    { direct: { value: 21.6 }, ssh: { value: 3.9 }, socat: { value: 6 }, connector: { value: 5.85 } },
  ),
  buildRow(
    { name: "idle RSS", unit: "MiB", higherIsBetter: false },
    {
      direct: { skipped: "no relay" },
      ssh: { value: 8 },
      socat: { value: 1.4 },
      connector: { skipped: "no gateways" },
    },
  ),
];

describe("formatTable", () => {
  test("is a Markdown table with one column per path and the two connector ratios", () => {
    const lines = formatTable(rows).split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^\| scenario +\| unit +\| +direct \| +ssh -L \| +socat \| +connector \| conn ÷ ssh -L \| conn ÷ direct \|$/,
    );
    expect(lines[1]).toMatch(/^\|-+\|-+\|-+:\|/);
    expect(lines[2]).toMatch(/\| +1\.50× \| +0\.27× \|$/);
    expect(lines[3]).toMatch(/\| +— \| +8\.00 \| +1\.40 \| +— \| +— \| +— \|$/);
  });

  test("escapes a | inside a cell, so every line has the same eight cells", () => {
    const piped = buildRow(
      { name: "CPU — relay (connector | sshd | socat)", unit: "s", higherIsBetter: false },
      { direct: { skipped: "none" }, ssh: { value: 2 }, socat: { value: 3 }, connector: { value: 1 } },
    );
    const lines = formatTable([...rows, piped]).split("\n");
    expect(lines[4]).toContain("relay (connector \\| sshd \\| socat)");
    for (const line of lines) expect(line.split(/(?<!\\)\|/).length).toBe(10);
  });

  test("aligns every line to the same width", () => {
    const widths = new Set(
      formatTable(rows)
        .split("\n")
        .map((l) => l.length),
    );
    expect(widths.size).toBe(1);
  });
});

describe("formatSkips", () => {
  test("groups reasons per path and names the rows they cover", () => {
    expect(formatSkips(rows)).toBe(
      ["Skipped:", "- direct skipped (idle RSS): no relay", "- connector skipped (idle RSS): no gateways"].join("\n"),
    );
  });

  test("says 'all rows' when a reason covers the whole column, and nothing when nothing was skipped", () => {
    const all = rows.map((r) => ({ ...r, skipped: { connector: "cloud missing" } }));
    expect(formatSkips(all)).toContain("- connector skipped (all rows): cloud missing");
    expect(formatSkips([rows[0]!])).toBe("");
  });
});

test("formatReport puts machine and versions above the table and the skips below it", () => {
  const text = formatReport({ machine: { cores: 2 }, versions: { bun: "1.4.5", iperf3: null }, scenarios: rows });
  const lines = text.split("\n");
  expect(lines[0]).toBe("Machine: cores: 2");
  expect(lines[1]).toBe("Versions: bun 1.4.5, iperf3 absent");
  expect(text.indexOf("| scenario")).toBeLessThan(text.indexOf("Skipped:"));
});
