/**
 * The `ssh -L` baseline: an sshd of our own on 127.0.0.1 (throw-away host and user keys, own config,
 * non-privileged port, everything in a scratch directory) and an `ssh -N -L` client forwarding each
 * target. The ssh client is the measured process: it is what sits on the user's side, like a gateway.
 */
import { existsSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { DEADLINES } from "../config.ts";
import { BenchError } from "../procs.ts";
import type { Rig } from "../rig.ts";
import type { ReadyPath, Targets } from "./path.ts";

/** The login name for ssh: `id -un` (Bun's os.userInfo() may say "unknown" when $USER is unset). */
function currentUser(): string {
  const r = Bun.spawnSync(["id", "-un"], { stdout: "pipe", stderr: "ignore", timeout: 5_000 });
  const name = r.exitCode === 0 ? r.stdout.toString().trim() : "";
  return name || userInfo().username;
}

function keygen(rig: Rig, path: string): void {
  const r = Bun.spawnSync(
    [rig.tools.sshKeygen!, "-q", "-t", "ed25519", "-N", "", "-C", "connector-bench", "-f", path],
    {
      stdout: "ignore",
      stderr: "pipe",
      timeout: 10_000,
    },
  );
  if (r.exitCode !== 0) throw new BenchError(`ssh-keygen: ${r.stderr.toString().trim()}`);
}

export function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "host_ed25519")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "StrictModes no",
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "PermitRootLogin prohibit-password",
    "AllowTcpForwarding yes",
    "X11Forwarding no",
    "PrintMotd no",
    "LogLevel INFO",
    "",
  ].join("\n");
}

export async function sshPath(rig: Rig, targets: Targets): Promise<ReadyPath> {
  const dir = join(rig.dir, "ssh");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  keygen(rig, join(dir, "host_ed25519"));
  keygen(rig, join(dir, "user_ed25519"));
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "user_ed25519.pub")), { mode: 0o600 });
  // sshd refuses to start without its privilege-separation directory; the Debian package creates it at boot
  if (process.getuid?.() === 0 && !existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });

  const sshdPort = rig.pickPort();
  writeFileSync(join(dir, "sshd_config"), sshdConfig(dir, sshdPort));
  const sshd = rig.spawn("sshd", [rig.tools.sshd!, "-D", "-e", "-f", join(dir, "sshd_config")]);
  await rig.waitForLog(sshd, /Server listening on 127\.0\.0\.1 port/, DEADLINES.listenMs);

  const appPort = rig.pickPort();
  const iperfPort = targets.iperfPort === undefined ? undefined : rig.pickPort();
  const forwards = [`-L`, `127.0.0.1:${appPort}:127.0.0.1:${targets.appPort}`];
  if (iperfPort !== undefined) forwards.push("-L", `127.0.0.1:${iperfPort}:127.0.0.1:${targets.iperfPort}`);
  const ssh = rig.spawn("ssh", [
    rig.tools.ssh!,
    "-N",
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ExitOnForwardFailure=yes",
    "-o",
    "LogLevel=ERROR",
    "-i",
    join(dir, "user_ed25519"),
    "-p",
    String(sshdPort),
    ...forwards,
    `${currentUser()}@127.0.0.1`,
  ]);
  try {
    await rig.probe(appPort, DEADLINES.listenMs);
  } catch (err) {
    if (ssh.proc.exitCode !== null) throw new BenchError(`ssh exited (${ssh.proc.exitCode}): ${rig.procs.tail(ssh)}`);
    throw err;
  }
  return {
    id: "ssh",
    appPort,
    iperfPort,
    measured: { pid: ssh.pid, tree: false },
    // sshd forks for the client's one connection (that child, and its privilege-separated child, relay
    // every channel): the tree from the listener, whose children live as long as the ssh client
    cost: { relay: { pids: [sshd.pid], tree: true }, rest: { pids: [ssh.pid], tree: false } },
  };
}
