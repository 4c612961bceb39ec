import { describe, expect, test } from "bun:test";
import { createConsola } from "consola";
import {
  AccessTokens,
  MIN_DIAL_LIFE_MS,
  MIN_TOKEN_LIFE_MS,
  NoAccessTokenError,
  REJECTED_REFRESH_INTERVAL_MS,
} from "../../src/daemon/access-tokens.ts";
import type { FetchedToken, TokenHolder } from "../../src/daemon/access-tokens.ts";
import { apiRejection, ConnectionRefusedError } from "../../src/control/errors.ts";
import { Secret } from "../../src/secret.ts";
import { FakeClock, flushQueued } from "../support/fake-clock.ts";

const LIFE_MS = 600_000; // a 10-minute token
const EPOCH = Date.UTC(2026, 0, 1); // the fake clock's wall time at 0

/** A control plane whose answers the test scripts: a token for the current certificate, or an error. */
function setup(
  options: {
    random?: () => number;
    failWith?: () => Error | undefined;
    cloudClockOffsetMs?: number;
    lifeMs?: () => number;
  } = {},
) {
  const clock = new FakeClock();
  const lines: { type: string; text: string }[] = [];
  const log = createConsola({
    level: 999,
    reporters: [{ log: (e) => void lines.push({ type: e.type, text: JSON.stringify(e.args) }) }],
  });
  const fetches: number[] = [];
  let certificate = "cert-A";
  let revoked = 0;
  const kept: number[] = [];
  const fetch = async (): Promise<FetchedToken> => {
    fetches.push(clock.now());
    const failure = options.failWith?.();
    if (failure) throw failure;
    const life = options.lifeMs?.() ?? LIFE_MS;
    const expiresAt = new Date(clock.wallNow().getTime() + (options.cloudClockOffsetMs ?? 0) + life).toISOString();
    return { token: `token-${fetches.length}`, expiresAt, expiresIn: life / 1000, certificate };
  };
  const onFetched = (_: FetchedToken, lifeMs: number) => void kept.push(lifeMs);
  const tokens = new AccessTokens({
    clock,
    log,
    fetch,
    onRevoked: () => void revoked++,
    onFetched,
    random: options.random ?? (() => 0.5),
  });
  return {
    clock,
    lines,
    fetches,
    kept,
    tokens,
    revoked: () => revoked,
    useCertificate: (c: string) => void (certificate = c),
  };
}

/** A tunnel that records the TOKEN_UPDATEs it is given. */
function holder(): TokenHolder & { updates: string[]; close(): void } {
  let close!: () => void;
  const updates: string[] = [];
  const session = { isClosed: false, sendTokenUpdate: (t: Secret<string>) => void updates.push(t.reveal()) };
  return {
    session,
    updates,
    closed: new Promise<void>((r) => (close = r)),
    close: () => ((session.isClosed = true), close()),
  };
}

describe("access token schedule", () => {
  test("first token before the first dial; refreshed at 2/3 of its life plus jitter (5% of life × random), handed to open tunnels", async () => {
    const { clock, fetches, tokens } = setup({ random: () => 0.5 });
    tokens.start();
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-1");
    const tunnel = holder();
    tokens.attach(tunnel, "cert-A", new Secret("token-1"));
    const due = LIFE_MS * (2 / 3) + 0.5 * LIFE_MS * 0.05; // 415 s
    expect(tokens.view()).toEqual({
      expiresAt: new Date(EPOCH + LIFE_MS).toISOString(),
      refreshAt: new Date(EPOCH + due).toISOString(),
      lastError: null,
    });
    await clock.advance(due - 1);
    expect(fetches).toEqual([0]);
    await clock.advance(1);
    expect(fetches).toEqual([0, due]);
    expect(tunnel.updates).toEqual(["token-2"]);
    await clock.advance(due);
    expect(fetches).toEqual([0, due, 2 * due]);
    expect(tunnel.updates).toEqual(["token-2", "token-3"]);
    // A closed tunnel gets nothing more; new dials use the newest token without a fetch.
    tunnel.close();
    await flushQueued();
    await clock.advance(due);
    expect(tunnel.updates).toEqual(["token-2", "token-3"]);
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-4");
    expect(fetches.length).toBe(4);
    expect(JSON.stringify(tokens.view())).not.toContain("token-");
    tokens.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  test("a failed refresh is retried with backoff and full jitter (1 s, 2 s, 4 s … × random); the old token serves dials meanwhile", async () => {
    let failing = false;
    const { clock, fetches, tokens, lines } = setup({
      random: () => 0.5,
      failWith: () => (failing ? new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED") : undefined),
    });
    tokens.start();
    await tokens.forDial("cert-A");
    failing = true;
    const due = 415_000;
    await clock.advance(due);
    expect(fetches).toEqual([0, due]);
    expect(tokens.view().lastError).toContain("CONNECTION_REFUSED");
    await clock.advance(500);
    expect(fetches).toEqual([0, due, due + 500]);
    await clock.advance(1_000);
    expect(fetches).toEqual([0, due, due + 500, due + 1_500]);
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-1"); // still valid: no fetch for the dial
    expect(fetches.length).toBe(4);
    expect(lines.filter((l) => l.type === "warn" && l.text.includes("refresh failed")).length).toBe(3);
    failing = false;
    await clock.advance(2_000);
    expect(fetches.length).toBe(5);
    expect(tokens.view().lastError).toBeNull();
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-5");
    tokens.stop();
  });

  test("a token about to expire is not used for a dial: while every refresh fails, the dial fails at once (NO_ACCESS_TOKEN)", async () => {
    let failing = false;
    const { clock, fetches, tokens } = setup({
      random: () => 0,
      failWith: () => (failing ? new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED") : undefined),
    });
    tokens.start();
    await tokens.forDial("cert-A");
    failing = true;
    await clock.advance(LIFE_MS - MIN_DIAL_LIFE_MS); // every retry failed meanwhile
    const before = fetches.length;
    await expect(tokens.forDial("cert-A")).rejects.toBeInstanceOf(NoAccessTokenError);
    expect(fetches.length).toBe(before);
    tokens.stop();
  });

  test("after a failed fetch, dials without a usable token fail at once and the scheduled retry stays the only request", async () => {
    let failing = true;
    const { clock, fetches, tokens } = setup({
      random: () => 0.5,
      failWith: () => (failing ? new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED") : undefined),
    });
    tokens.start();
    await expect(tokens.forDial("cert-A")).rejects.toBeInstanceOf(ConnectionRefusedError); // joins the first fetch
    expect(fetches).toEqual([0]);
    // 16 slots dialling every 10 ms: none of them asks the control plane.
    for (let i = 0; i < 60; i++) {
      const results = await Promise.allSettled(Array.from({ length: 16 }, () => tokens.forDial("cert-A")));
      for (const r of results) {
        expect(r.status).toBe("rejected");
        const err = (r as PromiseRejectedResult).reason;
        expect(err).toBeInstanceOf(NoAccessTokenError);
        expect(err.code).toBe("NO_ACCESS_TOKEN");
      }
      if (i === 0)
        expect((results[0] as PromiseRejectedResult).reason.message).toMatch(
          /CONNECTION_REFUSED.*next request for one is in 1 s/,
        );
      await clock.advance(10);
    }
    expect(fetches).toEqual([0, 500]); // the retry, on the backoff's schedule (1 s × 0.5)
    failing = false;
    await clock.advance(1_000); // the second retry (2 s × 0.5 after the first) succeeds
    expect(fetches).toEqual([0, 500, 1_500]);
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-3");
    tokens.stop();
  });

  test("a token living less than MIN_TOKEN_LIFE_MS is a failed fetch: not used, not kept, retried with backoff", async () => {
    let lifeMs = 0;
    const { clock, fetches, kept, tokens } = setup({ random: () => 0.5, lifeMs: () => lifeMs });
    tokens.start();
    await expect(tokens.forDial("cert-A")).rejects.toThrow(/ACCESS_TOKEN_TOO_SHORT|less than/);
    lifeMs = MIN_TOKEN_LIFE_MS - 1;
    await clock.advance(10_000);
    // Backoff 1 s, 2 s, 4 s, 8 s × 0.5, not a refresh every second.
    expect(fetches).toEqual([0, 500, 1_500, 3_500, 7_500]);
    expect(kept).toEqual([]);
    expect(tokens.view().lastError).toContain("ACCESS_TOKEN_TOO_SHORT");
    await expect(tokens.forDial("cert-A")).rejects.toBeInstanceOf(NoAccessTokenError);
    lifeMs = MIN_TOKEN_LIFE_MS;
    await clock.advance(8_000); // the next retry (16 s × 0.5 after the last) gets a usable one
    expect(fetches.length).toBe(6);
    expect(kept).toEqual([MIN_TOKEN_LIFE_MS]);
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-6");
    tokens.stop();
  });

  test("CONNECTOR_REVOKED goes to the revocation path and stops the schedule; a later dial asks again", async () => {
    let revokedNow = false;
    const { clock, fetches, tokens, revoked } = setup({
      failWith: () => (revokedNow ? apiRejection(403, "CONNECTOR_REVOKED", "revoked") : undefined),
    });
    tokens.start();
    await tokens.forDial("cert-A");
    revokedNow = true;
    await clock.advance(LIFE_MS);
    expect(fetches.length).toBe(2);
    expect(revoked()).toBe(1);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(10 * LIFE_MS);
    expect(fetches.length).toBe(2);
    revokedNow = false; // reinstated: the next dial fetches
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-3");
    tokens.stop();
  });

  test("a gateway's 401 asks for an early refresh (after a random delay) whose token then serves dials and open tunnels", async () => {
    const { clock, fetches, tokens } = setup({ random: () => 0.5 });
    tokens.start();
    const first = await tokens.forDial("cert-A");
    const tunnel = holder();
    tokens.attach(tunnel, "cert-A", first);
    tokens.rejected(new Secret("some older token")); // not the current one: ignored
    await clock.advance(1_000);
    expect(fetches).toEqual([0]);
    tokens.rejected(first);
    expect((await tokens.forDial("cert-A")) === first).toBe(true); // still usable meanwhile
    await clock.advance(499);
    expect(fetches).toEqual([0]);
    await clock.advance(1);
    expect(fetches).toEqual([0, 1_500]); // 0.5 × 1 s of jitter
    expect((await tokens.forDial("cert-A")).reveal()).toBe("token-2");
    expect(tunnel.updates).toEqual(["token-2"]);
    tokens.stop();
  });

  test("a gateway's 401 does not make the token unusable for other dials, even when the refresh it asks for fails", async () => {
    const { clock, fetches, tokens } = setup({
      random: () => 0.5,
      failWith: () => (fetches.length > 1 ? new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED") : undefined),
    });
    tokens.start();
    const first = await tokens.forDial("cert-A");
    tokens.rejected(first); // a hostile gateway; the control plane is now down
    await clock.advance(600);
    expect(fetches.length).toBe(2);
    expect(tokens.view().lastError).toContain("CONNECTION_REFUSED");
    // The honest gateways still get dials with the token, which has most of its life left.
    for (let i = 0; i < 5; i++) expect((await tokens.forDial("cert-A")) === first).toBe(true);
    tokens.stop();
  });

  test("401s trigger at most one refresh per REJECTED_REFRESH_INTERVAL_MS, however many a gateway sends", async () => {
    const { clock, fetches, tokens } = setup({ random: () => 0.5 });
    tokens.start();
    // A gateway answering 401 to every dial of 16 slots, every 50 ms for 12 s.
    for (let t = 0; t < 12_000; t += 50) {
      const token = await tokens.forDial("cert-A");
      for (let i = 0; i < 16; i++) tokens.rejected(token);
      await clock.advance(50);
    }
    // 500 ms of jitter, then REJECTED_REFRESH_INTERVAL_MS + 500 ms between refreshes.
    const gap = REJECTED_REFRESH_INTERVAL_MS + 500;
    expect(fetches).toEqual([0, 500, 500 + gap, 500 + 2 * gap]);
    tokens.stop();
  });

  test("tokens go only to tunnels of the certificate they are bound to; a renewed certificate gets its own for new dials", async () => {
    const { clock, tokens, useCertificate } = setup({ random: () => 0 });
    tokens.start();
    const oldToken = await tokens.forDial("cert-A");
    const oldTunnel = holder();
    tokens.attach(oldTunnel, "cert-A", oldToken);
    useCertificate("cert-B");
    tokens.certificateChanged();
    const newToken = await tokens.forDial("cert-B");
    expect(newToken.reveal()).toBe("token-2");
    const newTunnel = holder();
    tokens.attach(newTunnel, "cert-B", newToken);
    await clock.advance(LIFE_MS * (2 / 3));
    expect(newTunnel.updates).toEqual(["token-3"]);
    expect(oldTunnel.updates).toEqual([]);
    tokens.stop();
  });

  test("a dial that holds the old certificate when a renewal lands mid-fetch fails, instead of taking the new certificate's token", async () => {
    const { tokens, fetches, useCertificate } = setup({ random: () => 0 });
    useCertificate("cert-B"); // renewed after this dial read its credentials (cert-A), before the fetch
    const dial = tokens.forDial("cert-A");
    await expect(dial).rejects.toMatchObject({ code: "CREDENTIALS_CHANGED" });
    expect(fetches.length).toBe(2); // one more try, then no more
    // The token for the new certificate is still good for dials with it.
    expect((await tokens.forDial("cert-B")).reveal()).toBe("token-2");
    expect(fetches.length).toBe(2);
    tokens.stop();
  });

  test("a tunnel whose dial overlapped a refresh gets the newer token as soon as it is attached", async () => {
    const { clock, tokens } = setup({ random: () => 0 });
    tokens.start();
    const used = await tokens.forDial("cert-A");
    await clock.advance(LIFE_MS * (2 / 3)); // token-2 arrives while the dial with token-1 is in flight
    const tunnel = holder();
    tokens.attach(tunnel, "cert-A", used);
    expect(tunnel.updates).toEqual(["token-2"]);
    tokens.stop();
  });

  test("a host clock an hour behind or ahead of the cloud does not shift the schedule: it follows expiresIn", async () => {
    for (const offset of [3_600_000, -3_600_000]) {
      const { clock, fetches, tokens } = setup({ random: () => 0, cloudClockOffsetMs: offset });
      tokens.start();
      expect((await tokens.forDial("cert-A")).reveal()).toBe("token-1"); // usable although expiresAt reads as past
      expect(tokens.view().expiresAt).toBe(new Date(EPOCH + offset + LIFE_MS).toISOString()); // status shows the cloud's time
      await clock.advance(LIFE_MS * (2 / 3) - 1);
      expect(fetches.length).toBe(1);
      await clock.advance(1);
      expect(fetches.length).toBe(2);
      tokens.stop();
    }
  });
});

describe("a token kept from the last run", () => {
  test("a seeded token serves dials while the control plane is down; one about to expire is not used", async () => {
    const { tokens, fetches } = setup({ failWith: () => new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED") });
    tokens.seed({
      value: new Secret("kept"),
      certificate: "cert-A",
      expiresAt: new Date(EPOCH + 60_000).toISOString(),
      lifeLeftMs: 60_000,
    });
    tokens.start();
    expect((await tokens.forDial("cert-A")).reveal()).toBe("kept");
    expect(fetches.length).toBe(1); // it still asked for a fresh one
    tokens.stop();

    const other = setup({ failWith: () => new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED") });
    other.tokens.seed({
      value: new Secret("nearly-gone"),
      certificate: "cert-A",
      expiresAt: new Date(EPOCH + MIN_DIAL_LIFE_MS).toISOString(),
      lifeLeftMs: MIN_DIAL_LIFE_MS,
    });
    other.tokens.start();
    await expect(other.tokens.forDial("cert-A")).rejects.toThrow("ECONNREFUSED");
    other.tokens.stop();
  });

  test("every fresh token is handed to onFetched with its life, so the daemon can keep it", async () => {
    const clock = new FakeClock();
    const kept: { token: string; lifeMs: number }[] = [];
    const tokens = new AccessTokens({
      clock,
      log: createConsola({ level: -999 }),
      fetch: async () => ({
        token: "fresh",
        expiresAt: new Date(EPOCH + LIFE_MS).toISOString(),
        expiresIn: LIFE_MS / 1000,
        certificate: "cert-A",
      }),
      onRevoked: () => undefined,
      onFetched: (fetched, lifeMs) => void kept.push({ token: fetched.token, lifeMs }),
    });
    tokens.start();
    await tokens.forDial("cert-A");
    expect(kept).toEqual([{ token: "fresh", lifeMs: LIFE_MS }]);
    tokens.stop();
  });
});
