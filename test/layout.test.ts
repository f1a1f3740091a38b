/**
 * The layout of docs/architecture.md, checked on the sources: arrows point down only, nothing
 * imports cli/, a recipe never imports another, and no import cycle exists (type-only included,
 * since a type cycle still ties two modules' designs together).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

const SRC = join(import.meta.dirname, "..", "src");

/** Lower levels may not import higher ones; equal levels (other than a folder itself) neither. */
const LEVEL: Record<string, number> = {
  core: 0,
  io: 0,
  data: 1,
  llm: 2,
  model: 2,
  rl: 3,
  "training-free": 3,
  recipes: 4,
  report: 5,
  cli: 6,
  "index.ts": 7,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts)$/.test(e.name) ? [p] : [];
  });
}

function imports(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith("."))
    .map((s) => {
      let t = normalize(join(dirname(file), s));
      if (t.endsWith(".js")) t = `${t.slice(0, -3)}.ts`;
      if (existsSync(t) && statSync(t).isDirectory()) t = join(t, "index.ts");
      return t;
    });
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, imports(f)]));
const rel = (f: string) => relative(SRC, f);
const top = (f: string) => rel(f).split(sep)[0]!;

describe("source layout", () => {
  it("puts every file in a folder of the layout", () => {
    assert.deepEqual(files.filter((f) => LEVEL[top(f)] === undefined).map(rel), []);
  });

  it("imports only existing modules", () => {
    const missing = [...graph].flatMap(([f, ds]) =>
      ds.filter((d) => !graph.has(d)).map((d) => `${rel(f)} -> ${rel(d)}`),
    );
    assert.deepEqual(missing, []);
  });

  it("points every arrow downwards, never into cli/ or from one recipe into another", () => {
    const wrong: string[] = [];
    for (const [f, ds] of graph) {
      for (const d of ds) {
        const a = top(f);
        const b = top(d);
        if (a === b) {
          if (a === "recipes" && rel(f).split(sep)[1] !== rel(d).split(sep)[1])
            wrong.push(`${rel(f)} -> ${rel(d)}`);
          continue;
        }
        if (b === "cli" || LEVEL[b]! >= LEVEL[a]! || (a === "core" && b === "io"))
          wrong.push(`${rel(f)} -> ${rel(d)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("has no import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (v: string) => {
      state.set(v, "open");
      stack.push(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (state.get(w) === "open") cycles.push([...stack.slice(stack.indexOf(w)), w].map(rel).join(" -> "));
        else if (!state.has(w)) visit(w);
      }
      stack.pop();
      state.set(v, "done");
    };
    for (const f of files) if (!state.has(f)) visit(f);
    assert.deepEqual(cycles, []);
  });
});
