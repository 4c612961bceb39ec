import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG_FILE, CatalogStore } from "../../src/apps/catalog-store.ts";
import type { Catalog } from "../../src/control/api.ts";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "catalog-store-"));
  roots.push(dir);
  return dir;
}

const catalog: Catalog = {
  version: "v7",
  apps: [
    { name: "wiki", destinations: [{ host: "wiki.corp.example", ports: "443" }], servers: ["wiki.corp.example:443"] },
  ],
};
const fetchedAt = new Date("2026-03-04T05:06:07.089Z");

describe("CatalogStore", () => {
  test("a catalog.json planted as a symlink, owned by another user or writable by others is ignored, saying why", () => {
    const elsewhere = stateDir();
    new CatalogStore(elsewhere).save("conn-1", catalog, fetchedAt);
    const dir = stateDir();
    const path = join(dir, CATALOG_FILE);
    symlinkSync(join(elsewhere, CATALOG_FILE), path);
    const viaLink = new CatalogStore(dir).load("conn-1");
    expect(viaLink.found).toBe(false);
    if (!viaLink.found) expect(viaLink.why).toContain("symbolic link");
    rmSync(path);
    new CatalogStore(dir).save("conn-1", catalog, fetchedAt);
    chmodSync(path, 0o666);
    expect(new CatalogStore(dir).load("conn-1").found).toBe(false);
    if (process.geteuid?.() === 0) {
      chmodSync(path, 0o600);
      chownSync(path, 65534, 65534);
      expect(new CatalogStore(dir).load("conn-1").found).toBe(false);
    }
  });

  test("a saved catalog loads back for the same connector, from a 0600 file with no temp file left", () => {
    const dir = stateDir();
    new CatalogStore(dir).save("conn-1", catalog, fetchedAt);
    expect(statSync(join(dir, CATALOG_FILE)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual([CATALOG_FILE]);
    expect(new CatalogStore(dir).load("conn-1")).toEqual({ found: true, stored: { catalog, fetchedAt } });
  });

  test("a newer catalog replaces the older one", () => {
    const dir = stateDir();
    const store = new CatalogStore(dir);
    store.save("conn-1", catalog, fetchedAt);
    const next = { version: "v8", apps: [] };
    store.save("conn-1", next, new Date(fetchedAt.getTime() + 1000));
    const load = store.load("conn-1");
    expect(load.found && load.stored.catalog).toEqual(next);
  });

  test("another connector's catalog (a moved or re-enrolled state dir) is not used", () => {
    const dir = stateDir();
    new CatalogStore(dir).save("conn-1", catalog, fetchedAt);
    const load = new CatalogStore(dir).load("conn-2");
    expect(load).toEqual({ found: false, why: `${CATALOG_FILE} belongs to another connector identity` });
  });

  test("a missing file is reported as none yet", () => {
    expect(new CatalogStore(stateDir()).load("conn-1")).toEqual({ found: false, why: `no ${CATALOG_FILE} yet` });
  });

  const broken: [string, string, string][] = [
    ["not JSON", "{ torn", "not JSON"],
    [
      "a catalog that fails the schema",
      JSON.stringify({
        connectorId: "conn-1",
        fetchedAt: fetchedAt.toISOString(),
        catalog: { version: "", apps: "x" },
      }),
      "schema",
    ],
    ["no connector id", JSON.stringify({ fetchedAt: fetchedAt.toISOString(), catalog }), "schema"],
    ["a bad time", JSON.stringify({ connectorId: "conn-1", fetchedAt: "yesterday", catalog }), "schema"],
    ["an oversized file", " ".repeat(300 * 1024), "limit"],
  ];
  for (const [name, text, why] of broken) {
    test(`${name} is ignored with the reason`, () => {
      const dir = stateDir();
      writeFileSync(join(dir, CATALOG_FILE), text, { mode: 0o600 });
      const load = new CatalogStore(dir).load("conn-1");
      expect(load.found).toBe(false);
      if (!load.found) expect(load.why).toContain(why);
    });
  }

  test("the file holds the connector id, the fetch time and the catalog, nothing else", () => {
    const dir = stateDir();
    new CatalogStore(dir).save("conn-1", catalog, fetchedAt);
    expect(JSON.parse(readFileSync(join(dir, CATALOG_FILE), "utf8"))).toEqual({
      connectorId: "conn-1",
      fetchedAt: fetchedAt.toISOString(),
      catalog,
    });
  });
});
