import { describe, expect, test } from "bun:test";
import { neutralizeRuntimeEnv } from "../../scripts/neutralize-runtime-env.ts";

const image = (text: string) => Buffer.from(text, "latin1");

describe("neutralizeRuntimeEnv", () => {
  test("overwrites the first byte of each exact occurrence; longer names and built-in JS are left alone", () => {
    const binary = image("\0BUN_X\0tableBUN_XBUN_X_LONG\0process.env.BUN_X;\0OPTS\0");
    neutralizeRuntimeEnv(binary, { BUN_X: 2 });
    expect(binary.toString("latin1")).toBe("\0\0UN_X\0table\0UN_XBUN_X_LONG\0process.env.BUN_X;\0OPTS\0");
  });

  test("a count that differs from the expected one fails and leaves the bytes untouched", () => {
    const text = "\0BUN_X\0\0BUN_Y\0";
    const binary = image(text);
    expect(() => neutralizeRuntimeEnv(binary, { BUN_Y: 1, BUN_X: 2 })).toThrow("BUN_X 1 times (expected 2)");
    expect(binary.toString("latin1")).toBe(text);
    expect(() => neutralizeRuntimeEnv(image("nothing here"), { BUN_Y: 1 })).toThrow("BUN_Y 0 times (expected 1)");
  });
});
