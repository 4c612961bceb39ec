/**
 * Parsers for the host files preflight reads (/etc/os-release, /proc/cpuinfo, /proc/meminfo,
 * /proc/self/limits, /proc/self/mountinfo, /etc/resolv.conf). Pure functions over text, so a test
 * can feed any host's files; anything unparsable reads as undefined ("unknown"), never a throw.
 */

/** `KEY=value` lines of os-release(5), quotes removed. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!.trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]))
      value = value.slice(1, -1);
    out[m[1]!] = value.replace(/\\(["$`\\])/g, "$1");
  }
  return out;
}

/** Number of CPUs and the feature flags (x86 `flags`, arm64 `Features`) of the first one. */
export function parseCpuinfo(text: string): { count: number; flags: string[] | undefined } {
  let count = 0;
  let flags: string[] | undefined;
  for (const line of text.split("\n")) {
    const m = /^([^:]+?)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    if (key === "processor") count++;
    else if ((key === "flags" || key === "features") && flags === undefined) flags = m[2]!.trim().split(/\s+/);
  }
  return { count, flags };
}

/** MemTotal in bytes. */
export function parseMemTotal(text: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** The soft and hard "Max open files" limits; Infinity for "unlimited". */
export function parseNoFileLimit(text: string): { soft: number; hard: number } | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const num = (s: string) => (s === "unlimited" ? Infinity : Number(s));
  const soft = num(m[1]!);
  const hard = num(m[2]!);
  return Number.isNaN(soft) || Number.isNaN(hard) ? undefined : { soft, hard };
}

/** The `nameserver` entries of resolv.conf(5), in order. */
export function parseNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  /** Per-mount options (`rw`, `noexec`, …) and the super block's (`ro` there also means read-only). */
  readonly options: readonly string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescapeOctal = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Entries of /proc/self/mountinfo (proc(5)): `id parent maj:min root mountpoint opts [optional…] - fstype source superopts`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    const dash = fields.indexOf("-");
    if (fields.length < 6 || dash < 6 || dash + 1 >= fields.length) continue;
    out.push({
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[dash + 1]!,
      options: [...fields[5]!.split(","), ...(fields[dash + 3] ?? "").split(",")].filter((o) => o !== ""),
    });
  }
  return out;
}

/** The mount `path` (absolute, symlinks resolved) lives on: the last-listed entry with the longest matching mount point. */
export function mountOf(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const mp = entry.mountPoint;
    const inside = mp === "/" || path === mp || path.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}
