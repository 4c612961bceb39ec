import { expect, test } from "bun:test";
import { createConsola } from "consola";
import { AllowList } from "../../src/dataplane/allow-list.ts";
import { createOpenHandler } from "../../src/dataplane/open-handler.ts";
import type { Stream } from "../../src/tunnel/stream.ts";
import { isOneLine } from "../support/printable.ts";

test("a refused OPEN is logged with the gateway's app and host made printable", () => {
  const lines: unknown[] = [];
  const log = createConsola({ level: 999, reporters: [{ log: (e) => void lines.push(e.args) }] });
  const handler = createOpenHandler({ allowList: () => AllowList.empty(), log, counters: { failures: {} } });
  const rejected: string[] = [];
  const stream = { reject: (_code: number, reason: string) => void rejected.push(reason) } as unknown as Stream;
  handler({ app: "wiki\u001b]0;owned\u0007\u009b", host: "evil\u001b[2J\u202e.example", port: 443 }, stream);
  expect(rejected).toHaveLength(1);
  expect(lines).toHaveLength(1);
  const [, fields] = lines[0] as [string, { app: string; host: string }];
  expect(fields.app).toBe("wiki\\x1b]0;owned\\x07\\x9b");
  expect(isOneLine(fields.host)).toBe(true);
  expect(rejected.every(isOneLine)).toBe(true);
});
