import { describe, expect, test } from "bun:test";
import { CatalogStore } from "./catalog.ts";

const wiki = { name: "wiki", destinations: [{ host: "10.0.0.5", ports: "443" }], servers: ["10.0.0.5:443"] };

describe("CatalogStore", () => {
  test("a group's version changes when its apps change and returns with the same content", () => {
    const catalog = new CatalogStore();
    const empty = catalog.forGroup("default").version;
    const withWiki = catalog.put(wiki);
    expect(withWiki).not.toBe(empty);
    expect(catalog.put({ ...wiki, servers: ["10.0.0.6:443"] })).not.toBe(withWiki);
    expect(catalog.put(wiki)).toBe(withWiki);
    expect(catalog.delete("wiki")).toBe(true);
    expect(catalog.forGroup("default")).toEqual({ version: empty, apps: [] });
    expect(catalog.delete("wiki")).toBe(false);
  });

  test("connectors of a group see only that group's apps", () => {
    const catalog = new CatalogStore();
    catalog.put(wiki);
    catalog.put({
      name: "db",
      destinations: [{ host: "db.corp", ports: "5432" }],
      servers: ["db.corp:5432"],
      group: "site-b",
    });
    expect(catalog.forGroup("default").apps.map((a) => a.name)).toEqual(["wiki"]);
    expect(catalog.forGroup("site-b").apps.map((a) => a.name)).toEqual(["db"]);
    expect(catalog.groupOf("db")).toBe("site-b");
    expect(catalog.groupOf("nope")).toBeUndefined();
  });

  test("subscribers hear of every change with the group and its new version; moving an app announces both groups", () => {
    const catalog = new CatalogStore();
    const heard: string[] = [];
    const unsubscribe = catalog.subscribe(({ group, version }) => heard.push(`${group}:${version}`));
    const v1 = catalog.put(wiki);
    const v2 = catalog.put({ ...wiki, group: "site-b" });
    expect(heard).toEqual([`default:${v1}`, `default:${catalog.forGroup("default").version}`, `site-b:${v2}`]);
    unsubscribe();
    catalog.delete("wiki");
    expect(heard).toHaveLength(3);
  });
});
