/**
 * Who listens on an app's user port: the cases by name, then a property over random histories of
 * gateways gaining and losing tunnels, dying and restarting (the gateways are simulated as they
 * behave: a routable gateway binds a known port itself, `hold` binds, `release` unbinds unless
 * routable).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { planListeners, type GatewayListenView } from "./listen-policy.ts";

const gw = (id: string, state: Partial<GatewayListenView> = {}): GatewayListenView => ({
  id,
  alive: true,
  routable: false,
  listening: false,
  ...state,
});

describe("planListeners", () => {
  test("a new app's port is chosen by one gateway, a routable one if there is one", () => {
    expect(planListeners([gw("a"), gw("b", { routable: true })], false)).toEqual([{ gateway: "b", action: "hold" }]);
    expect(planListeners([gw("a"), gw("b")], false)).toEqual([{ gateway: "a", action: "hold" }]);
    expect(planListeners([gw("a", { alive: false }), gw("b")], false)).toEqual([{ gateway: "b", action: "hold" }]);
  });

  test("once the port is known, every routable gateway is told to listen on it", () => {
    const plan = planListeners(
      [gw("a", { routable: true, listening: true }), gw("b", { routable: true }), gw("c")],
      true,
    );
    expect(plan).toEqual([{ gateway: "b", action: "hold" }]);
  });

  test("a gateway that cannot route is released only while another routes and listens", () => {
    expect(planListeners([gw("a", { listening: true }), gw("b", { routable: true, listening: true })], true)).toEqual([
      { gateway: "a", action: "release" },
    ]);
    // b is routable but not bound yet: a keeps the port until b is.
    expect(planListeners([gw("a", { listening: true }), gw("b", { routable: true })], true)).toEqual([
      { gateway: "b", action: "hold" },
    ]);
  });

  test("when nobody can route, the gateway holding the port keeps it; if nobody holds it, one takes it", () => {
    expect(planListeners([gw("a"), gw("b", { listening: true })], true)).toEqual([]);
    expect(planListeners([gw("a", { alive: false, listening: true }), gw("b")], true)).toEqual([
      { gateway: "b", action: "hold" },
    ]);
    expect(planListeners([gw("a", { alive: false })], true)).toEqual([]);
  });
});

type Event = { kind: "routable" | "unroutable" | "die" | "restart"; gw: number };

interface SimGateway {
  id: string;
  alive: boolean;
  routable: boolean;
  listening: boolean;
}

/** Applies the plan until nothing changes, as the gateways would react to it. */
function settle(gws: SimGateway[], port: { known: boolean }): void {
  for (let round = 0; round < 10; round++) {
    const plan = planListeners(gws, port.known);
    if (plan.length === 0) return;
    for (const { gateway, action } of plan) {
      const g = gws.find((x) => x.id === gateway)!;
      if (action === "hold") {
        g.listening = true;
        port.known = true;
      } else if (!g.routable) {
        g.listening = false;
      }
    }
  }
  throw new Error("the plan did not settle in 10 rounds");
}

describe("planListeners over random histories", () => {
  test("the port is always held by a live gateway, every routable gateway listens, and none that cannot route does while one can", () => {
    const event = fc.record({
      kind: fc.constantFrom("routable", "unroutable", "die", "restart"),
      gw: fc.integer({ min: 0, max: 2 }),
    }) as fc.Arbitrary<Event>;
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        const gws: SimGateway[] = ["a", "b", "c"].map((id) => ({ id, alive: true, routable: false, listening: false }));
        const port = { known: false };
        settle(gws, port);
        for (const e of events) {
          const g = gws[e.gw]!;
          if (e.kind === "die") Object.assign(g, { alive: false, routable: false, listening: false });
          else if (e.kind === "restart" && !g.alive)
            Object.assign(g, { alive: true, routable: false, listening: false });
          else if (g.alive && e.kind === "routable")
            Object.assign(g, { routable: true, listening: g.listening || port.known });
          else if (g.alive && e.kind === "unroutable") g.routable = false;
          settle(gws, port);
          const alive = gws.filter((x) => x.alive);
          if (alive.length > 0) expect(alive.some((x) => x.listening)).toBe(true);
          for (const x of alive) if (x.routable) expect(x.listening).toBe(true);
          if (alive.some((x) => x.routable)) expect(alive.filter((x) => x.listening && !x.routable)).toEqual([]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
