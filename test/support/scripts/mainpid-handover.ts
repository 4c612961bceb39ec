/**
 * The hand-over's contract with systemd, without the daemon: run as a Type=notify unit's ExecStart,
 * the first process starts a second one, which says `MAINPID=<its pid>` and `READY=1`, and then the
 * first exits 0. The unit must stay active with the second as its main process.
 *   bun mainpid-handover.ts          the old process
 *   bun mainpid-handover.ts new      the new process (started by the old one)
 */
import { systemdNotifier } from "../../../src/host/sd-notify.ts";

if (process.argv[2] === "new") {
  const failed = systemdNotifier().send({ MAINPID: process.pid, READY: 1, STATUS: `handed over to ${process.pid}` });
  console.log(failed ?? "ready");
  setInterval(() => undefined, 60_000); // serves until systemd stops the unit
} else {
  const next = Bun.spawn([process.execPath, import.meta.path, "new"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = next.stdout.getReader();
  const { value } = await reader.read();
  const answer = new TextDecoder().decode(value).trim();
  console.log(`new process ${next.pid}: ${answer}`);
  next.unref();
  process.exit(answer === "ready" ? 0 : 1);
}
