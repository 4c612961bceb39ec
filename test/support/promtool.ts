/**
 * `promtool check metrics` (Prometheus's own linter, from the Debian package `prometheus`) over a scrape.
 * .ci/run installs it, so in CI (CI set) a missing promtool fails the test; a developer's machine
 * without it skips the check with the reason.
 */
export const promtool = Bun.which("promtool");

/** Why the promtool checks cannot run here, or "" when they can. Throws in CI: there they must run. */
export function promtoolSkipReason(): string {
  if (promtool) return "";
  if (process.env.CI) throw new Error("promtool is missing in CI (.ci/run installs the Debian package prometheus)");
  return "promtool is not installed (apt-get install prometheus)";
}

/** promtool's verdict on `text`: exit code 0 and no output when every family passes its lint. */
export async function promtoolCheck(text: string): Promise<{ exitCode: number; output: string }> {
  const proc = Bun.spawn([promtool!, "check", "metrics"], { stdin: new Blob([text]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, output: `${stdout}${stderr}` };
}
