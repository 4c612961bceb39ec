/**
 * Human output of the benchmark: one Markdown table (aligned, so it reads in a terminal and pastes into
 * BENCHMARKS.md unchanged) of absolute numbers and the connector's ratios, then the skip reasons, grouped.
 * Pure: strings in, strings out.
 */
import { PATHS, type BenchDoc, type PathId, type ScenarioRow } from "./report.ts";

const HEADERS: Record<PathId, string> = { direct: "direct", ssh: "ssh -L", socat: "socat", connector: "connector" };

/** Three significant digits, thousands separated; "—" for a value that was not measured. */
export function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "—";
  const abs = Math.abs(value);
  if (abs >= 100) return Math.round(value).toLocaleString("en-US");
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs === 0) return "0";
  return value.toPrecision(3);
}

/** A ratio as "1.52×" (two significant digits below 0.1, so a tiny ratio never reads "0.00×"), "—" when there is none. */
export function formatRatio(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "—";
  return `${value !== 0 && Math.abs(value) < 0.1 ? value.toPrecision(2) : value.toFixed(2)}×`;
}

/** Unit with the direction that counts as better: ↑ higher is better, ↓ lower is better. */
export function formatUnit(row: Pick<ScenarioRow, "unit" | "higherIsBetter">): string {
  return `${row.unit} ${row.higherIsBetter ? "↑" : "↓"}`;
}

/** A table cell: a `|` inside it (the cost rows name "connector | sshd | socat") would end the cell. */
const cell = (text: string): string => text.replaceAll("|", "\\|");

function alignTable(header: string[], rawBody: string[][], rightAligned: (col: number) => boolean): string[] {
  const body = rawBody.map((r) => r.map(cell));
  const widths = header.map((h, col) => Math.max(h.length, ...body.map((r) => r[col]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, col) => (rightAligned(col) ? c.padStart(widths[col]!) : c.padEnd(widths[col]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, col) => (rightAligned(col) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(header), rule, ...body.map(line)];
}

/** The results table: scenario, unit, one column per path, connector ÷ ssh -L and connector ÷ direct. */
export function formatTable(rows: readonly ScenarioRow[]): string {
  const header = ["scenario", "unit", ...PATHS.map((p) => HEADERS[p]), "conn ÷ ssh -L", "conn ÷ direct"];
  const body = rows.map((row) => [
    row.name,
    formatUnit(row),
    ...PATHS.map((p) => formatNumber(row[p])),
    formatRatio(row.vsSsh),
    formatRatio(row.vsDirect),
  ]);
  return alignTable(header, body, (col) => col >= 2).join("\n");
}

/** Skip reasons grouped by path and reason, with how many rows each covers: nothing skipped goes unsaid. */
export function formatSkips(rows: readonly ScenarioRow[]): string {
  const groups = new Map<string, { path: PathId; reason: string; rows: string[] }>();
  for (const row of rows) {
    for (const [path, reason] of Object.entries(row.skipped ?? {}) as [PathId, string][]) {
      const key = `${path}\u0000${reason}`;
      const group = groups.get(key) ?? { path, reason, rows: [] };
      group.rows.push(row.name);
      groups.set(key, group);
    }
  }
  const lines = [...groups.values()].map((g) => {
    const which =
      g.rows.length === rows.length ? "all rows" : g.rows.length <= 3 ? g.rows.join("; ") : `${g.rows.length} rows`;
    return `- ${HEADERS[g.path]} skipped (${which}): ${g.reason}`;
  });
  return lines.length === 0 ? "" : ["Skipped:", ...lines].join("\n");
}

/** The whole human report: machine line, versions line, table, skip reasons. */
export function formatReport(doc: BenchDoc): string {
  const machine = Object.entries(doc.machine)
    .map(([k, val]) => `${k}: ${val}`)
    .join(", ");
  const versions = Object.entries(doc.versions)
    .map(([k, val]) => `${k} ${val ?? "absent"}`)
    .join(", ");
  const skips = formatSkips(doc.scenarios);
  return [
    `Machine: ${machine}`,
    `Versions: ${versions}`,
    "",
    formatTable(doc.scenarios),
    ...(skips ? ["", skips] : []),
  ].join("\n");
}
