/** The report: its schema (the JSON contract), the overall result and exit code, the human table. */
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import {
  buildReport,
  fail,
  pass,
  PreflightReportSchema,
  renderReport,
  reportExitCode,
  warn,
} from "../../src/preflight/report.ts";

describe("preflight report", () => {
  test("the result is the worst status; only a fail exits 1", () => {
    expect(buildReport([pass("host.os", "Linux")]).result).toBe("pass");
    const warned = buildReport([pass("host.os", "Linux"), warn("host.cpu", "1 CPU", "add a CPU")]);
    expect([warned.result, reportExitCode(warned)]).toEqual(["warn", 0]);
    const failed = buildReport([
      warn("host.cpu", "1 CPU", "add a CPU"),
      fail("host.arch", "riscv64", "use x86_64"),
      pass("host.os", "Linux"),
    ]);
    expect([failed.result, reportExitCode(failed)]).toEqual(["fail", 1]);
  });

  test("the schema refuses unknown ids, a warn without a fix and a result that is not the worst status", () => {
    const ok = { result: "warn", checks: [{ id: "net.tls", status: "warn", summary: "s", fix: "f", target: "h:1" }] };
    expect(v.safeParse(PreflightReportSchema, ok).success).toBe(true);
    expect(v.safeParse(PreflightReportSchema, { ...ok, checks: [{ ...ok.checks[0], id: "net.ping" }] }).success).toBe(
      false,
    );
    expect(
      v.safeParse(PreflightReportSchema, { ...ok, checks: [{ id: "net.tls", status: "warn", summary: "s" }] }).success,
    ).toBe(false);
    expect(v.safeParse(PreflightReportSchema, { ...ok, result: "pass" }).success).toBe(false);
  });

  test("the table: STATUS  CHECK-ID  summary [target], fix lines under warn and fail, control characters flattened, the count last", () => {
    const text = renderReport(
      buildReport([
        pass("host.os", "Linux 6.1"),
        warn("host.nameservers", "4\nnameservers", "keep 3"),
        fail("net.tcp", "control plane: refused", "open the firewall", "cloud:443"),
      ]),
    );
    expect(text).toBe(
      [
        "PASS  host.os           Linux 6.1",
        "WARN  host.nameservers  4 nameservers",
        "      fix: keep 3",
        "FAIL  net.tcp           control plane: refused [cloud:443]",
        "      fix: open the firewall",
        "1 passed, 1 warnings, 1 failed",
        "",
      ].join("\n"),
    );
  });
});
