/**
 * The logger's line formats: JSON with its priority, the sd-daemon `<N>` prefix when stderr is the
 * journal (and only then), and fields bound once known on every later line, children's included.
 */
import { describe, expect, test } from "bun:test";
import { appendFileSync, closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bindLogFields, createLogger, type LogFormat, logToJournal, stderrIsJournal } from "../src/log.ts";

function capture(format: LogFormat, journal?: boolean) {
  const lines: string[] = [];
  const log = createLogger({
    level: "trace",
    format,
    write: (line) => void lines.push(line),
    ...(journal === undefined ? {} : { journal }),
  });
  return { log, lines };
}

function logEveryLevel(log: ReturnType<typeof createLogger>): void {
  log.error("e", { a: 1 });
  log.warn("w", { a: 2 });
  log.info("i", { a: 3 });
  log.debug("d", { a: 4 });
  log.trace("t", { a: 5 });
}

describe("priorities", () => {
  test("JSON lines carry the syslog priority of their level; no prefix outside the journal", () => {
    const { log, lines } = capture("json");
    logEveryLevel(log);
    expect(lines.every((l) => l.startsWith("{") && l.endsWith("}\n"))).toBe(true);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => [r.level, r.priority, r.msg, r.a])).toEqual([
      ["error", 3, "e", 1],
      ["warn", 4, "w", 2],
      ["info", 6, "i", 3],
      ["debug", 7, "d", 4],
      ["trace", 7, "t", 5],
    ]);
  });

  test("to the journal each JSON line starts with its <N> prefix, the JSON after it unchanged", () => {
    const { log, lines } = capture("json", true);
    logEveryLevel(log);
    expect(lines.map((l) => l.slice(0, 3))).toEqual(["<3>", "<4>", "<6>", "<7>", "<7>"]);
    const record = JSON.parse(lines[1]!.slice(3)) as Record<string, unknown>;
    expect(record).toMatchObject({ level: "warn", priority: 4, msg: "w", a: 2 });
  });

  test("pretty to the journal: one key=value line per entry after the prefix, newlines escaped", () => {
    const { log, lines } = capture("pretty", true);
    log.withTag("tunnel").warn("tunnel down", {
      tunnel: 0,
      gateway: "wss://gw.example/v1/tunnel",
      error: "refused by the gateway",
      retryInMs: 1234,
    });
    log.info("two\nlines", new Error("boom"));
    log.debug("plain");
    expect(lines).toEqual([
      '<4>[tunnel] tunnel down tunnel=0 gateway=wss://gw.example/v1/tunnel error="refused by the gateway" retryInMs=1234\n',
      "<6>two\\nlines error=boom\n",
      "<7>plain\n",
    ]);
  });
});

describe("whether stderr is the journal", () => {
  const dir = mkdtempSync(join(tmpdir(), "log-journal-"));
  const path = join(dir, "stream");
  const fd = openSync(path, "w");
  const stat = () => fstatSync(fd, { bigint: true });
  const { dev, ino } = stat();

  test("JOURNAL_STREAM naming the fd's own device and inode: yes", () => {
    expect(stderrIsJournal({ JOURNAL_STREAM: `${dev}:${ino}` }, stat)).toBe(true);
  });

  test("unset, malformed, or another stream's (stderr redirected by a child of the service): no", () => {
    expect(stderrIsJournal({}, stat)).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: "" }, stat)).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: `${dev}` }, stat)).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: `${dev}:${ino + 1n}` }, stat)).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: `${dev + 1n}:${ino}` }, stat)).toBe(false);
    expect(
      stderrIsJournal({ JOURNAL_STREAM: `${dev}:${ino}` }, () => {
        throw new Error("EBADF");
      }),
    ).toBe(false);
  });

  test("a logger given its own writer prefixes only once told its lines go to the journal, children too", () => {
    for (const format of ["json", "pretty"] as const) {
      const { log, lines } = capture(format);
      const child = log.withTag("tunnel");
      log.warn("w");
      logToJournal(child, true);
      log.warn("w");
      child.error("e");
      // pretty outside the journal is consola's terminal output (process.stderr), not the writer's
      const before = format === "json" ? ['{"t'] : [];
      expect(lines.map((l) => l.slice(0, 3))).toEqual([...before, "<4>", "<3>"]);
    }
  });

  test("the file itself as the journal: what a reader of the stream gets", () => {
    const log = createLogger({
      level: "info",
      format: "json",
      journal: stderrIsJournal({ JOURNAL_STREAM: `${dev}:${ino}` }, stat),
      write: (line) => appendFileSync(path, line),
    });
    log.warn("to the journal");
    expect(readFileSync(path, "utf8")).toStartWith('<4>{"time":');
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("bound fields", () => {
  test("lines before binding lack the field; every later line has it, children's too, at the end", () => {
    const { log, lines } = capture("json");
    const child = log.withTag("tunnel");
    log.info("before");
    bindLogFields(log, { connectorId: "conn-1" });
    log.info("after", { a: 1 });
    child.warn("child", { b: 2 });
    log.withTag("later").info("made after binding");
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records[0]).not.toHaveProperty("connectorId");
    expect(records.slice(1).map((r) => r.connectorId)).toEqual(["conn-1", "conn-1", "conn-1"]);
    expect(Object.keys(records[2]!).at(-1)).toBe("connectorId");
    expect(records[2]).toMatchObject({ component: "tunnel", b: 2 });
  });

  test("a line's own field of the same name wins", () => {
    const { log, lines } = capture("json");
    bindLogFields(log, { connectorId: "conn-1" });
    log.info("starting", { connectorId: "conn-2" });
    expect((JSON.parse(lines[0]!) as Record<string, unknown>).connectorId).toBe("conn-2");
  });

  test("the journal text format carries them too", () => {
    const { log, lines } = capture("pretty", true);
    bindLogFields(log.withTag("x"), { connectorId: "conn-1" });
    log.info("status", { up: 2 });
    expect(lines).toEqual(["<6>status up=2 connectorId=conn-1\n"]);
  });
});
