/**
 * ControlClient.reportUpgrade against the reference control plane over mutual TLS: the report arrives
 * as sent, a long or multi-line message is made to fit instead of losing the report, an invalid report
 * is refused before anything is sent, and a refusal maps like every other (REQUEST_REJECTED with the
 * status and the API code).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ControlClient } from "../../src/control/client.ts";
import { ApiRejectedError } from "../../src/control/errors.ts";
import { Secret } from "../../src/secret.ts";
import { startCloud, type CloudHandle } from "../cloud/cloud.ts";
import { enrollTestConnector, type TestConnector } from "../cloud/gateway/test-connector.ts";
import { silentLog } from "../cloud/test-client.ts";
import { controlFailure } from "../support/control-failure.ts";

let cloud: CloudHandle;
let connector: TestConnector;
let client: ControlClient;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 1 });
  connector = await enrollTestConnector(cloud, "reporter");
  client = new ControlClient({
    controlUrl: cloud.controlUrl,
    caCertificate: cloud.caCertPem,
    clientCertificate: {
      certificate: connector.clientCert.cert,
      chain: [],
      privateKeyPem: new Secret(connector.clientCert.key),
    },
  });
}, 20_000);
afterAll(async () => {
  await cloud?.stop();
});

const stored = () => cloud.state.upgradeReports.list(connector.id);

const failure = controlFailure;

describe("reportUpgrade", () => {
  test("sends the report; the cloud stores it under this connector", async () => {
    await client.reportUpgrade({ from: "1.4.0", to: "1.5.0", result: "installed", at: "2026-12-02T15:00:00.000Z" });
    expect(stored().at(-1)).toMatchObject({
      connectorId: connector.id,
      from: "1.4.0",
      to: "1.5.0",
      result: "installed",
      at: "2026-12-02T15:00:00.000Z",
    });
  });

  test("makes a long, multi-line message fit rather than lose the report", async () => {
    const message = `line one\nline two\t${"é".repeat(600)}`;
    await client.reportUpgrade({
      from: "1.4.0",
      to: "1.5.0",
      result: "failed",
      code: "SWAP_FAILED",
      message,
      at: new Date().toISOString(),
    });
    const sent = stored().at(-1)!;
    expect(sent.code).toBe("SWAP_FAILED");
    expect(sent.message).toStartWith("line one line two é");
    expect(sent.message!.length).toBe(512);
  });

  test("never splits a character when clipping", async () => {
    await client.reportUpgrade({
      from: "1.4.0",
      result: "refused",
      message: `x${"😀".repeat(300)}`,
      at: new Date().toISOString(),
    });
    const message = stored().at(-1)!.message!;
    expect(message.length).toBe(511); // "x" + 255 two-unit characters: one more would be 513
    expect(message).toBe(`x${"😀".repeat(255)}`);
  });

  test("refuses an invalid report without sending it", async () => {
    const before = stored().length;
    const bad = await failure(
      client.reportUpgrade({ from: "1.4.0 beta", result: "installed", at: new Date().toISOString() }),
    );
    expect(bad.code).toBe("BAD_UPGRADE_REPORT");
    expect(bad.message).toContain("from");
    const badResult = await failure(
      client.reportUpgrade({ from: "1.4.0", result: "exploded" as never, at: new Date().toISOString() }),
    );
    expect(badResult.code).toBe("BAD_UPGRADE_REPORT");
    expect(stored().length).toBe(before);
  });

  test("a refusal by the control plane maps as every request's does", async () => {
    await cloud.state.registry.revoke(connector.id, { notify: false });
    const err = await failure(
      client.reportUpgrade({ from: "1.4.0", result: "installed", at: new Date().toISOString() }),
    );
    expect(err).toBeInstanceOf(ApiRejectedError);
    expect(err).toMatchObject({ code: "REQUEST_REJECTED", status: 403, apiCode: "CONNECTOR_REVOKED" });
  });
});
