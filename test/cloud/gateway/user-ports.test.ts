/**
 * The cloud's book of user ports over scripted gateway reports: one gateway chooses a new app's port,
 * the others are then told that port, a chooser that dies is replaced, a removed app is forgotten.
 */
import { expect, test } from "bun:test";
import type { ListenState, ParentMessage } from "./messages.ts";
import { silentLog } from "../test-client.ts";
import { UserPorts } from "./user-ports.ts";

function setup(ids: string[]) {
  const alive = new Map(ids.map((id) => [id, true]));
  const sent: string[] = [];
  const ports = new UserPorts({
    gateways: () => ids.map((id) => ({ id, alive: alive.get(id) ?? false })),
    send: (id: string, m: ParentMessage) =>
      sent.push(m.type === "hold" ? `${id} hold ${m.app}:${m.port}` : `${id} ${m.type} ${"app" in m ? m.app : ""}`),
    log: silentLog,
  });
  const report = (id: string, app: string, s: Partial<ListenState>) =>
    ports.reported(id, { type: "listenState", app, routable: false, listening: false, port: null, ...s });
  return { ports, sent, alive, report };
}

test("a new app's port is chosen by one gateway; the others learn it once it is reported", async () => {
  const { ports, sent, report } = setup(["gw-1", "gw-2"]);
  ports.setApps(["wiki"]);
  expect(sent).toEqual(["gw-1 hold wiki:0"]);
  report("gw-2", "wiki", { routable: true }); // routable, but the port is not known yet: it waits
  expect(sent).toEqual(["gw-1 hold wiki:0"]);
  const address = ports.waitAddress("wiki", 1_000);
  report("gw-1", "wiki", { listening: true, port: 41000 });
  expect(await address).toBe("127.0.0.1:41000");
  expect(sent).toEqual(["gw-1 hold wiki:0", "gw-2 hold wiki:41000"]);
  report("gw-2", "wiki", { routable: true, listening: true, port: 41000 });
  expect(sent.at(-1)).toBe("gw-1 release wiki");
  expect(ports.known()).toEqual({ wiki: 41000 });
});

test("a chooser that dies before reporting is replaced by another gateway", () => {
  const { ports, sent, alive } = setup(["gw-1", "gw-2"]);
  ports.setApps(["wiki"]);
  alive.set("gw-1", false);
  ports.gatewayGone("gw-1");
  expect(sent).toEqual(["gw-1 hold wiki:0", "gw-2 hold wiki:0"]);
});

test("when the gateway holding a port dies, a live one is told to hold that same port", () => {
  const { ports, sent, alive, report } = setup(["gw-1", "gw-2"]);
  ports.setApps(["wiki"]);
  report("gw-1", "wiki", { listening: true, port: 41000 });
  alive.set("gw-1", false);
  ports.gatewayGone("gw-1");
  expect(sent.at(-1)).toBe("gw-2 hold wiki:41000");
});

test("a removed app is forgotten: no address, waiters get null, its reports are ignored", async () => {
  const { ports, sent, report } = setup(["gw-1"]);
  ports.setApps(["wiki"]);
  const waiting = ports.waitAddress("wiki", 1_000);
  ports.setApps([]);
  expect(await waiting).toBeNull();
  report("gw-1", "wiki", { listening: true, port: 41000 });
  expect(ports.address("wiki")).toBeNull();
  expect(sent).toEqual(["gw-1 hold wiki:0"]);
});

test("after freeze (the cloud stopping) no instruction is sent", () => {
  const { ports, sent, alive } = setup(["gw-1", "gw-2"]);
  ports.freeze();
  ports.setApps(["wiki"]);
  alive.set("gw-1", false);
  ports.gatewayGone("gw-1");
  expect(sent).toEqual([]);
});
