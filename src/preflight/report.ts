/**
 * What `connector preflight` reports: one result per check, in a fixed order, under stable ids (the
 * troubleshooting table of docs/OPERATIONS.md is keyed by them). The JSON form is a contract for
 * install.sh and configuration tools, so its schema is exported and the output is validated
 * against it before it is printed.
 */
import * as v from "valibot";

export const HOST_CHECK_IDS = [
  "host.os",
  "host.distro",
  "host.arch",
  "host.cpu",
  "host.memory",
  "host.disk",
  "host.aes",
  "host.systemd",
  "host.hostname",
  "host.nofile",
  "host.nameservers",
  "host.state-dir",
  "host.clock-sync",
] as const;
export const NET_CHECK_IDS = ["net.target", "net.proxy", "net.dns", "net.tcp", "net.tls", "net.clock"] as const;
export const CHECK_IDS = [...HOST_CHECK_IDS, ...NET_CHECK_IDS] as const;

export const CheckIdSchema = v.picklist(CHECK_IDS);
export const CheckStatusSchema = v.picklist(["pass", "warn", "fail"]);

export const CheckResultSchema = v.object({
  id: CheckIdSchema,
  status: CheckStatusSchema,
  summary: v.pipe(v.string(), v.minLength(1)),
  /** One line naming the exact setting, file or command; present for warn and fail. */
  fix: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** `host:port` of the endpoint, for the per-endpoint network checks. */
  target: v.optional(v.pipe(v.string(), v.minLength(1))),
});

export const PreflightReportSchema = v.pipe(
  v.object({
    result: CheckStatusSchema,
    checks: v.array(CheckResultSchema),
  }),
  v.check((r) => r.checks.every((c) => c.status === "pass" || c.fix !== undefined), "every warn or fail carries a fix"),
  v.check((r) => r.result === overallStatus(r.checks), "result is the worst status of the checks"),
);

export type CheckId = v.InferOutput<typeof CheckIdSchema>;
export type CheckStatus = v.InferOutput<typeof CheckStatusSchema>;
export type CheckResult = v.InferOutput<typeof CheckResultSchema>;
export type PreflightReport = v.InferOutput<typeof PreflightReportSchema>;

export const pass = (id: CheckId, summary: string, target?: string): CheckResult => ({
  id,
  status: "pass",
  summary,
  ...(target ? { target } : {}),
});
export const warn = (id: CheckId, summary: string, fix: string, target?: string): CheckResult => ({
  id,
  status: "warn",
  summary,
  fix,
  ...(target ? { target } : {}),
});
export const fail = (id: CheckId, summary: string, fix: string, target?: string): CheckResult => ({
  id,
  status: "fail",
  summary,
  fix,
  ...(target ? { target } : {}),
});

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The worst status of `checks` ("pass" for none). */
export function overallStatus(checks: readonly Pick<CheckResult, "status">[]): CheckStatus {
  return checks.reduce<CheckStatus>((worst, c) => (RANK[c.status] > RANK[worst] ? c.status : worst), "pass");
}

/** The report of `checks`, validated against the schema (a check that breaks the contract is a bug, thrown here). */
export function buildReport(checks: readonly CheckResult[]): PreflightReport {
  return v.parse(PreflightReportSchema, { result: overallStatus(checks), checks: [...checks] });
}

/** Exit status: 1 when any check failed, 0 otherwise (warnings do not fail a preflight). */
export function reportExitCode(report: PreflightReport): 0 | 1 {
  return report.result === "fail" ? 1 : 0;
}

/** Control characters and line breaks from peers or files never reach the terminal as such. */
const oneLine = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");

/**
 * The human table: `STATUS  CHECK-ID  summary` per check (the target after the id for endpoint
 * checks), a `fix:` line under each warn and fail, and a count line at the end.
 */
export function renderReport(report: PreflightReport): string {
  const width = Math.max(...report.checks.map((c) => c.id.length));
  const lines: string[] = [];
  for (const check of report.checks) {
    const where = check.target ? ` [${oneLine(check.target)}]` : "";
    lines.push(`${check.status.toUpperCase().padEnd(4)}  ${check.id.padEnd(width)}  ${oneLine(check.summary)}${where}`);
    if (check.fix !== undefined && check.status !== "pass") lines.push(`      fix: ${oneLine(check.fix)}`);
  }
  const count = (status: CheckStatus) => report.checks.filter((c) => c.status === status).length;
  lines.push(`${count("pass")} passed, ${count("warn")} warnings, ${count("fail")} failed`);
  return `${lines.join("\n")}\n`;
}
