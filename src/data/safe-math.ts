import { createRequire } from "node:module";
import type { MathJsInstance } from "mathjs/number";

/**
 * mathjs is loaded on first use, not at import: loading it takes most of a second, which every
 * importer of the answer checks (and of the package) would otherwise pay for nothing.
 */
function loadMathjs(): typeof import("mathjs/number") {
  return createRequire(import.meta.url)("mathjs/number");
}

/**
 * A mathjs instance for expressions that come from model output or data files. Following the
 * mathjs guidance for untrusted input, every function that can reach the parser, define units
 * or mutate the instance is replaced by one that throws, so an expression can only compute.
 * The number-only build is enough (answers and rules are real arithmetic), has no units to
 * misread a variable "m" as metres, and loads in half the time of the full build.
 */
function buildSafeMath(): { math: MathJsInstance; parse: MathJsInstance["parse"] } {
  const { all, create } = loadMathjs();
  const math = create(all, {});
  // Keep a private reference before the public one is disabled below.
  const parse = math.parse.bind(math) as MathJsInstance["parse"];
  // Spellings of the binomial coefficient that scaffolds use; a variable of the same name wins.
  const choose = (n: number, k: number) => math.combinations(n, k);
  math.import({ C: choose, binom: choose, choose, nCr: choose }, { override: true });
  const disabled = (name: string) => () => {
    throw new Error(`function ${name} is disabled`);
  };
  const blocked = [
    "import",
    "createUnit",
    "evaluate",
    "parse",
    "compile",
    "parser",
    "simplify",
    "simplifyConstant",
    "simplifyCore",
    "derivative",
    "resolve",
    "rationalize",
    "reviver",
    "chain",
    "config",
    "help",
  ];
  const overrides: Record<string, () => never> = {};
  for (const name of blocked) overrides[name] = disabled(name);
  math.import(overrides, { override: true });
  return { math, parse };
}

/** Symbols that mean a constant when no variable of that name is given. */
const CONSTANTS = new Set(["pi", "e", "tau"]);

// Built on first use: creating a full mathjs instance costs about a second of start-up.
let instance: ReturnType<typeof buildSafeMath> | null = null;
function safeMath(): ReturnType<typeof buildSafeMath> {
  instance ??= buildSafeMath();
  return instance;
}

/** Convert a mathjs result to a plain finite number, or null (units, matrices, complex, NaN). */
export function toFiniteNumber(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "boolean") return null;
  if (value && typeof value === "object") {
    const v = value as { isFraction?: boolean; isBigNumber?: boolean; valueOf(): unknown };
    if (v.isFraction || v.isBigNumber) {
      const n = Number(v.valueOf());
      return Number.isFinite(n) ? n : null;
    }
  }
  return null;
}

/** An expression parsed and compiled once, with its free symbols (function names excluded). */
interface Compiled {
  symbols: string[];
  code: { evaluate(scope: Map<string, unknown>): unknown };
}

// The rules of a problem's scaffolds repeat across rollouts and agents; parsing and compiling
// them again was a tenth of the solver's own CPU per call (bench/README.md). Bounded: a long
// run of distinct rules starts the cache over instead of growing it.
const COMPILED_MAX = 4096;
const compiledCache = new Map<string, Compiled>();

function compiled(expr: string): Compiled {
  const hit = compiledCache.get(expr);
  if (hit) return hit;
  const node = safeMath().parse(expr);
  const symbols = new Set<string>();
  node.traverse((n, path, parent) => {
    if (n.type !== "SymbolNode") return;
    if (parent?.type === "FunctionNode" && path === "fn") return;
    symbols.add((n as unknown as { name: string }).name);
  });
  const entry: Compiled = { symbols: [...symbols], code: node.compile() };
  if (compiledCache.size >= COMPILED_MAX) compiledCache.clear();
  compiledCache.set(expr, entry);
  return entry;
}

/**
 * Evaluate an arithmetic expression with the given variables. Returns null instead of throwing
 * for anything that is not a finite real number (syntax errors, unknown symbols, units, ...).
 * Every free symbol must be a variable in `scope` or one of pi, e, tau, so that the caller learns
 * which names are missing and a constant-looking name is never used by accident.
 */
export function safeEvaluate(
  expr: string,
  scope?: Map<string, number>,
): { value: number | null; error?: string; missing?: string[] } {
  // Assignments and multi-statement input would let an expression define functions or variables.
  if (/[;\n]/.test(expr)) return { value: null, error: "multiple statements are not allowed" };
  if (/(^|[^=!<>])=(?!=)/.test(expr)) return { value: null, error: "assignments are not allowed" };
  try {
    const { symbols, code } = compiled(expr);
    const missing = symbols.filter((name) => !scope?.has(name) && !CONSTANTS.has(name));
    if (missing.length > 0) {
      return { value: null, error: `unknown symbol ${missing.join(", ")}`, missing };
    }
    const value = toFiniteNumber(code.evaluate(new Map(scope ?? [])));
    return value === null ? { value: null, error: "result is not a finite real number" } : { value };
  } catch (err) {
    return { value: null, error: (err as Error).message };
  }
}
