import { existsSync } from "node:fs";
import { groupStats } from "../../core/advantages.ts";
import { repairJsonlTail } from "../../io/files.ts";
import { errorText, userMessage } from "../../llm/messages.ts";
import type { ChatClient } from "../../llm/port.ts";
import { mapPool } from "../../training-free/pool.ts";
import { decideExtraction } from "../../training-free/triggers.ts";
import { DEFAULT_EXTRACTION, type ExtractionSettings, extractExperiences } from "./extraction.ts";
import type { ExperienceManager } from "./libraries.ts";
import { cacheDir, criticResultsPath, generatorCachePath } from "./paths.ts";
import type { Progress } from "./progress.ts";
import type { PromptSet } from "./prompts.ts";
import type { GeneratorId, RewardWeights } from "./rewards.ts";
import { DEFAULT_CRITIC_WEIGHTS, GENERATOR_IDS, parseFusionJudge, totalReward } from "./rewards.ts";
import {
  appendCriticRecord,
  type CriticRecord,
  criticKey,
  type ProblemRecord,
  readCriticResults,
  readRolloutCache,
  scaffoldOf,
} from "./rollout-cache.ts";
import type { Scaffold } from "./scaffold.ts";
import { parseScaffold } from "./scaffold-parse.ts";
import type { ProblemRef, ScoreOptions } from "./solve.ts";
import { judgeScaffold } from "./solve.ts";

export interface CriticOptions extends ScoreOptions {
  client: ChatClient;
  workdir: string;
  experiences: ExperienceManager;
  prompts: PromptSet;
  temperature: number;
  weights?: RewardWeights;
  extraction?: ExtractionSettings;
  learn?: boolean;
  generators?: readonly GeneratorId[];
  /** Only these problems (in this order); all problems of the caches otherwise. */
  problemIds?: readonly string[];
  maxProblems?: number;
  problemConcurrency?: number;
  /** Folder holding the generator caches and the critic results; epoch-1 folder by default. */
  cacheDir?: string;
  /** Called once the number of problems is known. */
  progress?: (total: number) => Progress | undefined;
  now?: () => Date;
}

export interface CriticSummary {
  resultsPath: string;
  fused: number;
  skipped: number;
  failed: number;
  extractions: number;
  warnings: string[];
  records: CriticRecord[];
}

/** The generator caches the critic reads; a missing one is an error that says how to make it. */
export function loadGeneratorCaches(
  dir: string,
  generators: readonly GeneratorId[],
): Map<GeneratorId, Map<string, ProblemRecord>> {
  const out = new Map<GeneratorId, Map<string, ProblemRecord>>();
  for (const g of generators) {
    const path = generatorCachePath(dir, g);
    if (!existsSync(path)) {
      throw new Error(
        `critic: rollout cache of generator ${g} not found: ${path}. ` +
          `Create it with \`grpo generator --id ${g} --dataset <name>\` (or \`grpo generators --all\`) first.`,
      );
    }
    out.set(g, readRolloutCache(path).problems);
  }
  return out;
}

function failedFusion(problem: ProblemRef, generator: GeneratorId, error: string, now: Date): CriticRecord {
  return {
    problem_id: problem.id,
    generator_id: `generator_${generator}`,
    source_rollouts: [],
    fused_scaffold: null,
    answer: null,
    is_correct: false,
    r_ans: 0,
    r_logic: 0,
    r_graph: 0,
    r_fusion: 0,
    r_total: 0,
    error,
    timestamp: now.toISOString(),
  };
}

/** Fuse one generator's rollouts for one problem and score the fusion. */
export async function fuseAndScore(
  opts: Pick<CriticOptions, "client" | "prompts" | "temperature" | "llmEquivalence" | "weights">,
  problem: ProblemRef,
  generator: GeneratorId,
  record: ProblemRecord,
  experiencesText: string,
  now: Date,
): Promise<CriticRecord> {
  const sources: number[] = [];
  const scaffolds: Scaffold[] = [];
  for (const r of record.rollouts) {
    const parsed = scaffoldOf(r);
    if (parsed.ok) {
      scaffolds.push(parsed.scaffold);
      sources.push(r.rollout_id);
    }
  }
  if (scaffolds.length === 0)
    return failedFusion(problem, generator, "no parseable scaffold among the rollouts", now);
  const scaffoldsText = scaffolds.map((s, i) => `Scaffold ${i + 1}:\n${JSON.stringify(s)}`).join("\n\n");
  const prompt = opts.prompts.render("fusion", {
    count: scaffolds.length,
    problem: problem.text,
    experiences: experiencesText,
    scaffolds: scaffoldsText,
  });
  let fused: Scaffold;
  try {
    const r = await opts.client.chat(userMessage(prompt), {
      temperature: opts.temperature,
      parse: (text) => {
        const p = parseScaffold(text);
        if (!p.ok) throw new Error(`fused scaffold: ${p.error}`);
        return p.scaffold;
      },
    });
    fused = r.value;
  } catch (err) {
    return failedFusion(problem, generator, `fusion failed: ${errorText(err)}`, now);
  }
  const judgePrompt = opts.prompts.render("fusion_judge", {
    problem: problem.text,
    scaffolds: scaffoldsText,
    fused: JSON.stringify(fused),
  });
  const notes: string[] = [];
  const [judged, r_fusion] = await Promise.all([
    judgeScaffold(opts.client, opts.prompts, problem, fused, { llmEquivalence: opts.llmEquivalence }),
    opts.client
      .chat(userMessage(judgePrompt), { temperature: 0, parse: parseFusionJudge })
      .then((r) => r.value)
      .catch((err: unknown) => {
        notes.push(`fusion judge failed: ${errorText(err)}`);
        return 0;
      }),
  ]);
  notes.push(...judged.notes);
  const parts = { r_ans: judged.r_ans, r_logic: judged.r_logic, r_graph: judged.r_graph, r_fusion };
  return {
    problem_id: problem.id,
    generator_id: `generator_${generator}`,
    source_rollouts: sources,
    fused_scaffold: fused,
    answer: judged.answer,
    is_correct: judged.r_ans === 1,
    ...parts,
    r_total: totalReward(parts, opts.weights ?? DEFAULT_CRITIC_WEIGHTS),
    ...(notes.length > 0 ? { error: notes.join("; ") } : {}),
    timestamp: now.toISOString(),
  };
}

/**
 * For each problem and each generator separately, fuse that generator's rollouts into one
 * scaffold. Results are appended per (problem, generator), which is also the resume key. The
 * critic learns from the group of its fusions of one problem (one per generator).
 */
export async function runCritic(opts: CriticOptions): Promise<CriticSummary> {
  const generators = opts.generators ?? GENERATOR_IDS;
  const dir = opts.cacheDir ?? cacheDir(opts.workdir);
  const caches = loadGeneratorCaches(dir, generators);
  const resultsPath = criticResultsPath(dir);
  repairJsonlTail(resultsPath);
  const doneKeys = new Set(
    readCriticResults(resultsPath).map((r) => criticKey(r.problem_id, r.generator_id)),
  );
  const extraction = opts.extraction ?? DEFAULT_EXTRACTION;
  const learn = opts.learn ?? true;
  const library = opts.experiences.library("critic");
  const now = () => (opts.now ? opts.now() : new Date());

  let ids: string[];
  if (opts.problemIds) ids = [...opts.problemIds];
  else {
    const seen = new Set<string>();
    ids = [];
    for (const g of generators)
      for (const id of caches.get(g)!.keys()) {
        if (seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
      }
  }
  if (opts.maxProblems !== undefined) ids = ids.slice(0, opts.maxProblems);

  const progress = opts.progress?.(ids.length);
  const summary: CriticSummary = {
    resultsPath,
    fused: 0,
    skipped: 0,
    failed: 0,
    extractions: 0,
    warnings: [],
    records: [],
  };
  await mapPool(ids, opts.problemConcurrency ?? 1, async (id) => {
    const pending = generators.filter(
      (g) => caches.get(g)!.has(id) && !doneKeys.has(criticKey(id, `generator_${g}`)),
    );
    const available = generators.filter((g) => caches.get(g)!.has(id)).length;
    summary.skipped += available - pending.length;
    if (pending.length === 0) {
      progress?.tick(1, { skipped: id });
      return;
    }
    const first = caches.get(pending[0]!)!.get(id)!;
    const problem: ProblemRef = { id, text: first.problem_text, answer: first.ground_truth };
    const experiencesText = library.formatForPrompt(opts.experiences.library("shared").entries());
    const results = await Promise.all(
      pending.map(async (g) => {
        const rec = await fuseAndScore(opts, problem, g, caches.get(g)!.get(id)!, experiencesText, now());
        return { g, rec };
      }),
    );
    const totals = results.map((r) => r.rec.r_total);
    const decision = decideExtraction(
      totals,
      results.map((r) => r.rec.is_correct),
      extraction,
    );
    if (learn && results.length >= 2 && decision.extract) {
      const outcome = await extractExperiences({
        client: opts.client,
        prompts: opts.prompts,
        library,
        problem,
        attempts: results.map(({ g, rec }) => ({
          id: g,
          scaffoldText: rec.fused_scaffold
            ? JSON.stringify(rec.fused_scaffold)
            : `(no fusion: ${rec.error ?? "unknown"})`,
          answer: rec.answer === null ? null : String(rec.answer),
          isCorrect: rec.is_correct,
          reward: rec.r_total,
        })),
        temperature: extraction.temperature,
        now,
      });
      for (const w of outcome.warnings) {
        summary.warnings.push(w);
        progress?.log(`warning: ${w}`);
      }
      if (outcome.error) progress?.log(`critic experience extraction failed on ${id}: ${outcome.error}`);
      await library.saveAsync();
      summary.extractions++;
    }
    for (const { rec } of results) {
      appendCriticRecord(resultsPath, rec);
      summary.records.push(rec);
      summary.fused++;
      if (rec.fused_scaffold === null) summary.failed++;
    }
    const { mean, std } = groupStats(totals);
    progress?.tick(1, {
      μ: mean,
      σ: std,
      learn: learn && results.length >= 2 && decision.extract ? "yes" : "no",
    });
  });
  progress?.stop();
  return summary;
}
