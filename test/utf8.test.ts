import { expect, test } from "bun:test";
import { truncateUtf8 } from "../src/utf8.ts";

test("truncateUtf8 keeps short text whole and never cuts a character in two", () => {
  expect(new TextDecoder().decode(truncateUtf8("hello", 10))).toBe("hello");
  const euros = "€€€"; // 3 bytes each
  expect(truncateUtf8(euros, 7).length).toBe(6);
  expect(new TextDecoder("utf-8", { fatal: true }).decode(truncateUtf8(euros, 7))).toBe("€€");
  expect(truncateUtf8(euros, 2).length).toBe(0);
});
