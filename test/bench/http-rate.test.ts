/** The ApacheBench scenario's pieces: ab's summary parser, and the target app's HTTP mode under curl-like and ab clients. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseAb } from "./http-rate.ts";
import { detectTools } from "./tools.ts";
import { HTTP_BODY_BYTES } from "./wire.ts";

const SUMMARY = `Benchmarking 127.0.0.1 (be patient).....done

Document Length:        612 bytes

Concurrency Level:      8
Time taken for tests:   5.002 seconds
Complete requests:      14020
Failed requests:        3
   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)
Non-2xx responses:      5
Requests per second:    2802.88 [#/sec] (mean)
`;

describe("parseAb", () => {
  test("reads the time, the completed, failed and non-2xx counts", () => {
    expect(parseAb(SUMMARY)).toEqual({ seconds: 5.002, completed: 14020, failed: 3, non2xx: 5 });
  });

  test("absent failure lines count as none", () => {
    const clean = SUMMARY.replace(/^Failed.*\n.*\n/m, "").replace(/^Non-2xx.*\n/m, "");
    expect(parseAb(clean)).toEqual({ seconds: 5.002, completed: 14020, failed: 0, non2xx: 0 });
  });

  test("output without a summary is an error that quotes ab", () => {
    expect(() => parseAb("Benchmarking 127.0.0.1\napr_socket_connect(): Connection refused (111)\n")).toThrow(
      "ab printed no summary: Benchmarking 127.0.0.1 / apr_socket_connect(): Connection refused (111)",
    );
  });
});

describe("the target app's HTTP mode", () => {
  let target: Bun.Subprocess<"ignore", "pipe", "inherit">;
  let port: number;

  beforeAll(async () => {
    target = Bun.spawn([process.execPath, join(import.meta.dir, "target.ts")], { stdout: "pipe", stderr: "inherit" });
    const reader = target.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the target exited before listening: ${text}`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    port = (JSON.parse(text) as { port: number }).port;
  });

  afterAll(() => {
    target?.kill("SIGTERM");
  });

  test("answers a GET with the page and closes first", async () => {
    const chunks: Buffer[] = [];
    let ended!: () => void;
    const closedByServer = new Promise<void>((resolve) => (ended = resolve));
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data: (_s, d) => void chunks.push(Buffer.from(d)), end: () => ended() },
    });
    socket.write("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    await closedByServer; // the server's FIN, before the client closed anything
    const reply = Buffer.concat(chunks).toString();
    socket.end();
    expect(reply.startsWith("HTTP/1.0 200 OK\r\n")).toBe(true);
    expect(reply).toContain(`Content-Length: ${HTTP_BODY_BYTES}\r\n`);
    expect(reply.length - reply.indexOf("\r\n\r\n") - 4).toBe(HTTP_BODY_BYTES);
  });

  const ab = detectTools().ab;
  test.skipIf(!ab)("ApacheBench completes every request against it", () => {
    const r = Bun.spawnSync([ab!, "-q", "-r", "-s", "10", "-c", "4", "-n", "200", `http://127.0.0.1:${port}/`], {
      timeout: 60_000,
    });
    expect(r.exitCode).toBe(0);
    expect(parseAb(r.stdout.toString())).toMatchObject({ completed: 200, failed: 0, non2xx: 0 });
  });
});
