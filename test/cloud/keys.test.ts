import { describe, expect, test } from "bun:test";
import { decodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { CloudApiError } from "./errors.ts";
import { KeyStore } from "./keys.ts";

const PIN = Buffer.alloc(32, 7).toString("base64url");
const URL_ = "https://127.0.0.1:4443";

function store(clock = { now: 1_000_000 }) {
  return { clock, keys: new KeyStore({ caPin: PIN, controlUrl: () => URL_, now: () => clock.now }) };
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CloudApiError) return `${err.status} ${err.code}`;
    throw err;
  }
  return "accepted";
}

const secretOf = (key: string) => decodeProvisioningKey(key).secret.reveal();

describe("KeyStore", () => {
  test("a new key is a cnk1 token carrying the control-plane URL, the CA pin and a 32-byte secret", () => {
    const { keys } = store();
    const created = keys.createKey({ group: "site-a" });
    const decoded = decodeProvisioningKey(created.key);
    expect(decoded.controlUrl).toBe(URL_);
    expect(decoded.caPin).toBe(PIN);
    expect(Buffer.from(decoded.secret.reveal(), "base64url")).toHaveLength(32);
    expect(keys.authorize(decoded.secret.reveal())).toEqual({ id: created.id, group: "site-a" });
  });

  test("defaults: group default, 10 uses, one day", () => {
    const { keys, clock } = store();
    const info = keys.get(keys.createKey().id);
    expect(info).toMatchObject({ group: "default", maxUses: 10, uses: 0, revoked: false });
    expect(Date.parse(info!.expiresAt)).toBe(clock.now + 86_400_000);
  });

  test("the store keeps no secret", () => {
    const { keys } = store();
    const secret = secretOf(keys.createKey().key);
    expect(JSON.stringify(keys.list())).not.toContain(secret);
  });

  test("an unknown secret is KEY_UNKNOWN (401)", () => {
    const { keys } = store();
    keys.createKey();
    expect(refusal(() => keys.authorize(Buffer.alloc(32).toString("base64url")))).toBe("401 KEY_UNKNOWN");
  });

  test("a revoked key is KEY_REVOKED (403)", () => {
    const { keys } = store();
    const created = keys.createKey();
    expect(keys.revoke(created.id)).toBe(true);
    expect(refusal(() => keys.authorize(secretOf(created.key)))).toBe("403 KEY_REVOKED");
    expect(keys.revoke("k-none")).toBe(false);
  });

  test("a key works until its expiry and is KEY_EXPIRED (403) from then on", () => {
    const { keys, clock } = store();
    const created = keys.createKey({ expiresAt: new Date(clock.now + 5_000) });
    clock.now += 4_999;
    expect(refusal(() => keys.authorize(secretOf(created.key)))).toBe("accepted");
    clock.now += 1;
    expect(refusal(() => keys.authorize(secretOf(created.key)))).toBe("403 KEY_EXPIRED");
  });

  test("authorizing does not count a use; recorded uses exhaust the key (KEY_EXHAUSTED, 403)", () => {
    const { keys } = store();
    const created = keys.createKey({ maxUses: 2 });
    const secret = secretOf(created.key);
    for (let i = 0; i < 5; i++) keys.authorize(secret);
    expect(keys.get(created.id)?.uses).toBe(0);
    keys.recordUse(created.id);
    keys.recordUse(created.id);
    expect(refusal(() => keys.authorize(secret))).toBe("403 KEY_EXHAUSTED");
  });

  test("invalid options are refused", () => {
    const { keys } = store();
    expect(refusal(() => keys.createKey({ maxUses: 0 }))).toBe("400 BAD_REQUEST");
    expect(refusal(() => keys.createKey({ maxUses: 1.5 }))).toBe("400 BAD_REQUEST");
    expect(refusal(() => keys.createKey({ group: "" }))).toBe("400 BAD_REQUEST");
    expect(refusal(() => keys.createKey({ expiresAt: new Date("nonsense") }))).toBe("400 BAD_REQUEST");
  });
});
