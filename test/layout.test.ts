/**
 * The layout of docs/architecture.md, checked on the sources: arrows point down only, nothing
 * imports cli/, a recipe never imports another, and no import cycle exists (type-only included,
 * since a type cycle still ties two modules' designs together); and a recipe is client code of the
 * package: what it takes from training-free/ is what `grpo-ts` exports.
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

/** Each name a file imports or re-exports from training-free/, as `module: name`; `*` for a whole-module import. */
function trainingFreeNames(file: string, text = readFileSync(file, "utf8")): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const names: string[] = [];
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) && !ts.isExportDeclaration(st)) continue;
    if (!st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier)) continue;
    const target = normalize(join(dirname(file), st.moduleSpecifier.text));
    if (!rel(target).startsWith(`training-free${sep}`) && rel(target) !== "training-free") continue;
    const from = rel(target);
    const bindings = ts.isImportDeclaration(st) ? st.importClause : undefined;
    let named: ts.NodeArray<ts.ImportSpecifier | ts.ExportSpecifier> | undefined;
    if (ts.isImportDeclaration(st)) {
      if (bindings?.namedBindings && ts.isNamedImports(bindings.namedBindings))
        named = bindings.namedBindings.elements;
    } else if (st.exportClause && ts.isNamedExports(st.exportClause)) named = st.exportClause.elements;
    if (bindings?.name) names.push(`${from}: default`);
    if (named) for (const e of named) names.push(`${from}: ${(e.propertyName ?? e.name).text}`);
    else if (!bindings || bindings.namedBindings) names.push(`${from}: *`);
  }
  return names;
}

/** Every name, type or value, that `import … from "grpo-ts"` offers. */
function packageExports(): Set<string> {
  const index = join(SRC, "index.ts");
  const program = ts.createProgram([index], {
    allowImportingTsExtensions: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  });
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  return new Set(checker.getExportsOfModule(mod).map((s) => s.name));
}

describe("recipes on the public API", () => {
  const exported = packageExports();
  const used = files
    .filter((f) => top(f) === "recipes")
    .flatMap((f) => trainingFreeNames(f).map((n) => `${rel(f)} <- ${n}`));

  it("reads the names recipes import from training-free/ (checked on a source that breaks the rule)", () => {
    const probe = join(SRC, "recipes", "causal-scaffold", "probe.ts");
    const names = trainingFreeNames(
      probe,
      [
        'import { SKIPPED, type Session as S } from "../../training-free/session.ts";',
        'import * as tf from "../../training-free/index.ts";',
        'export { groupKey } from "../../training-free/run-store.ts";',
        'import { userMessage } from "../../llm/messages.ts";',
      ].join("\n"),
    );
    assert.deepEqual(names, [
      `training-free${sep}session.ts: SKIPPED`,
      `training-free${sep}session.ts: Session`,
      `training-free${sep}index.ts: *`,
      `training-free${sep}run-store.ts: groupKey`,
    ]);
    assert.ok(!exported.has("SKIPPED") && !exported.has("groupKey"), "internals are not exported");
    assert.ok(
      used.some((u) => u.startsWith(`recipes${sep}causal-scaffold${sep}`)),
      "the solver imports the library",
    );
  });

  it("imports from training-free/ only names that the package exports", () => {
    const hidden = used.filter((u) => {
      const name = u.slice(u.lastIndexOf(": ") + 2);
      return name === "*" || name === "default" || !exported.has(name);
    });
    assert.deepEqual(hidden, []);
  });
});
