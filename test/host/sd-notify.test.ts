import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemdNotifier } from "../../src/host/sd-notify.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

test("without NOTIFY_SOCKET the notifier is disabled and sends nothing", () => {
  const notifier = systemdNotifier({});
  expect(notifier.enabled).toBe(false);
  expect(notifier.send({ READY: 1 })).toBeUndefined();
});

test("a relative NOTIFY_SOCKET is not a socket systemd would name: disabled", () => {
  expect(systemdNotifier({ NOTIFY_SOCKET: "notify.sock" }).enabled).toBe(false);
});

test("sends KEY=value lines as one datagram to the socket systemd names", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-notify-"));
  dirs.push(dir);
  const path = join(dir, "notify.sock");
  // Python binds a datagram Unix socket portably; Bun's node:dgram has no Unix sockets.
  const listener = Bun.spawn(
    [
      "python3",
      "-c",
      `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
s.settimeout(30)
sys.stdout.write(s.recv(4096).decode()); sys.stdout.flush()
`,
      path,
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  const reader = listener.stdout.getReader();
  // "bound\n" may arrive in more than one chunk: wait for the whole line before sending.
  let text = "";
  while (!text.includes("bound\n")) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`the listener exited before binding: ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(chunk.value);
  }
  const notifier = systemdNotifier({ NOTIFY_SOCKET: path });
  expect(notifier.enabled).toBe(true);
  expect(notifier.send({ MAINPID: 4242, READY: 1, STATUS: "two\nlines" })).toBeUndefined();
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += new TextDecoder().decode(chunk.value);
  }
  expect(text).toBe("bound\nMAINPID=4242\nREADY=1\nSTATUS=two lines\n");
});

test("a socket nobody listens on is reported, not thrown", () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-notify-"));
  dirs.push(dir);
  const reason = systemdNotifier({ NOTIFY_SOCKET: join(dir, "absent.sock") }).send({ READY: 1 });
  expect(reason).toMatch(/errno \d+/);
});
