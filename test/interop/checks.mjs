// @ts-check
/**
 * Assertions the scenarios share: the connector broke no rule the gateway checks, its upgrade request
 * is §4's, a protocol close is §5.1's, and what its JSON log says about a tunnel going down.
 */
import assert from "node:assert/strict";

/** The connector sent nothing the gateway reads as a violation of PROTOCOL.md on these tunnels. */
export function assertClean(/** @type {import("./gateway/tunnel.mjs").Tunnel[]} */ ...tunnels) {
  for (const t of tunnels) assert.deepEqual(t.violations, [], `connector violations on tunnel ${t.seq}`);
}

/** The connector's upgrade request matched PROTOCOL §4. @param {import("./gateway/server.mjs").Dial} dial */
export function assertGoodRequest(dial) {
  assert.deepEqual(dial.findings, [], `upgrade request ${dial.seq} departs from PROTOCOL §4`);
}

/**
 * The connector's JSON log lines with `msg`, parsed.
 * @param {import("./harness.mjs").Connector} c @param {string} msg
 * @returns {any[]}
 */
export function logLines(c, msg) {
  return c
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return undefined;
      }
    })
    .filter((l) => l?.msg === msg);
}

/**
 * A close for a frame-level protocol error: 1002 with a `PROTOCOL_…` reason (PROTOCOL §5.1).
 * @param {string | RegExp} [reason] exact when PROTOCOL.md names the code
 */
export function assertProtocolClose(
  /** @type {{ code: number, reason: string, initiator: string }} */ closed,
  reason = /^PROTOCOL_[A-Z_]+$/,
) {
  assert.equal(closed.initiator, "connector", "the connector closed the tunnel");
  assert.equal(closed.code, 1002, `close code (reason "${closed.reason}")`);
  if (typeof reason === "string") assert.equal(closed.reason, reason);
  else assert.match(closed.reason, reason);
}
