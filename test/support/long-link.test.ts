import { describe, expect, test } from "bun:test";
import type { SessionConfig } from "../../src/mux/config.ts";
import { INITIAL_WINDOW, MAX_WINDOW } from "../../src/mux/const.ts";
import { Session } from "../../src/mux/session.ts";
import type { Stream } from "../../src/mux/stream.ts";
import { FakeClock } from "./fake-clock.ts";
import { createLongLinkPair } from "./long-link.ts";

const GBIT_BYTES_PER_MS = 125_000;
const CHUNK = new Uint8Array(64 * 1024);

/**
 * `streams` bulk streams gateway → connector over a simulated 1 Gbit/s link with an 80 ms round trip
 * (bandwidth-delay product 10 MB, far above the 256 KiB initial window). Returns the share of the line
 * rate they reached together between `fromMs` and `toMs` of simulated time, the first stream's final
 * window, and the most the streams' windows had grown beyond the initial one at any moment, summed.
 */
async function bulkOverLongLink(config: Partial<SessionConfig>, fromMs: number, toMs: number, streams = 1) {
  const clock = new FakeClock();
  const [connectorEnd, gatewayEnd] = createLongLinkPair({
    clock,
    oneWayDelayMs: 40,
    bytesPerMs: GBIT_BYTES_PER_MS,
    sendBufferBytes: 4 << 20,
  });
  let received = 0;
  const far: Stream[] = [];
  let peakGrowth = 0;
  new Session({
    role: "connector",
    transport: connectorEnd,
    clock,
    config,
    onOpen: (_request, stream) => {
      far.push(stream);
      stream.setHandlers({
        data: (chunk) => {
          received += chunk.length;
          stream.consumed(chunk.length); // a consumer that always keeps up, like a fast app
          const growth = far.reduce((sum, s) => sum + s.receiveWindow - INITIAL_WINDOW, 0);
          peakGrowth = Math.max(peakGrowth, growth);
        },
        end() {},
        drain() {},
        close() {},
      });
      stream.accept();
    },
  });
  const gateway = new Session({ role: "gateway", transport: gatewayEnd, clock, config });
  for (let i = 0; i < streams; i++) {
    const opening = gateway.open({ app: "wiki", host: "wiki.corp.example", port: 443 });
    await clock.advance(100);
    const near = await opening;
    const fill = () => {
      while (near.write(CHUNK));
    };
    near.setHandlers({ data() {}, end() {}, close() {}, drain: fill });
    fill();
  }
  await clock.advance(fromMs - clock.now());
  const before = received;
  for (let t = clock.now(); t < toMs; t += 5) await clock.advance(5);
  const share = (received - before) / ((toMs - fromMs) * GBIT_BYTES_PER_MS);
  return { share, window: far[0]?.receiveWindow ?? 0, peakGrowth };
}

describe("a long fat link (simulated: 1 Gbit/s, 80 ms round trip)", () => {
  test("window growth lets one stream use most of the line, with the window bounded by MAX_WINDOW", async () => {
    const { share, window } = await bulkOverLongLink({}, 1_000, 2_000);
    console.log(
      `one stream over 80 ms RTT: ${(share * 100).toFixed(0)}% of 1 Gbit/s, window ${(window / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(share).toBeGreaterThanOrEqual(0.5); // the long-distance throughput target (BENCHMARKS.md), here in the model
    expect(window).toBeLessThanOrEqual(MAX_WINDOW);
  }, 30_000);

  test("a window grows no further than maxReceiveWindow", async () => {
    const { window } = await bulkOverLongLink({ maxReceiveWindow: 4 * INITIAL_WINDOW }, 1_000, 1_500);
    expect(window).toBe(4 * INITIAL_WINDOW);
  }, 30_000);

  test("the growth of a tunnel's streams together stays within the session's budget", async () => {
    const { peakGrowth } = await bulkOverLongLink({ windowGrowthBudget: INITIAL_WINDOW }, 1_000, 1_500, 2);
    expect(peakGrowth).toBe(INITIAL_WINDOW); // one doubling in all while both streams ran
  }, 30_000);

  test("without growth the initial window caps the stream at window ÷ RTT (the control)", async () => {
    const { share, window } = await bulkOverLongLink({ maxReceiveWindow: INITIAL_WINDOW }, 1_000, 2_000);
    expect(window).toBe(INITIAL_WINDOW);
    expect(share).toBeLessThan(0.05); // 256 KiB per 80 ms is 3.3 MB/s, 2.6% of the line
  }, 30_000);
});
