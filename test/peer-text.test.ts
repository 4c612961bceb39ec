import { describe, expect, test } from "bun:test";
import { MAX_PEER_TEXT_CHARS, peerText } from "../src/peer-text.ts";
import { isOneLine as isPrintable } from "./support/printable.ts";

describe("peerText", () => {
  test("ordinary text, including non-ASCII letters, is kept as it is", () => {
    expect(peerText("CSR_WEAK_KEY: key of 1024 bits, need ≥ 2048 — café")).toBe(
      "CSR_WEAK_KEY: key of 1024 bits, need ≥ 2048 — café",
    );
  });

  test("ESC, BEL and other C0 controls become visible escapes", () => {
    const out = peerText("\x1b]0;owned\x07\x1b[2Jgone\x00");
    expect(out).toBe("\\x1b]0;owned\\x07\\x1b[2Jgone\\x00");
    expect(isPrintable(out)).toBe(true);
  });

  test("DEL, C1 controls (CSI 0x9b) and bidi overrides are escaped too", () => {
    const out = peerText("a\x7fb\u009b2Jc\u202etxt.exe\u2066d\u2028e");
    expect(out).toBe("a\\x7fb\\x9b2Jc\\u202etxt.exe\\u2066d\\u2028e");
    expect(isPrintable(out)).toBe(true);
  });

  test("tab, CR and LF become spaces, so a reason cannot forge a second log line", () => {
    expect(peerText('bad\r\n{"level":"info"}\tx')).toBe('bad  {"level":"info"} x');
  });

  test("long text is cut to the bound with an ellipsis, never inside an escape or a surrogate pair", () => {
    expect(peerText("x".repeat(1000))).toBe(`${"x".repeat(MAX_PEER_TEXT_CHARS - 1)}…`);
    for (let pad = 0; pad < 6; pad++) {
      const out = peerText(`${"y".repeat(pad)}${"\x1b".repeat(20)}`, 10);
      expect(Array.from(out).length).toBeLessThanOrEqual(10);
      expect(out).toMatch(/^y*(\\x1b)*…$/);
    }
    const emoji = peerText("😀".repeat(50), 5);
    expect(emoji).toBe("😀😀😀😀…");
  });
});
