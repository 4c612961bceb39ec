/**
 * The cost rows of a traffic scenario: CPU and syscalls of the relay alone (connector | sshd | socat —
 * the connector's own figure against its counterpart on the app side) and of the whole path (connector +
 * the cloud's gateways | ssh + sshd | socat), per GiB / MiB for bulk, per 10,000 / per request for the
 * request/response and new-stream scenarios. Row names say which process each column is.
 */
import { type CostFigures, type CostSpent, clkTck, costFigures, type WorkKind } from "./cost.ts";
import type { ReadyPath } from "./paths/path.ts";
import type { Outcome, RowSpec } from "./report.ts";

const RELAY = "relay (connector | sshd | socat)";
const WHOLE = "whole path (connector + gateways | ssh + sshd | socat)";

/** What the work of a scenario is called: bytes, requests or new streams. */
export type CostWork = "bytes" | "requests" | "streams";

function kindOf(work: CostWork): WorkKind {
  return work === "bytes" ? "bytes" : "requests";
}

/** The four cost rows of the scenario row `base`, in the order costOutcomes fills them. */
export function costRows(base: string, work: CostWork): RowSpec[] {
  const cpu =
    work === "bytes"
      ? { name: "CPU s per GiB", unit: "CPU s/GiB" }
      : work === "requests"
        ? { name: "CPU s per 10,000 requests", unit: "CPU s/10k req" }
        : { name: "CPU s per 10,000 new streams", unit: "CPU s/10k streams" };
  const calls =
    work === "bytes"
      ? { name: "syscalls per MiB", unit: "syscalls/MiB" }
      : work === "requests"
        ? { name: "syscalls per request", unit: "syscalls/req" }
        : { name: "syscalls per new stream", unit: "syscalls/stream" };
  return [
    { name: `${cpu.name}, ${base} — ${RELAY}`, unit: cpu.unit, higherIsBetter: false },
    { name: `${cpu.name}, ${base} — ${WHOLE}`, unit: cpu.unit, higherIsBetter: false },
    { name: `${calls.name}, ${base} — ${RELAY}`, unit: calls.unit, higherIsBetter: false },
    { name: `${calls.name}, ${base} — ${WHOLE}`, unit: calls.unit, higherIsBetter: false },
  ];
}

/** True for the name of a cost row (the guard judges them with their own tolerance). */
export function isCostRow(name: string): boolean {
  return name.endsWith(` — ${RELAY}`) || name.endsWith(` — ${WHOLE}`);
}

/**
 * The outcomes of the four cost rows for one measurement on `path`: `spent` is undefined when the
 * interval could not be read (then `why` says why).
 */
export function costOutcomes(
  path: ReadyPath,
  spent: CostSpent | undefined,
  work: CostWork,
  why = "no cost interval was read",
): Outcome[] {
  const skip = (reason: string): Outcome[] => Array.from({ length: 4 }, () => ({ skipped: reason }));
  if (!path.cost) return skip(path.noMeasuredReason ?? "no relay process");
  if (!spent) return skip(why);
  const figures: CostFigures | undefined = costFigures(spent, kindOf(work), clkTck());
  if (!figures) return skip(`no ${work === "bytes" ? "bytes moved" : `${work} completed`} in the cost interval`);
  const uncounted = path.cost.syscallsUncounted;
  return [
    { value: figures.relayCpu },
    { value: figures.pathCpu },
    uncounted ? { skipped: uncounted } : { value: figures.relaySyscalls },
    uncounted ? { skipped: uncounted } : { value: figures.pathSyscalls },
  ];
}
