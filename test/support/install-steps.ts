/**
 * install.sh's functions run one at a time for tests of the steps that act only on a real host
 * (preflight, enrollment, systemd, uninstall, the lock). The script without its last line is sourced
 * into bash (main never runs), `constants` sets the host paths, and the test points them at a temp dir;
 * `systemctl`, `journalctl`, `chown`, `id`, `getent`, `userdel` and `groupdel` are fakes first on PATH
 * that log (the user "connector" exists only in them), and `as_service` runs its command as is.
 *
 *   const harness = makeStepHarness(tmp);
 *   const s = await harness.step("CHANGED_UNITS=1\nstart_service", (fake) => fakeConnector(fake, 0));
 *   s.code; s.stderr; s.log("systemctl.log");
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { INSTALL_SH } from "./installer.ts";

export interface Step {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The fake directory: logs, state dir (state/), work dir (work/), marker files. */
  readonly fake: string;
  /** Lines of a log file in the fake directory; [] when it was never written. */
  log(name: string): string[];
}

export interface StepHarness {
  /** Runs `body` after the functions and `constants`, with `setup(fake)` run first on a fresh fake dir. */
  step(body: string, setup?: (fake: string) => void): Promise<Step>;
}

/** An executable /bin/sh script. */
export function script(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** For a failing expectation: exit code and both streams. */
export const where = (s: Step) => `exit ${s.code}\n--- stdout\n${s.stdout}\n--- stderr\n${s.stderr}`;
/** systemctl calls that change something (the rest only ask). */
export const MUTATING = /^(daemon-reload|enable|start|restart|stop|disable)\b/;

/** A fake connector at fake/connector: logs its arguments, the proxy it was given and its key file, then exits with `code`. */
export function fakeConnector(fake: string, code: number, extra = ""): void {
  script(
    join(fake, "connector"),
    `echo "args: $*" >> "$FAKE/connector.log"
echo "proxy: $CONNECTOR_PROXY" >> "$FAKE/connector.log"
echo "key env: $CONNECTOR_KEY$CONNECTOR_PROVISIONING_KEY" >> "$FAKE/connector.log"
prev=""
for a in "$@"; do
  if [ "$prev" = "--key-file" ]; then echo "key file: $(stat -c %a "$a") $(cat "$a")" >> "$FAKE/connector.log"; echo "key dir: $(stat -c %a "$(dirname "$a")")" >> "$FAKE/connector.log"; echo "$a" > "$FAKE/key-file-path"; fi
  prev=$a
done
${extra}
exit ${code}`,
  );
}

/** Writes the functions and the fakes under `work` (an existing temp dir the caller removes). */
export function makeStepHarness(work: string): StepHarness {
  const functions = join(work, "functions.sh");
  const bin = join(work, "bin");
  let cases = 0;
  const text = readFileSync(INSTALL_SH, "utf8");
  writeFileSync(functions, text.slice(0, text.trimEnd().lastIndexOf("\n") + 1)); // all but `{ main "$@"; }`
  mkdirSync(bin);
  // systemctl: logs every call; is-enabled / is-active answer from marker files that enable / start create.
  script(
    join(bin, "systemctl"),
    `echo "$*" >> "$FAKE/systemctl.log"
case "$1" in
  is-enabled) [ -e "$FAKE/enabled-$3" ] ;;
  is-active) [ -e "$FAKE/active-$3" ] ;;
  enable) touch "$FAKE/enabled-$2" ;;
  start|restart) touch "$FAKE/active-$2" ;;
  show) cat "$FAKE/main-pid" 2>/dev/null || echo 0 ;;
esac`,
  );
  script(join(bin, "journalctl"), 'echo "journal: last lines"');
  script(join(bin, "chown"), 'echo "$*" >> "$FAKE/chown.log"');
  script(join(bin, "id"), '[ "$1" = -u ] && [ "$2" = connector ] && [ ! -e "$FAKE/user-deleted" ] && echo 999');
  script(join(bin, "getent"), '[ "$1" = group ] && [ "$2" = connector ] && [ ! -e "$FAKE/group-deleted" ]');
  script(join(bin, "userdel"), 'echo "userdel $*" >> "$FAKE/users.log"; touch "$FAKE/user-deleted"');
  script(join(bin, "groupdel"), 'echo "groupdel $*" >> "$FAKE/users.log"; touch "$FAKE/group-deleted"');

  async function step(body: string, setup: (fake: string) => void = () => {}): Promise<Step> {
    const fake = join(work, `case-${++cases}`);
    mkdirSync(join(fake, "state"), { recursive: true });
    mkdirSync(join(fake, "work"));
    mkdirSync(join(fake, "run"));
    setup(fake);
    const prelude = [
      `source "${functions}"`,
      "constants",
      `STATE_DIR="${fake}/state" BINARY="${fake}/connector" SYSTEMD_RUNNING_DIR="${fake}/systemd" WORK="${fake}/work" NEW_BINARY="${fake}/connector" KEY_DIR_BASE="${fake}/run" LOCK_FILE="${fake}/run/install.lock"`,
      'KEY="" PROXY="" NO_PROXY_LIST="" PROXY_PASSWORD="" NAME="" SKIP_PREFLIGHT="" CHANGED_BINARY="" CHANGED_UNITS="" CHANGED_ENV="" CHANGED_IDENTITY=""',
      'as_service() { "$@"; }', // no user "connector" here: the fake binary runs as the test's user
    ].join("\n");
    const proc = Bun.spawn(["bash", "-c", `${prelude}\n${body}`], {
      env: { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, FAKE: fake, LANG: "C" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(timer);
    const log = (name: string) =>
      existsSync(join(fake, name)) ? readFileSync(join(fake, name), "utf8").trim().split("\n") : [];
    return { code, stdout, stderr, fake, log };
  }
  return { step };
}
