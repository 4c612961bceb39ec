import { expect, test } from "bun:test";
import { encodeReport, REPORT_BYTES, ReportDecoder } from "./wire.ts";

test("a sink report round-trips through the decoder", () => {
  const decoder = new ReportDecoder();
  expect(decoder.push(encodeReport(123_456_789_012, 1_500_000.4))).toEqual([
    { bytes: 123_456_789_012, micros: 1_500_000 },
  ]);
});

test("reports split across chunks at any byte are reassembled in order", () => {
  const stream = new Uint8Array([...encodeReport(1, 10), ...encodeReport(2, 20), ...encodeReport(3, 30)]);
  for (let cut = 1; cut < stream.length; cut++) {
    const decoder = new ReportDecoder();
    const out = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
    expect(out.map((r) => r.bytes)).toEqual([1, 2, 3]);
  }
});

test("a partial report yields nothing until it is complete", () => {
  const decoder = new ReportDecoder();
  const report = encodeReport(5, 5);
  expect(decoder.push(report.subarray(0, REPORT_BYTES - 1))).toEqual([]);
  expect(decoder.push(report.subarray(REPORT_BYTES - 1))).toEqual([{ bytes: 5, micros: 5 }]);
});
