import { describe, expect, test } from "bun:test";
import { childrenOf, DerError, encodeSequence, encodeTlv, oidOf, parseDer, Tag } from "./der.ts";

describe("DER reader and writer", () => {
  test("long lengths round-trip and children keep their exact bytes", () => {
    const big = encodeTlv(Tag.OCTET_STRING, Buffer.alloc(300, 1));
    expect([...big.subarray(0, 4)]).toEqual([0x04, 0x82, 0x01, 0x2c]);
    const seq = encodeSequence([encodeTlv(Tag.INTEGER, Buffer.from([5])), big]);
    const [int, octets] = childrenOf(parseDer(seq));
    expect(int?.content).toEqual(Buffer.from([5]));
    expect(octets?.bytes.equals(big)).toBe(true);
  });

  test("object identifiers decode to dotted text", () => {
    // 1.2.840.113549.1.1.11 (sha256WithRSAEncryption)
    const oid = Buffer.from("06092a864886f70d01010b", "hex");
    expect(oidOf(parseDer(oid), "oid")).toBe("1.2.840.113549.1.1.11");
  });

  test("BER-only and malformed encodings are refused", () => {
    expect(() => parseDer(Buffer.from("3080", "hex"))).toThrow(DerError); // indefinite length
    expect(() => parseDer(Buffer.from("04817f", "hex"))).toThrow(DerError); // non-minimal length
    expect(() => parseDer(Buffer.from("0405abcd", "hex"))).toThrow(DerError); // longer than the input
    expect(() => parseDer(Buffer.from("040100ff", "hex"))).toThrow(DerError); // trailing bytes
  });
});
