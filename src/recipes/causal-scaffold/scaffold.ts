import { z } from "zod";

export interface CausalEdge {
  cause: string | string[];
  effect: string;
  rule: string;
}

export interface PlanStep {
  id: string;
  target: string;
  inputs: (string | { ref: string })[];
  description: string;
}

export interface Scaffold {
  target_variable: string;
  knowns: Record<string, unknown>;
  causal_graph: CausalEdge[];
  computation_plan: PlanStep[];
  constraints_and_premises?: unknown;
  problem_model?: unknown;
  chosen_strategy?: unknown;
  final_answer?: unknown;
}

/** Names and ids written by models are sometimes numbers; they mean the same as strings. */
const name = z.preprocess(
  (v) => (typeof v === "number" || typeof v === "boolean" ? String(v) : v),
  z.string(),
);

/** A missing or null rule is kept as "" so r_graph can count it as a missing rule, not a crash. */
const ruleText = z.preprocess((v) => {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return String(v);
  return v;
}, z.string());

const CausalEdgeSchema = z.object({
  cause: z.union([name, z.array(name)]),
  effect: name,
  rule: ruleText,
});

const PlanInputSchema = z.union([name, z.object({ ref: name })]);

const PlanStepSchema = z.object({
  id: name,
  target: z.preprocess((v) => (v === null || v === undefined ? "" : v), name),
  inputs: z.preprocess((v) => {
    if (v === null || v === undefined) return [];
    return Array.isArray(v) ? v : [v];
  }, z.array(PlanInputSchema)),
  description: z.preprocess((v) => (v === null || v === undefined ? "" : v), z.string()),
});

/** Knowns given as a list of `{name, value}` pairs are turned into the usual name → value map. */
function knownsToRecord(v: unknown): unknown {
  if (v === null || v === undefined) return {};
  if (!Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const item of v) {
    if (typeof item === "string") out[item] = null;
    else if (item && typeof item === "object" && "name" in item) {
      const { name: n, value } = item as { name: unknown; value?: unknown };
      out[String(n)] = value ?? null;
    }
  }
  return out;
}

/** Plan steps without an id get "stepN" so that `{ref: "stepN"}` inputs stay meaningful. */
function numberSteps(v: unknown): unknown {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) return v;
  return v.map((step, i) =>
    step && typeof step === "object" && !Array.isArray(step) && (step as { id?: unknown }).id == null
      ? { ...step, id: `step${i + 1}` }
      : step,
  );
}

const ScaffoldObject = z
  .object({
    target_variable: name,
    knowns: z.preprocess(knownsToRecord, z.record(z.string(), z.unknown())),
    causal_graph: z.preprocess((v) => (v === null ? [] : v), z.array(CausalEdgeSchema)),
    computation_plan: z.preprocess(numberSteps, z.array(PlanStepSchema)),
    constraints_and_premises: z.unknown().optional(),
    problem_model: z.unknown().optional(),
    chosen_strategy: z.unknown().optional(),
    final_answer: z.unknown().optional(),
  })
  .loose();

/**
 * The scaffold schema. Lenient where the meaning is unambiguous (numeric names, a single cause
 * string, missing rules, knowns as a list); strict on the shape the reward and executor rely on.
 */
export const ScaffoldSchema: z.ZodType<Scaffold> = ScaffoldObject as unknown as z.ZodType<Scaffold>;

/** Causes of an edge as a list, whichever form the scaffold used. */
export function edgeCauses(edge: CausalEdge): string[] {
  return Array.isArray(edge.cause) ? edge.cause : [edge.cause];
}
