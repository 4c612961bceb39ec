/**
 * The daemon's process-wide dataplane state: one admission gate shared by every tunnel's open handler
 * (streams, dials, fds, bytes held for apps that do not read) and one registry of relayed streams
 * (re-checked on each new catalog, swept for idle ones), both counted in status.
 */
import type { Clock } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import { type AdmissionGate, createProcessGate } from "../dataplane/admission.ts";
import { OpenStreams } from "../dataplane/open-streams.ts";
import type { Logger } from "../log.ts";
import type { StatusModel } from "./status-model.ts";

export function createDataplaneState(
  settings: Settings,
  clock: Clock,
  log: Logger,
  status: StatusModel,
): { gate: AdmissionGate; openStreams: OpenStreams } {
  const openStreams = new OpenStreams(clock, settings.streamIdleTimeout * 1000, (why, count, apps) =>
    log.warn(
      why === "idle" ? "streams reset: idle timeout" : "streams reset: the catalog no longer allows their destination",
      { count, apps },
    ),
  );
  const gate = createProcessGate({ maxStreams: settings.maxStreams, tunnels: settings.tunnels, clock, log });
  status.showDataplane(() => ({ busy: gate.rejections, ended: { ...openStreams.ended } }));
  return { gate, openStreams };
}
