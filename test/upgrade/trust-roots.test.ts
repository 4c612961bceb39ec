import { describe, expect, test } from "bun:test";
import {
  parseReleaseBaseUrl,
  parseTrustRoots,
  releaseBaseUrl,
  rootIds,
  trustedRoots,
} from "../../src/upgrade/trust-roots.ts";

const SPKI = "MCowBQYDK2VwAyEAxy831Xj9S2N9/gVuJ89DgccF/s7zPpzygfWOkCOU5Ck=";

describe("trust-roots", () => {
  test("running from source embeds no roots and no base URL, whatever the environment says", () => {
    expect(trustedRoots).toEqual([]);
    expect(rootIds()).toEqual([]);
    expect(releaseBaseUrl).toBeUndefined();
  });

  test("a well-formed define is taken as is and cannot be changed afterwards", () => {
    const roots = parseTrustRoots([SPKI, SPKI.replace("x", "y")]);
    expect(roots).toEqual([SPKI, SPKI.replace("x", "y")]);
    expect(() => (roots as string[]).push(SPKI)).toThrow();
  });

  test.each([
    ["a string", SPKI],
    ["an array with a number", [SPKI, 1]],
    ["not base64", [SPKI, "not base64!"]],
    ["undefined", undefined],
    ["an object", { 0: SPKI }],
  ])("a malformed define (%s) embeds no roots rather than a guess", (_what, value) => {
    expect(parseTrustRoots(value)).toEqual([]);
  });

  test("the base URL must be an http(s) URL string", () => {
    expect(parseReleaseBaseUrl("https://releases.example.com/c")).toBe("https://releases.example.com/c");
    expect(parseReleaseBaseUrl("http://127.0.0.1:9")).toBe("http://127.0.0.1:9");
    for (const bad of ["ftp://x", "https://", "https://a b", 42, undefined, ["https://x"]])
      expect(parseReleaseBaseUrl(bad)).toBeUndefined();
  });
});
