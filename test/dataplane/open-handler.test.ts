/**
 * The open handler's answers that do not need an app: names that point only at this host, how many
 * log lines a flood of refused OPENs may cost, and that what a gateway chose reaches the log printable.
 */
import { expect, test } from "bun:test";
import { createConsola } from "consola";
import { AllowList } from "../../src/dataplane/allow-list.ts";
import { createOpenHandler, type DataplaneCounters } from "../../src/dataplane/open-handler.ts";
import { StreamCode } from "../../src/mux/const.ts";
import { OpenRejectedError } from "../../src/mux/errors.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session } from "../../src/mux/session.ts";
import type { Resolver } from "../../src/dataplane/resolve.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { isOneLine } from "../support/printable.ts";
import type { Stream } from "../../src/mux/stream.ts";

function pair(resolve?: Resolver) {
  const allowList = AllowList.compile({
    version: "1",
    apps: [
      {
        name: "wiki",
        destinations: [
          { host: "*.corp.example", ports: "443" },
          { host: "10.9.9.9", ports: "443" },
        ],
        servers: [],
      },
    ],
  });
  const counters: DataplaneCounters = { failures: {} };
  const failed: string[] = [];
  const warnings: unknown[][] = [];
  const log = createConsola({
    level: 999,
    reporters: [{ log: (entry) => void (entry.type === "warn" && warnings.push(entry.args)) }],
  });
  const [a, b] = createMemoryTransportPair();
  const connector = new Session({
    role: "connector",
    transport: a,
    onOpen: createOpenHandler({
      allowList: () => allowList,
      log,
      counters,
      clock: new FakeClock(),
      onFailure: (code, app) => void failed.push(`${code} ${app}`),
      ...(resolve ? { resolve } : {}),
    }),
  });
  const gateway = new Session({ role: "gateway", transport: b });
  return { gateway, counters, failed, warnings, close: () => (gateway.close(), connector.close()) };
}

test("a name that resolves only to loopback is answered NOT_ALLOWED with the reason, not DNS_FAILURE", async () => {
  const { gateway, counters, close } = pair(async () => [{ address: "127.0.0.1", family: 4 }]);
  try {
    const err = await gateway.open({ app: "wiki", host: "loop.corp.example", port: 443 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenRejectedError);
    expect((err as OpenRejectedError).result).toBe(StreamCode.NOT_ALLOWED);
    expect((err as OpenRejectedError).message).toContain("resolves only to addresses of this host");
    expect(counters.failures.NOT_ALLOWED).toBe(1);
    expect(counters.failures.DNS_FAILURE).toBeUndefined();
  } finally {
    close();
  }
});

test("5,000 not-allowed OPENs to distinct hosts are all counted but write a handful of warnings", async () => {
  const { gateway, counters, warnings, close } = pair();
  try {
    const opens = Array.from({ length: 5_000 }, (_, i) =>
      gateway.open({ app: "wiki", host: `10.${i >> 8}.${i & 255}.1`, port: 443 }).catch(() => "refused"),
    );
    expect(await Promise.all(opens)).toEqual(Array(5_000).fill("refused"));
    expect(counters.failures.NOT_ALLOWED).toBe(5_000);
    expect(warnings.length).toBeLessThanOrEqual(20);
    expect(warnings.length).toBeGreaterThanOrEqual(1);
  } finally {
    close();
  }
});

test("5,000 OPENs for distinct made-up apps share one log key: one warning, not the whole line budget", async () => {
  const { gateway, counters, failed, warnings, close } = pair();
  try {
    const opens = Array.from({ length: 5_000 }, (_, i) =>
      gateway.open({ app: `app-${i}`, host: "10.9.9.9", port: 443 }).catch(() => "refused"),
    );
    expect(await Promise.all(opens)).toEqual(Array(5_000).fill("refused"));
    expect(counters.failures.NOT_ALLOWED).toBe(5_000);
    expect(warnings.length).toBe(1);
    // Every one is told as counted (the daemon's open-failed event), none logged for it.
    expect(failed).toHaveLength(5_000);
    expect(failed[4_999]).toBe("NOT_ALLOWED app-4999");
  } finally {
    close();
  }
});

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
