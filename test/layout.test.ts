/**
 * The module map of docs/ARCHITECTURE.md, enforced: imports point down. The multiplexer knows nothing of
 * the supervisor or the control plane, the transport nothing of the frames it carries, the supervisor
 * nothing of the daemon; `src/` never reaches into `test/` (src/ is exactly what ships) or a package the
 * binary does not need.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const src = join(root, "src");

interface Edge {
  from: string;
  to: string;
  specifier: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** The top-level module of a path under src/ ("mux", "transport", … or the file's stem for src/*.ts). */
function moduleOf(path: string): string {
  const rel = relative(src, path);
  const first = rel.split("/")[0]!;
  return rel.includes("/") ? first : first.replace(/\.ts$/, "");
}

/** Static imports and re-exports (`import … from "x"`, `export … from "x"`, `import "x"`) and `import("x")`. */
const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:[\w\s{},*$]*?\sfrom\s+)?"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/g;

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of walk(src)) {
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const specifier = (m[1] ?? m[2])!;
      if (!specifier.startsWith(".")) {
        out.push({ from: relative(root, file), to: `package:${specifier}`, specifier });
        continue;
      }
      const target = resolve(dirname(file), specifier);
      const to = target.startsWith(`${src}/`) ? moduleOf(target) : `outside:${relative(root, target)}`;
      out.push({ from: relative(root, file), to, specifier });
    }
  }
  return out;
}

const all = edges();
const from = (module: string) => all.filter((e) => moduleOf(join(root, e.from)) === module);
const bad = (list: Edge[], forbidden: readonly string[]) =>
  list.filter((e) => forbidden.includes(e.to)).map((e) => `${e.from} imports ${e.specifier}`);

describe("imports point down", () => {
  test("the scan sees the code (a broken scan would pass every rule)", () => {
    expect(from("mux").length).toBeGreaterThan(20);
    expect(from("transport").some((e) => e.to === "close-code" || e.specifier.includes("close-code"))).toBe(true);
  });

  test("mux: frames, sessions and streams over an abstract transport; nothing above it", () => {
    expect(
      bad(from("mux"), [
        "supervisor",
        "daemon",
        "control",
        "dataplane",
        "apps",
        "cli",
        "identity",
        "upgrade",
        "status",
      ]),
    ).toEqual([]);
  });

  test("transport: WebSocket, TLS and proxy; knows nothing of frames or tunnels", () => {
    expect(
      bad(from("transport"), ["mux", "supervisor", "daemon", "control", "dataplane", "apps", "cli", "identity"]),
    ).toEqual([]);
  });

  test("supervisor: keeps N tunnels; no daemon, control plane or dataplane", () => {
    expect(bad(from("supervisor"), ["daemon", "control", "dataplane", "apps", "cli", "identity", "upgrade"])).toEqual(
      [],
    );
  });

  test("retry and netaddr are leaves", () => {
    expect(from("retry").filter((e) => e.to !== "errors")).toEqual([]);
    expect(from("netaddr").filter((e) => moduleOf(join(root, e.from)) === "netaddr" && e.to !== "netaddr")).toEqual([]);
  });

  test("only src/main.ts and src/cli use the CLI layer", () => {
    const users = all.filter((e) => e.to === "cli" && !e.from.startsWith("src/cli/") && e.from !== "src/main.ts");
    expect(users.map((e) => e.from)).toEqual([]);
  });

  test("src/ ships alone: no imports of test code or of files outside src/", () => {
    expect(all.filter((e) => e.to.startsWith("outside:")).map((e) => `${e.from} → ${e.specifier}`)).toEqual([]);
  });

  test("src/ uses only the runtime dependencies and the platform", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const allowed = (name: string) =>
      name.startsWith("node:") || name.startsWith("bun:") || name === "bun" || name.split("/")[0]! in pkg.dependencies;
    const packages = all.filter((e) => e.to.startsWith("package:") && !allowed(e.specifier));
    expect(packages.map((e) => `${e.from} imports ${e.specifier}`)).toEqual([]);
  });
});
