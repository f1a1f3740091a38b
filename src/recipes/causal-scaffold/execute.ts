import { answerToNumber } from "../../data/answers.ts";
import { safeEvaluate } from "../../data/safe-math.ts";
import type { CausalEdge, Scaffold } from "./scaffold.ts";

export interface ExecutionResult {
  /** The target's value when the graph computes it. */
  value: number | null;
  /** Every node with a numeric value: numeric knowns and computed effects. */
  values: Record<string, number>;
  /** Effects of edges whose rule could not be evaluated (the caller asks an LLM for those). */
  unexecuted: string[];
  error?: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Top-level "=" positions, ignoring ==, <=, >=, != and anything inside brackets. */
function assignmentSplits(rule: string): number[] {
  const out: number[] = [];
  let depth = 0;
  for (let i = 0; i < rule.length; i++) {
    const ch = rule[i]!;
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
    else if (ch === "=" && depth === 0) {
      const prev = rule[i - 1] ?? "";
      const next = rule[i + 1] ?? "";
      if (next === "=" || prev === "=" || prev === "<" || prev === ">" || prev === "!") continue;
      out.push(i);
    }
  }
  return out;
}

/** Python and Unicode spellings that mathjs reads differently or not at all. */
function toMathjs(expr: string): string {
  return expr
    .replace(/\*\*/g, "^")
    .replace(/π/g, "pi")
    .replace(/[−–]/g, "-")
    .replace(/√\s*\(/g, "sqrt(")
    .trim();
}

/**
 * The expression that computes `effect` from a rule: "x = a*b + c" → "a*b + c", "a*b + c" as is,
 * "a*b + c = x" → "a*b + c". Rules that are equations to solve return null.
 */
export function ruleExpression(rule: string, effect: string): { expr: string; alias?: string } | null {
  const text = rule.trim();
  if (text === "") return null;
  const splits = assignmentSplits(text);
  if (splits.length === 0) return { expr: toMathjs(text) };
  if (splits.length > 1) return null;
  const lhs = text.slice(0, splits[0]).trim();
  const rhs = text.slice(splits[0]! + 1).trim();
  if (IDENTIFIER.test(lhs))
    return lhs === effect ? { expr: toMathjs(rhs) } : { expr: toMathjs(rhs), alias: lhs };
  if (rhs === effect) return { expr: toMathjs(lhs) };
  return null;
}

/** The cause names of an edge; a single string may list several, separated by commas. */
function causesOf(edge: CausalEdge): string[] {
  const list = Array.isArray(edge.cause) ? edge.cause : String(edge.cause ?? "").split(",");
  return list.map((c) => String(c).trim()).filter((c) => c !== "");
}

/** Numeric value of a known: numbers, numeric strings, "1/2", "\frac{1}{2}", "sqrt(41)". */
function knownValue(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v === "string") return answerToNumber(v);
  return null;
}

/**
 * Evaluate the causal graph in dependency order: knowns seed the values, then each edge's rule is
 * evaluated with mathjs once every cause of the edge and every symbol its rule uses has a value. Passes repeat until nothing new is
 * computed, which orders any DAG and leaves edges on a cycle or with unknown symbols unexecuted.
 * Never throws.
 */
export function executeScaffold(s: Scaffold): ExecutionResult {
  const values = new Map<string, number>();
  try {
    for (const [name, raw] of Object.entries(s.knowns ?? {})) {
      const v = knownValue(raw);
      if (v !== null) values.set(name.trim(), v);
    }
    const pending = (s.causal_graph ?? []).map((edge) => ({ edge, reason: "not reached" }));
    let progress = true;
    while (progress && pending.length > 0) {
      progress = false;
      for (let i = 0; i < pending.length; i++) {
        const item = pending[i]!;
        const effect = item.edge.effect.trim();
        if (values.has(effect)) {
          // Another edge (or a known) already gave this node a value.
          pending.splice(i--, 1);
          continue;
        }
        // An edge runs only once all its causes have values: a rule that evaluates without them
        // (a constant such as "xy = 10^(1/4)") states a relation to solve, not a computation.
        const missing = causesOf(item.edge).filter((c) => !values.has(c));
        if (missing.length > 0) {
          item.reason = `cause${missing.length > 1 ? "s" : ""} without a value: ${missing.join(", ")}`;
          continue;
        }
        const parsed = typeof item.edge.rule === "string" ? ruleExpression(item.edge.rule, effect) : null;
        if (!parsed) {
          item.reason = "rule is empty or an equation, not an expression";
          continue;
        }
        const scope = new Map<string, number>();
        for (const [k, v] of values) if (IDENTIFIER.test(k)) scope.set(k, v);
        const result = safeEvaluate(parsed.expr, scope);
        if (result.value === null) {
          item.reason = result.error ?? "not a number";
          continue;
        }
        values.set(effect, result.value);
        if (parsed.alias && !values.has(parsed.alias)) values.set(parsed.alias, result.value);
        pending.splice(i--, 1);
        progress = true;
      }
    }
    const unexecuted = [...new Set(pending.map((p) => p.edge.effect.trim()))];
    const target = (s.target_variable ?? "").trim();
    const value = values.get(target) ?? null;
    const out: ExecutionResult = { value, values: Object.fromEntries(values), unexecuted };
    if (value === null) {
      const why = pending.find((p) => p.edge.effect.trim() === target)?.reason;
      out.error = why
        ? `target ${target} not computed: ${why}`
        : `target ${target} is not the effect of any executable edge`;
    }
    return out;
  } catch (err) {
    return {
      value: null,
      values: Object.fromEntries(values),
      unexecuted: (s.causal_graph ?? []).map((e) => e.effect),
      error: (err as Error).message,
    };
  }
}
