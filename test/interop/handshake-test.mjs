// @ts-check
/**
 * PROTOCOL §1, §3.5 and §4 between the compiled connector and the interop gateway: the upgrade request
 * the connector sends, mutual TLS, the token, and what it does when a gateway answers badly (it retries
 * with backoff and stays alive), or presents a certificate the cloud CA did not issue.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { assertClean, assertGoodRequest, logLines } from "./checks.mjs";
import { T } from "./gateway/codec.mjs";
import { tokenClaims, tokenProblem } from "./gateway/token.mjs";
import { ENROLL_DEADLINE_MS } from "./gateway/wait.mjs";
import { BINARY, startInterop } from "./harness.mjs";

/** @type {import("./harness.mjs").Interop} */
let h;
before(async () => {
  h = await startInterop();
});
after(() => h?.stop());

describe("the upgrade request", { concurrency: true }, () => {
  test("is PROTOCOL §4's: path, headers, version, subprotocol, token, client certificate", () =>
    h.scenario("hs-request", "hs-request", async () => {
      const c = h.startConnector("hs-request");
      const tunnel = await h.gateway.tunnel(c.name);
      const dial = tunnel.dial;
      assertGoodRequest(dial);
      assert.equal(dial.method, "GET");
      assert.equal(dial.url, "/v1/tunnel");
      assert.equal(dial.headers["sec-websocket-protocol"], "connector.v1", "offers connector.v1 (no v2 exists yet)");
      const version = execFileSync(BINARY, ["--version"], { encoding: "utf8" }).split(" ")[1];
      assert.equal(dial.headers["x-connector-version"], version);
      // §1: mutual TLS with the certificate the cloud issued at enrollment (Node checked the chain).
      assert.equal(dial.authorized, true);
      /** @type {any[]} */
      const connectors = await h.admin("/admin/connectors");
      const record = connectors.find((x) => x.name === c.name);
      assert.equal(dial.connectorId, record.id);
      assert.equal(dial.group, record.group);
      assert.equal(tokenProblem(dial.token, dial.peer, h.gateway.config?.tokenKeys ?? assert.fail()), undefined);
      assert.equal(tunnel.ws.protocol, "connector.v1");
      // §5.6, §5.9: right after the upgrade the connector pings and reports health.
      await tunnel.waitFrame((f) => f.type === T.PING, "the connector's first PING");
      const report = await tunnel.waitFrame((f) => f.type === T.HEALTH_REPORT, "HEALTH_REPORT at start");
      assert.deepEqual(report.json.apps.map((/** @type {any} */ a) => a.name).sort(), Object.keys(h.apps.ports).sort());
      assertClean(tunnel);
    }));
});

/** Bad answers to the upgrade, two per connector (its first two dials); the third dial is accepted. */
const BAD_ANSWERS = /** @type {[string, import("./gateway/server.mjs").Answer][][]} */ ([
  [
    ["500", { status: 500 }],
    ["403", { status: 403, body: "no" }],
  ],
  [
    ["503", { status: 503 }],
    ["200 instead of 101", { status: 200 }],
  ],
  [
    ["426 with only connector.v9", { status: 426, headers: { "sec-websocket-protocol": "connector.v9" } }],
    ["401 invalid_token", { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } }],
  ],
  [
    ["101 with a wrong Sec-WebSocket-Accept", { bad101: { accept: "d3Jvbmcgd3Jvbmcgd3Jvbmc=" } }],
    ["101 without Sec-WebSocket-Protocol", { bad101: { protocol: null } }],
  ],
  [
    ["101 naming a protocol not offered", { bad101: { protocol: "connector.v2" } }],
    ["not HTTP at all", { raw: "SSH-2.0-OpenSSH_9.6\r\n\r\n" }],
  ],
  [
    ["101 with an extension nobody offered", { bad101: { headers: ["Sec-WebSocket-Extensions: permessage-deflate"] } }],
    ["the connection closed without an answer", "drop"],
  ],
  [
    [
      "an HTTP/1.0 101",
      { raw: "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" },
    ],
    ["a 101 whose head never ends", { raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" }],
  ],
]);

describe("bad answers to the upgrade: the connector retries with backoff and stays up", { concurrency: true }, () => {
  BAD_ANSWERS.forEach((pair, i) => {
    const name = `hs-bad-${i + 1}`;
    test(`${pair.map(([label]) => label).join(", then ")} (${name})`, () =>
      h.scenario(name, name, async () => {
        h.gateway.answerNext(
          name,
          pair.map(([, answer]) => answer),
        );
        const c = h.startConnector(name);
        const tunnel = await h.gateway.tunnel(name);
        const dials = h.gateway.dials.filter((d) => d.name === name);
        assert.deepEqual(
          dials.map((d) => d.answer === "accept"),
          [false, false, true],
          "two refused dials, then the accepted one",
        );
        dials.forEach(assertGoodRequest);
        // §5.7: reconnect backoff 1 s → 60 s with full jitter: each failure announces a wait within the
        // doubling ceiling, and the next dial does not come before it.
        const downs = logLines(c, "tunnel down");
        assert.equal(downs.length, 2, "one 'tunnel down' per refused dial");
        downs.forEach((line, n) => {
          assert.ok(line.retryInMs >= 0 && line.retryInMs <= 1000 * 2 ** n, `retry ${n + 1} within its ceiling`);
          const next = /** @type {import("./gateway/server.mjs").Dial} */ (dials[n + 1]);
          assert.ok(next.at >= Date.parse(line.time) + line.retryInMs - 5, `dial ${n + 2} waited the backoff`);
        });
        assert.ok(c.running, "the connector is still running");
        await tunnel.ping();
        assertClean(tunnel);
      }));
  });

  test("401 at the upgrade: the connector fetches a new token early and comes back with it", () =>
    h.scenario("hs-401-refresh", "hs-401-refresh", async () => {
      const name = "hs-401-refresh";
      /** @type {string | undefined} */
      let first;
      // Every dial with the first token is refused 401, as a gateway that no longer accepts it would.
      h.gateway.policies.set(name, (dial) => {
        first ??= dial.token;
        return dial.token === first
          ? { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } }
          : undefined;
      });
      const c = h.startConnector(name);
      const tunnel = await h.gateway.tunnel(name);
      assert.notEqual(tunnel.dial.token, first, "a new token");
      assert.ok(tokenClaims(tunnel.dial.token ?? "").iat >= tokenClaims(first ?? "").iat);
      assert.ok(c.running);
      assertClean(tunnel);
    }));
});

describe("trust (PROTOCOL §1): the gateway's certificate must come from the cloud CA", () => {
  test("a gateway with a self-signed certificate is refused; the connector keeps retrying", () =>
    h.scenario("hs-foreign-cert", "hs-foreign-cert", async () => {
      const foreign = selfSigned();
      const genuine = h.gateway.secureContext ?? assert.fail("gateway not configured");
      h.gateway.server.setSecureContext({ ...genuine, cert: foreign.cert, key: foreign.key });
      const c = h.startConnector("hs-foreign-cert");
      // The connector's TLS handshake fails before any HTTP: it never reaches the upgrade.
      await c.waitFor("two failed dials", () => logLines(c, "tunnel down").length >= 2, ENROLL_DEADLINE_MS);
      assert.equal(h.gateway.dials.filter((d) => d.name === c.name).length, 0, "no upgrade request reached us");
      for (const line of logLines(c, "tunnel down")) assert.match(line.error, /certificate|TLS|tls|verify|trust/i);
      h.gateway.server.setSecureContext(genuine);
      const tunnel = await h.gateway.tunnel(c.name);
      assertGoodRequest(tunnel.dial);
      assertClean(tunnel);
    }));
});

/** A certificate for 127.0.0.1 that no cloud CA signed (node-forge: not our code, and plain JS). */
function selfSigned() {
  const forge = createRequire(import.meta.url)("node-forge");
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = (/** @type {import("node:crypto").KeyObject} */ k, /** @type {"spki" | "pkcs1"} */ type) =>
    k.export({ type, format: "pem" }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pem(publicKey, "spki"));
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3_600_000);
  const subject = [{ name: "commonName", value: "localhost" }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }]);
  cert.sign(forge.pki.privateKeyFromPem(pem(privateKey, "pkcs1")), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: pem(privateKey, "pkcs1") };
}
