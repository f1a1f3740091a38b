import { z } from "zod";
import { appendJsonl, FileFormatError, readJsonl, repairJsonlTail } from "../../io/files.ts";
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
  error?: string;
  usage?: Usage;
}

export interface ProblemRecord {
  problem_id: string;
  problem_text: string;
  ground_truth: string;
  rollouts: RolloutRecord[];
  timestamp: string;
  mean?: number;
  std?: number;
  /** Whether this group taught the library, and what it changed; extra counters are kept. */
  extraction?: { triggered: boolean; reason: string; operations?: unknown[]; [key: string]: unknown };
}

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

/** What a generator rollout and a critic fusion both record: the answer and its rewards. */
const scoredFields = {
  answer: z
    .union([z.string(), z.number(), z.null()])
    .optional()
    .transform((v) => v ?? null),
  is_correct: z.boolean(),
  r_ans: z.number(),
  r_logic: z.number(),
  r_graph: z.number(),
  r_total: z.number(),
  error: z.string().optional(),
  usage: UsageSchema.optional(),
};

const RolloutRecordSchema = z
  .object({
    rollout_id: z.number().int(),
    scaffold: StoredScaffold.optional().transform((v) => v ?? null),
    ...scoredFields,
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
      .object({ triggered: z.boolean(), reason: z.string(), operations: z.array(z.unknown()).optional() })
      .loose()
      .optional(),
  })
  .loose();

function fieldOf(err: z.ZodError): string {
  const issue = err.issues[0];
  return issue ? issue.path.map(String).join(".") : "";
}

/** Validate every line of a JSONL cache, reporting the first bad field with file and line. */
function readValidated<T>(path: string, schema: z.ZodType<T>): { rows: T[]; torn: boolean } {
  const { records, torn } = readJsonl(path);
  const rows: T[] = [];
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
    rows.push(parsed.data);
  }
  return { rows, torn };
}

/**
 * Read a generator rollout cache. A later line for the same problem supersedes an earlier one
 * (a rerun appends rather than rewrites), and a torn last line is reported, not fatal.
 */
export function readRolloutCache(path: string): { problems: Map<string, ProblemRecord>; torn: boolean } {
  const { rows, torn } = readValidated(path, ProblemRecordSchema as unknown as z.ZodType<ProblemRecord>);
  const problems = new Map<string, ProblemRecord>();
  for (const row of rows) {
    problems.delete(row.problem_id);
    problems.set(row.problem_id, row);
  }
  return { problems, torn };
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
  repairJsonlTail(path);
  appendJsonl(path, rec);
}

/** Problems already in the cache, so that a rerun can skip them. */
export function completedProblemIds(path: string): Set<string> {
  return new Set(readRolloutCache(path).problems.keys());
}

/** The rollout's scaffold as a validated object, whichever form the file stored. */
export function scaffoldOf(r: RolloutRecord): ParseResult {
  return parseScaffold(r.scaffold);
}

/**
 * One line of grpo_training/cache/critic_results.jsonl: the critic's fusion of one generator's
 * rollouts for one problem, with the critic's own rewards.
 */
export interface CriticRecord {
  problem_id: string;
  /** "generator_1", "generator_2" or "generator_3". */
  generator_id: string;
  /** Rollout ids of the generator whose scaffolds were fused. */
  source_rollouts?: number[];
  fused_scaffold: Scaffold | string | null;
  answer: string | number | null;
  is_correct: boolean;
  r_ans: number;
  r_logic: number;
  r_graph: number;
  r_fusion: number;
  r_total: number;
  timestamp: string;
  ground_truth?: string;
  error?: string;
  usage?: Usage;
}

const CriticRecordSchema = z
  .object({
    problem_id: z.string().min(1),
    generator_id: z
      .union([z.string().min(1), z.number().int()])
      .transform((g) => (typeof g === "number" ? `generator_${g}` : g)),
    source_rollouts: z.array(z.number().int()).optional(),
    fused_scaffold: StoredScaffold.optional().transform((v) => v ?? null),
    ...scoredFields,
    r_fusion: z.number(),
    timestamp: z.string(),
    ground_truth: z.union([z.string(), z.number()]).transform(String).optional(),
  })
  .loose();

/** Key of a critic record: one fusion per problem and generator. */
export function criticKey(problemId: string, generatorId: string): string {
  return `${problemId}\u0000${generatorId}`;
}

/**
 * Read the critic cache in file order. A later line for the same problem and generator
 * supersedes the earlier one; a torn last line is skipped (appendCriticRecord repairs it).
 */
export function readCriticResults(path: string): CriticRecord[] {
  const { rows } = readValidated(path, CriticRecordSchema as unknown as z.ZodType<CriticRecord>);
  const records = new Map<string, CriticRecord>();
  for (const row of rows) {
    const key = criticKey(row.problem_id, row.generator_id);
    records.delete(key);
    records.set(key, row);
  }
  return [...records.values()];
}

export function appendCriticRecord(path: string, rec: CriticRecord): void {
  appendValidated(path, rec, CriticRecordSchema, "critic");
}
