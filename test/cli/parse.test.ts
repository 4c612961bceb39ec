/** The parser and the typo suggestions on their own. */
import { describe, expect, test } from "bun:test";
import { type OptionDef, parseArgs } from "../../src/cli/parse.ts";
import { editDistance, nearest } from "../../src/cli/suggest.ts";
import { wrap } from "../../src/cli/help.ts";
import { UsageError } from "../../src/errors.ts";

const OPTIONS: OptionDef[] = [
  { name: "state-dir", kind: "string", description: "d", valueHint: "DIR" },
  { name: "proxy-bypass", kind: "string", description: "b", aliases: ["no-proxy"] },
  { name: "json", kind: "boolean", description: "j" },
  { name: "level", kind: "string", description: "l", check: (v) => (v === "bad" ? "not that one" : undefined) },
];

describe("parseArgs", () => {
  test("values by either spelling; switches; aliases under the option's name", () => {
    const args = parseArgs("cmd", ["--state-dir", "/a", "--json", "--no-proxy=10.0.0.0/8", "--level=-5"], OPTIONS);
    expect(args.string("state-dir")).toBe("/a");
    expect(args.flag("json")).toBe(true);
    expect(args.string("proxy-bypass")).toBe("10.0.0.0/8");
    expect(args.strings()).toEqual({ "state-dir": "/a", "proxy-bypass": "10.0.0.0/8", level: "-5" });
    expect(parseArgs("cmd", ["--state-dir="], OPTIONS).string("state-dir")).toBe("");
    expect(parseArgs("cmd", [], OPTIONS).flag("json")).toBe(false);
  });

  test("reading an option the command does not declare is a bug, not undefined", () => {
    const args = parseArgs("cmd", [], OPTIONS);
    expect(() => args.string("stat-dir")).toThrow("no string option --stat-dir");
    expect(() => args.flag("state-dir")).toThrow("no boolean option --state-dir");
  });

  test("every malformed command line is a UsageError naming what is wrong", () => {
    const cases: [string[], string][] = [
      [["--stat-dir", "/a"], "unknown flag --stat-dir for cmd; did you mean --state-dir?"],
      [["--no-proxi", "x"], "did you mean --no-proxy?"],
      [["--xyzzy"], "unknown flag --xyzzy for cmd"],
      [["word"], 'unexpected argument "word": cmd takes flags only'],
      [["-"], 'unexpected argument "-"'],
      [["--state-dir"], "--state-dir needs a value: --state-dir DIR"],
      [["--no-proxy"], "--no-proxy needs a value: --no-proxy VALUE"],
      [["--json=yes"], "--json is a switch and takes no value"],
      [["--json", "--json"], "--json is given twice"],
      [["--no-proxy", "a", "--proxy-bypass", "b"], "--proxy-bypass is given twice"],
      [["--level", "bad"], 'invalid --level "bad": not that one'],
    ];
    for (const [argv, message] of cases) {
      expect(() => parseArgs("cmd", argv, OPTIONS), argv.join(" ")).toThrow(UsageError);
      expect(() => parseArgs("cmd", argv, OPTIONS), argv.join(" ")).toThrow(message);
    }
  });

  test("a stray argument is shown escaped and cut short", () => {
    expect(() => parseArgs("cmd", ["\u001b[2J"], OPTIONS)).toThrow('unexpected argument "\\u001b[2J"');
    expect(() => parseArgs("cmd", ["a".repeat(100)], OPTIONS)).toThrow(`"${"a".repeat(40)}…"`);
  });
});

describe("suggestions", () => {
  test("edit distance counts a swap as one edit", () => {
    expect(editDistance("status", "status")).toBe(0);
    expect(editDistance("stauts", "status")).toBe(1);
    expect(editDistance("state-dri", "state-dir")).toBe(1);
    expect(editDistance("", "run")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  test("the nearest name when it is close or begins the same; nothing otherwise", () => {
    const names = ["state-dir", "log-level", "log-format", "env-file"];
    expect(nearest("state", names)).toBe("state-dir");
    expect(nearest("log-levl", names)).toBe("log-level");
    expect(nearest("LOG-FORMAT", names)).toBe("log-format");
    expect(nearest("bogus", names)).toBeUndefined();
    expect(nearest("x", [])).toBeUndefined();
  });
});

test("wrap: words in lines of at most the width; a longer word alone", () => {
  expect(wrap("aa bb cc dd", 5)).toEqual(["aa bb", "cc dd"]);
  expect(wrap("  a   verylongword b ", 4)).toEqual(["a", "verylongword", "b"]);
  expect(wrap("", 10)).toEqual([]);
});
