import { z } from "zod";
import { readJsonFile, zodFileError } from "../../io/files.ts";
import { extractJsonValue } from "../../llm/json-text.ts";

export interface RewardWeights {
  ans: number;
  logic: number;
  graph: number;
  /** Critic only. */
  fusion?: number;
}

export type GeneratorId = 1 | 2 | 3;
export const GENERATOR_IDS: readonly GeneratorId[] = [1, 2, 3];

/** Later generators weigh the answer more, so the three explore different trade-offs. */
export const DEFAULT_GENERATOR_WEIGHTS: Record<GeneratorId, RewardWeights> = {
  1: { ans: 0.5, logic: 0.25, graph: 0.25 },
  2: { ans: 0.6, logic: 0.2, graph: 0.2 },
  3: { ans: 0.7, logic: 0.15, graph: 0.15 },
};

export const DEFAULT_CRITIC_WEIGHTS: RewardWeights = { ans: 0.3, logic: 0.2, graph: 0.2, fusion: 0.3 };

export interface RewardParts {
  r_ans: number;
  r_logic: number;
  r_graph: number;
  r_fusion?: number;
}

export function totalReward(parts: RewardParts, w: RewardWeights): number {
  const t =
    w.ans * parts.r_ans +
    w.logic * parts.r_logic +
    w.graph * parts.r_graph +
    (w.fusion ?? 0) * (parts.r_fusion ?? 0);
  // Rounded so that cached totals compare equal across runs instead of differing in the 17th digit.
  return Math.round(t * 1e6) / 1e6;
}

const unit = z.number().min(0).max(1);

export const LogicJudgeSchema = z.looseObject({
  validity: unit.optional(),
  completeness: unit.optional(),
  rigor: unit.optional(),
  overall: unit.optional(),
});

/**
 * Score from a logic-judge reply: `overall` when given, else the mean of the other scores.
 * Throws (so the client retries) when the reply holds no valid score.
 */
export function parseLogicJudge(text: string): number {
  const raw = extractJsonValue(text, "object");
  if (raw === undefined) throw new Error("logic judge: no JSON object in reply");
  const parsed = LogicJudgeSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`logic judge: field ${issue.path.join(".")}: ${issue.message}`);
  }
  const s = parsed.data;
  if (s.overall !== undefined) return s.overall;
  const parts = [s.validity, s.completeness, s.rigor].filter((v): v is number => v !== undefined);
  if (parts.length === 0) throw new Error("logic judge: no score among validity/completeness/rigor/overall");
  return parts.reduce((a, b) => a + b, 0) / parts.length;
}

/** The judge replies as JSON Schema, for endpoints that enforce structured output. */
export const LOGIC_JUDGE_JSON = {
  name: "logic_judge",
  schema: z.toJSONSchema(LogicJudgeSchema) as Record<string, unknown>,
};

export const FusionJudgeSchema = z.looseObject({ score: unit });
export const FUSION_JUDGE_JSON = {
  name: "fusion_judge",
  schema: z.toJSONSchema(FusionJudgeSchema) as Record<string, unknown>,
};

export function parseFusionJudge(text: string): number {
  const raw = extractJsonValue(text, "object");
  if (raw === undefined) throw new Error("fusion judge: no JSON object in reply");
  const parsed = FusionJudgeSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`fusion judge: field ${issue.path.join(".") || "score"}: ${issue.message}`);
  }
  return parsed.data.score;
}

const EquivalenceSchema = z.looseObject({ equivalent: z.boolean() });
export const EQUIVALENCE_JSON = {
  name: "answer_equivalence",
  schema: z.toJSONSchema(EquivalenceSchema) as Record<string, unknown>,
};

export function parseEquivalence(text: string): boolean {
  const raw = extractJsonValue(text, "object");
  const parsed = EquivalenceSchema.safeParse(raw);
  if (!parsed.success) throw new Error('answer equivalence: expected {"equivalent": true|false}');
  return parsed.data.equivalent;
}

const weightSchema = z.strictObject({
  ans: z.number().min(0),
  logic: z.number().min(0),
  graph: z.number().min(0),
  fusion: z.number().min(0).optional(),
});

export const RewardWeightsFileSchema = z.strictObject({
  generator_1: weightSchema.optional(),
  generator_2: weightSchema.optional(),
  generator_3: weightSchema.optional(),
  critic: weightSchema.extend({ fusion: z.number().min(0) }).optional(),
});

export interface RewardWeightSet {
  generators: Record<GeneratorId, RewardWeights>;
  critic: RewardWeights;
}

/**
 * Reward weights from a JSON file such as
 * `{"generator_2": {"ans": 0.8, "logic": 0.1, "graph": 0.1}, "critic": {"ans": 0.4, "logic": 0.2, "graph": 0.1, "fusion": 0.3}}`;
 * agents left out keep their defaults. Weights need not sum to 1, but a warning-free setup does.
 */
export function loadRewardWeights(path: string): RewardWeightSet {
  const parsed = RewardWeightsFileSchema.safeParse(
    readJsonFile(path, { missing: "reward weights file not found" }),
  );
  if (!parsed.success) throw zodFileError(path, parsed.error);
  const f = parsed.data;
  return {
    generators: {
      1: f.generator_1 ?? DEFAULT_GENERATOR_WEIGHTS[1],
      2: f.generator_2 ?? DEFAULT_GENERATOR_WEIGHTS[2],
      3: f.generator_3 ?? DEFAULT_GENERATOR_WEIGHTS[3],
    },
    critic: f.critic ?? DEFAULT_CRITIC_WEIGHTS,
  };
}
