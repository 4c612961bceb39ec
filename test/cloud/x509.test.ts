import { expect, test } from "bun:test";
import { randomSerialHex } from "./x509.ts";

test("a serial number is a positive, minimal DER INTEGER whatever the random bytes (no leading zero byte)", () => {
  // All zeros made `00 00 …`: a non-minimal INTEGER that BoringSSL refuses (INVALID_INTEGER).
  const zeros = randomSerialHex((n) => Buffer.alloc(n));
  expect(zeros.slice(0, 2)).not.toBe("00");
  expect(Number.parseInt(zeros.slice(0, 2), 16)).toBeLessThan(0x80);
  const ones = randomSerialHex((n) => Buffer.alloc(n, 0xff));
  expect(Number.parseInt(ones.slice(0, 2), 16)).toBeLessThan(0x80); // top bit clear: positive
  expect(ones).toHaveLength(32);
});
