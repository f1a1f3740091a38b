/**
 * The solver's result files, in the seed system's documented layouts (extra fields of ours stand
 * beside them):
 *
 * - generator cache line: `{problem_id, problem_text, ground_truth, rollouts: [{rollout_id,
 *   scaffold, answer, is_correct, r_ans, r_logic, r_graph, r_total}], timestamp}`;
 * - critic line, one per problem × generator: `{problem_id, problem_text, ground_truth,
 *   generator_id, fused_scaffold, final_answer, is_correct, rewards: {r_ans, r_logic, r_graph,
 *   r_fusion, r_total}, timestamp}`.
 *
 * A rollout whose `scaffold` is null (a fusion whose `fused_scaffold` is null) failed: it is not
 * a result, and its problem is not complete until a rerun redoes it. Its rewards are all 0 and
 * it is wrong, whatever a file recorded (the seed writes 0.5 for r_logic and r_graph).
 */
import { z } from "zod";
import { appendJsonlWhole, FileFormatError, readJsonl } from "../../io/files.ts";
import type { Scaffold } from "./scaffold.ts";
import { type ParseResult, parseScaffold } from "./scaffold-parse.ts";

/** Token and cost accounting of the LLM calls behind one record. */
export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  cost_usd?: number;
  calls?: number;
  [key: string]: unknown;
}

export interface RolloutRecord {
  rollout_id: number;
  /** Seed files store Python-repr strings; new records store the parsed object; null = failed. */
  scaffold: Scaffold | string | null;
  answer: string | number | null;
  is_correct: boolean;
  r_ans: number;
  r_logic: number;
  r_graph: number;
  r_total: number;
  /** Why it failed (a failed rollout), or what went wrong without spoiling it (a note). */
  error?: string;
  /** The cause of a failure: an LLM error kind (rate_limit, schema, …), or "stopped". */
  error_kind?: string;
  /** A failed rollout's scaffold when only its scoring failed: a rerun scores it instead of asking again. */
  unscored_scaffold?: Scaffold | string;
  usage?: Usage;
}

/** Whether a group taught the library, and what it changed. */
export interface ExtractionNote {
  triggered: boolean;
  reason: string;
  /** The group is recorded but its learning step has not finished (a crash) — a rerun does it. */
  pending?: boolean;
  /** The learning step failed (see error); a rerun does it again. */
  failed?: boolean;
  error?: string;
  operations?: unknown[];
  [key: string]: unknown;
}

export interface ProblemRecord {
  problem_id: string;
  problem_text: string;
  ground_truth: string;
  rollouts: RolloutRecord[];
  timestamp: string;
  mean?: number;
  std?: number;
  extraction?: ExtractionNote;
}

/** The rewards of a failed rollout or fusion, the one convention everything reads and writes. */
export const FAILED_REWARDS = { r_ans: 0, r_logic: 0, r_graph: 0, r_total: 0 } as const;

const UsageSchema = z
  .object({
    prompt_tokens: z.number().optional(),
    completion_tokens: z.number().optional(),
    total_tokens: z.number().optional(),
    cost_usd: z.number().optional(),
    calls: z.number().optional(),
  })
  .loose();

/** Stored scaffolds are kept as written; they are only interpreted through scaffoldOf. */
const StoredScaffold = z.union([z.string(), z.record(z.string(), z.unknown()), z.null()]);

const answerField = z
  .union([z.string(), z.number(), z.null()])
  .optional()
  .transform((v) => v ?? null);

const rewardFields = {
  r_ans: z.number(),
  r_logic: z.number(),
  r_graph: z.number(),
  r_total: z.number(),
};

const noteFields = {
  error: z.string().optional(),
  error_kind: z.string().optional(),
  usage: UsageSchema.optional(),
};

const RolloutRecordSchema = z
  .object({
    rollout_id: z.number().int(),
    scaffold: StoredScaffold.optional().transform((v) => v ?? null),
    answer: answerField,
    is_correct: z.boolean(),
    ...rewardFields,
    ...noteFields,
    unscored_scaffold: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  })
  .loose();

const ProblemRecordSchema = z
  .object({
    problem_id: z.string().min(1),
    problem_text: z.string(),
    ground_truth: z.union([z.string(), z.number()]).transform(String),
    rollouts: z.array(RolloutRecordSchema),
    timestamp: z.string(),
    mean: z.number().optional(),
    std: z.number().optional(),
    extraction: z
      .object({
        triggered: z.boolean(),
        reason: z.string(),
        pending: z.boolean().optional(),
        failed: z.boolean().optional(),
        error: z.string().optional(),
        operations: z.array(z.unknown()).optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

function fieldOf(err: z.ZodError): string {
  const issue = err.issues[0];
  return issue ? issue.path.map(String).join(".") : "";
}

/** Validate every line of a JSONL cache, reporting the first bad field with file and line. */
function readValidated<T>(
  path: string,
  schema: z.ZodType<T>,
): { rows: { line: number; row: T }[]; torn: boolean } {
  const { records, torn } = readJsonl(path);
  const rows: { line: number; row: T }[] = [];
  for (const { line, value } of records) {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new FileFormatError(
        path,
        line,
        fieldOf(parsed.error) || undefined,
        parsed.error.issues[0]!.message,
      );
    }
    rows.push({ line, row: parsed.data });
  }
  return { rows, torn };
}

/** A failed rollout scores 0 and is wrong, whatever the file says. */
function withFailureConvention(r: RolloutRecord): RolloutRecord {
  if (r.scaffold !== null) return r;
  return { ...r, answer: null, is_correct: false, ...FAILED_REWARDS };
}

export interface RolloutCache {
  /** Latest record per problem, in the order of each problem's first line. */
  problems: Map<string, ProblemRecord>;
  /** Line of each problem's latest record, for messages. */
  lines: Map<string, number>;
  torn: boolean;
}

/**
 * Read a generator rollout cache. A later line for the same problem supersedes an earlier one
 * (a rerun appends rather than rewrites) while the problem keeps the position of its first line;
 * a torn last line is reported, not fatal.
 */
export function readRolloutCache(path: string): RolloutCache {
  const { rows, torn } = readValidated(path, ProblemRecordSchema as unknown as z.ZodType<ProblemRecord>);
  const problems = new Map<string, ProblemRecord>();
  const lines = new Map<string, number>();
  for (const { line, row } of rows) {
    problems.set(row.problem_id, { ...row, rollouts: row.rollouts.map(withFailureConvention) });
    lines.set(row.problem_id, line);
  }
  return { problems, lines, torn };
}

/** Append one problem as one complete line, after dropping a torn tail left by a killed run. */
export function appendProblemRecord(path: string, rec: ProblemRecord): void {
  appendValidated(path, rec, ProblemRecordSchema, "problem");
}

/** Refuses a record its own reader would reject, so that nothing unreadable reaches a cache. */
function appendValidated(path: string, rec: unknown, schema: z.ZodType, kind: string): void {
  const parsed = schema.safeParse(rec);
  if (!parsed.success) {
    throw new Error(
      `refusing to write an invalid ${kind} record to ${path}: ${fieldOf(parsed.error)}: ${parsed.error.issues[0]!.message}`,
    );
  }
  appendJsonlWhole(path, rec);
}

export function isFailedRollout(r: RolloutRecord): boolean {
  return r.scaffold === null;
}

/**
 * A problem is complete when it has rollouts and none failed; when the agent learns, also when
 * its learning step is not pending or failed.
 */
export function isCompleteRecord(rec: ProblemRecord, opts: { learn?: boolean } = {}): boolean {
  if (rec.rollouts.length === 0 || rec.rollouts.some(isFailedRollout)) return false;
  if (opts.learn === false) return true;
  return !(rec.extraction?.pending || rec.extraction?.failed);
}

/** Problems whose record is complete, so that a rerun can skip them. */
export function completedProblemIds(path: string, opts: { learn?: boolean } = {}): Set<string> {
  const out = new Set<string>();
  for (const [id, rec] of readRolloutCache(path).problems) if (isCompleteRecord(rec, opts)) out.add(id);
  return out;
}

/** The rollout's scaffold as a validated object, whichever form the file stored. */
export function scaffoldOf(r: RolloutRecord): ParseResult {
  return parseScaffold(r.scaffold);
}

/**
 * The critic's fusion of one generator's rollouts for one problem, with the critic's own
 * rewards, as the code uses it (the file nests the rewards, see toCriticLine).
 */
export interface CriticRecord {
  problem_id: string;
  /** "generator_1", "generator_2" or "generator_3". */
  generator_id: string;
  problem_text?: string;
  ground_truth?: string;
  /** Rollout ids of the generator whose scaffolds were fused. */
  source_rollouts?: number[];
  /** null: the fusion failed. */
  fused_scaffold: Scaffold | string | null;
  answer: string | number | null;
  is_correct: boolean;
  r_ans: number;
  r_logic: number;
  r_graph: number;
  r_fusion: number;
  r_total: number;
  timestamp: string;
  error?: string;
  error_kind?: string;
  /** A failed fusion's scaffold when only its scoring failed. */
  unscored_fusion?: Scaffold | string;
  usage?: Usage;
}

const generatorIdField = z
  .union([z.string().min(1), z.number().int()])
  .transform((g) => (typeof g === "number" ? `generator_${g}` : g));

const criticCommon = {
  problem_id: z.string().min(1),
  generator_id: generatorIdField,
  problem_text: z.string().optional(),
  ground_truth: z.union([z.string(), z.number()]).transform(String).optional(),
  source_rollouts: z.array(z.number().int()).optional(),
  fused_scaffold: StoredScaffold.optional().transform((v) => v ?? null),
  is_correct: z.boolean(),
  timestamp: z.string(),
  ...noteFields,
  unscored_fusion: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
};

/** The seed's layout: `final_answer` and nested `rewards`. */
const SeedCriticLine = z
  .object({
    ...criticCommon,
    final_answer: answerField,
    rewards: z.object({ ...rewardFields, r_fusion: z.number() }).loose(),
  })
  .loose();

/** The flat layout earlier versions of this project wrote: `answer` and top-level rewards. */
const FlatCriticLine = z
  .object({ ...criticCommon, answer: answerField, ...rewardFields, r_fusion: z.number() })
  .loose();

function toCriticRecord(line: z.infer<typeof SeedCriticLine> | z.infer<typeof FlatCriticLine>): CriticRecord {
  const { rewards, final_answer, answer, r_ans, r_logic, r_graph, r_fusion, r_total, ...rest } =
    line as Record<string, unknown> & { rewards?: Record<string, number> };
  const nested = rewards !== undefined;
  const rec = {
    ...rest,
    answer: (nested ? final_answer : answer) ?? null,
    r_ans: nested ? rewards.r_ans : r_ans,
    r_logic: nested ? rewards.r_logic : r_logic,
    r_graph: nested ? rewards.r_graph : r_graph,
    r_fusion: nested ? rewards.r_fusion : r_fusion,
    r_total: nested ? rewards.r_total : r_total,
  } as CriticRecord;
  if (rec.fused_scaffold !== null) return rec;
  return { ...rec, answer: null, is_correct: false, r_fusion: 0, ...FAILED_REWARDS };
}

const CriticLineSchema = z.unknown().transform((v, ctx) => {
  const seed = v !== null && typeof v === "object" && "rewards" in v;
  const parsed = (seed ? SeedCriticLine : FlatCriticLine).safeParse(v);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: issue.path } as never);
    return z.NEVER;
  }
  return toCriticRecord(parsed.data);
});

/** A critic record in the seed's line layout, our extra fields beside it. */
export function toCriticLine(rec: CriticRecord): Record<string, unknown> {
  const { answer, r_ans, r_logic, r_graph, r_fusion, r_total, problem_text, ground_truth, ...extra } = rec;
  return {
    problem_id: rec.problem_id,
    problem_text: problem_text ?? "",
    ground_truth: ground_truth ?? "",
    generator_id: rec.generator_id,
    fused_scaffold: rec.fused_scaffold,
    final_answer: answer,
    is_correct: rec.is_correct,
    rewards: { r_ans, r_logic, r_graph, r_fusion, r_total },
    timestamp: rec.timestamp,
    ...Object.fromEntries(
      Object.entries(extra).filter(
        ([k, v]) =>
          v !== undefined &&
          !["problem_id", "generator_id", "fused_scaffold", "is_correct", "timestamp"].includes(k),
      ),
    ),
  };
}

/** Key of a critic record: one fusion per problem and generator. */
export function criticKey(problemId: string, generatorId: string): string {
  return `${problemId}\u0000${generatorId}`;
}

/**
 * Read the critic cache (the seed's layout, or the flat one of earlier versions). A later line
 * for the same problem and generator supersedes the earlier one and keeps its position; a torn
 * last line is skipped (appendCriticRecord repairs it).
 */
export function readCriticResults(path: string): CriticRecord[] {
  const { rows } = readValidated(path, CriticLineSchema as unknown as z.ZodType<CriticRecord>);
  const records = new Map<string, CriticRecord>();
  for (const { row } of rows) records.set(criticKey(row.problem_id, row.generator_id), row);
  return [...records.values()];
}

export function appendCriticRecord(path: string, rec: CriticRecord): void {
  appendValidated(path, toCriticLine(rec), CriticLineSchema, "critic");
}

export function isFailedFusion(r: CriticRecord): boolean {
  return r.fused_scaffold === null;
}

/**
 * The state of the critic's learning step for one problem (its group is that problem's fusions,
 * one per generator), in `critic_learning.jsonl` beside the critic results: "pending" is written
 * before the fusions that complete a group that will teach, "done" or "failed" after the step.
 * A problem without a line has nothing outstanding.
 */
export interface CriticLearningRecord {
  problem_id: string;
  status: "pending" | "done" | "failed";
  reason: string;
  added?: string[];
  modified?: string[];
  deleted?: string[];
  merged?: string[];
  error?: string;
  timestamp: string;
}

const CriticLearningSchema = z
  .object({
    problem_id: z.string().min(1),
    status: z.enum(["pending", "done", "failed"]),
    reason: z.string(),
    added: z.array(z.string()).optional(),
    modified: z.array(z.string()).optional(),
    deleted: z.array(z.string()).optional(),
    merged: z.array(z.string()).optional(),
    error: z.string().optional(),
    timestamp: z.string(),
  })
  .loose();

/** The latest learning state per problem. */
export function readCriticLearning(path: string): Map<string, CriticLearningRecord> {
  const { rows } = readValidated(path, CriticLearningSchema as unknown as z.ZodType<CriticLearningRecord>);
  const out = new Map<string, CriticLearningRecord>();
  for (const { row } of rows) out.set(row.problem_id, row);
  return out;
}

export function appendCriticLearning(path: string, rec: CriticLearningRecord): void {
  appendValidated(path, rec, CriticLearningSchema, "critic learning");
}
