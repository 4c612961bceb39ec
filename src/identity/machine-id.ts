/**
 * The host's machine id (`/etc/machine-id`, 32 hex digits), sent at enrollment and stored with the
 * identity so `run` can tell that a state dir moved to another machine. Absent or unreadable
 * (containers often lack it) simply means "unknown".
 */
import { readFileSync } from "node:fs";

export const MACHINE_ID_PATH = "/etc/machine-id";

export function readMachineId(path: string = MACHINE_ID_PATH): string | undefined {
  try {
    const text = readFileSync(path, "utf8").trim().toLowerCase();
    return /^[0-9a-f]{32}$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}
