/** The direct path: the user connects to the app itself; no relay, so there is no relay memory to read. */
import type { ReadyPath, Targets } from "./path.ts";

export function directPath(targets: Targets): ReadyPath {
  return {
    id: "direct",
    appPort: targets.appPort,
    iperfPort: targets.iperfPort,
    measured: undefined,
    cost: undefined,
    noMeasuredReason: "no relay process on the direct path",
  };
}
