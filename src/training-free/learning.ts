/**
 * The two forms of the learning step. Each has a per-group part, which runs as soon as a group
 * is complete and sees the library its attempts saw, and a per-batch part, which turns the
 * batch's proposals into the operations applied to the library once per batch.
 *
 * - "semantic-advantage" (youtu-agent's Training-Free GRPO): summarise each attempt, contrast
 *   the group into candidate lessons, propose ADD / UPDATE / DELETE / NONE against the library,
 *   then merge all proposals of the batch in one call (a DELETE wins over an UPDATE).
 * - "extraction" (the seed solver's): summarise each attempt, then one call per group that
 *   returns add / modify / delete / keep operations; the batch applies them in task order.
 */
import type { ChatMessage } from "../llm/port.ts";
import type { ExperienceLibrary, ExperienceOperation } from "./experience-library.ts";
import {
  type AttemptView,
  DEFAULT_AGENT_OBJECTIVE,
  DEFAULT_LEARNER_PROMPTS,
  DEFAULT_LEARNING_OBJECTIVE,
  type LearnerBrief,
  type LearnerPrompts,
  parseLessons,
  type TaskView,
} from "./learner-prompts.ts";
import { parseOperations, resolveConflicts } from "./operations.ts";
import type { ExtractionMode } from "./triggers.ts";

/** When a group teaches: see decideExtraction. */
export type TriggerOptions = { mode: "variance"; tau?: number } | { mode: "mixed" } | { mode: "all" };

interface CommonLearningOptions {
  /** What the agent does, in a sentence or two; every learner prompt starts from it. */
  agentObjective?: string;
  /** What the lessons should improve, as text. */
  learningObjective?: string;
  /** Whether the learner sees the expected answers and the scores (true). */
  groundTruth?: boolean;
  trigger?: TriggerOptions;
  prompts?: Partial<LearnerPrompts>;
}

export interface SemanticAdvantageOptions extends CommonLearningOptions {
  form?: "semantic-advantage";
  /** Candidate lessons the contrast of one group may give (youtu-agent's default: 2). */
  lessonsPerTask?: number;
}

export interface ExtractionOptions extends CommonLearningOptions {
  form: "extraction";
}

export type LearningOptions = SemanticAdvantageOptions | ExtractionOptions;

/** A group ready to teach: every attempt has its score. */
export interface LearningGroup {
  task: TaskView;
  attempts: readonly AttemptView[];
  /** The learner's view of the library the attempts saw. */
  library: string;
}

export interface GroupProposal {
  task: string;
  ops: ExperienceOperation[];
  warnings: string[];
}

/** The operations one batch applies, each list attributed to the task (or batch) it came from. */
export interface BatchPlan {
  sources: { problemId: string; ops: ExperienceOperation[] }[];
  warnings: string[];
}

/** A learner call under a step name; the caller records, replays and counts it. */
export type StepCall = <T>(step: string, messages: ChatMessage[], parse: (text: string) => T) => Promise<T>;

export interface LearningForm {
  readonly name: "semantic-advantage" | "extraction";
  readonly trigger: { mode: ExtractionMode; tau: number };
  readonly brief: LearnerBrief;
  perGroup(group: LearningGroup, call: StepCall): Promise<GroupProposal>;
  perBatch(
    proposals: readonly GroupProposal[],
    library: ExperienceLibrary,
    call: StepCall,
    batchLabel: string,
  ): Promise<BatchPlan>;
}

/** youtu-agent's number of lessons one group's contrast may give. */
export const DEFAULT_LESSONS_PER_TASK = 2;
/** The seed's σ threshold, for the extraction form. */
export const EXTRACTION_TAU = 0.05;

function nonEmpty(what: string): (text: string) => string {
  return (text) => {
    const t = text.trim();
    if (t === "") throw new Error(`${what}: empty reply`);
    return t;
  };
}

async function summarise(
  group: LearningGroup,
  call: StepCall,
  prompts: LearnerPrompts,
  brief: LearnerBrief,
): Promise<string[]> {
  return Promise.all(
    group.attempts.map((a) =>
      call(
        `summarise/${a.number}`,
        prompts.summarise({ ...brief, task: group.task, attempt: a }),
        nonEmpty("summary"),
      ),
    ),
  );
}

function triggerOf(opts: LearningOptions): { mode: ExtractionMode; tau: number } {
  const t = opts.trigger;
  if (t) return { mode: t.mode, tau: t.mode === "variance" ? (t.tau ?? 0) : 0 };
  if (opts.form === "extraction") return { mode: "variance", tau: EXTRACTION_TAU };
  // Without ground truth the learner judges the attempts itself, so every group is material.
  return opts.groundTruth === false ? { mode: "all", tau: 0 } : { mode: "variance", tau: 0 };
}

export function learningForm(opts: LearningOptions, limits: LearnerBrief["limits"]): LearningForm {
  const brief: LearnerBrief = {
    agentObjective: opts.agentObjective ?? DEFAULT_AGENT_OBJECTIVE,
    learningObjective: opts.learningObjective ?? DEFAULT_LEARNING_OBJECTIVE,
    groundTruth: opts.groundTruth ?? true,
    limits,
  };
  const prompts: LearnerPrompts = { ...DEFAULT_LEARNER_PROMPTS, ...opts.prompts };
  const trigger = triggerOf(opts);
  if (opts.form === "extraction") {
    return {
      name: "extraction",
      trigger,
      brief,
      async perGroup(group, call) {
        const summaries = await summarise(group, call, prompts, brief);
        const parsed = await call(
          "extract",
          prompts.extract({
            ...brief,
            task: group.task,
            attempts: group.attempts,
            summaries,
            library: group.library,
          }),
          parseOperations,
        );
        return { task: group.task.id, ops: parsed.ops, warnings: parsed.warnings };
      },
      async perBatch(proposals) {
        return {
          sources: proposals.map((p) => ({ problemId: p.task, ops: p.ops })),
          warnings: [],
        };
      },
    };
  }
  const lessonsPerTask = opts.lessonsPerTask ?? DEFAULT_LESSONS_PER_TASK;
  if (!Number.isInteger(lessonsPerTask) || lessonsPerTask < 1)
    throw new RangeError(`learning.lessonsPerTask must be an integer ≥ 1, got ${lessonsPerTask}`);
  return {
    name: "semantic-advantage",
    trigger,
    brief,
    async perGroup(group, call) {
      const summaries = await summarise(group, call, prompts, brief);
      const lessons = await call(
        "contrast",
        prompts.contrast({ ...brief, task: group.task, attempts: group.attempts, summaries, lessonsPerTask }),
        parseLessons,
      );
      if (lessons.length === 0) return { task: group.task.id, ops: [], warnings: [] };
      const parsed = await call(
        "propose",
        prompts.propose({ ...brief, library: group.library, lessons: lessons.slice(0, lessonsPerTask) }),
        parseOperations,
      );
      // "keep" is not in this form's vocabulary; a NONE was already dropped by the parser.
      const ops = parsed.ops.filter((o) => o.operation !== "keep");
      return { task: group.task.id, ops, warnings: parsed.warnings };
    },
    async perBatch(proposals, library, call, batchLabel) {
      const all = proposals.flatMap((p) => p.ops);
      if (all.length === 0) return { sources: [], warnings: [] };
      const known = new Set(library.entries().map((e) => e.id));
      const show = (o: ExperienceOperation) =>
        JSON.stringify({
          operation: o.operation === "modify" ? "UPDATE" : o.operation.toUpperCase(),
          ...("id" in o ? { id: o.id } : {}),
          ...("content" in o ? { content: o.content } : {}),
        });
      const onId = (o: ExperienceOperation) => ("id" in o && known.has(o.id) ? o.id : undefined);
      const parsed = await call(
        "merge",
        prompts.merge({
          ...brief,
          library: library.entries().map((e) => ({
            id: e.id,
            content: e.content,
            proposals: all.filter((o) => onId(o) === e.id).map(show),
          })),
          unattached: all.filter((o) => onId(o) === undefined).map(show),
        }),
        parseOperations,
      );
      const ops = resolveConflicts(parsed.ops.filter((o) => o.operation !== "keep"));
      return { sources: [{ problemId: batchLabel, ops }], warnings: parsed.warnings };
    },
  };
}
