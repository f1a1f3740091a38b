/** Run directories for the report tests, written with the project's own writers where they exist. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { appendJsonl, writeJsonAtomic } from "../../src/io/files.ts";
import type { UsageStats } from "../../src/llm/client.ts";
import { emptyByKind } from "../../src/llm/client.ts";
import { initBackend } from "../../src/model/backend.ts";
import { libraryIdentity, libraryPath } from "../../src/recipes/causal-scaffold/libraries.ts";
import { cacheDir, criticResultsPath, generatorCachePath } from "../../src/recipes/causal-scaffold/paths.ts";
import {
  appendCriticRecord,
  appendProblemRecord,
  type ProblemRecord,
} from "../../src/recipes/causal-scaffold/rollout-cache.ts";
import { recordRunUsage } from "../../src/recipes/causal-scaffold/usage-log.ts";
import { prepareTheoryTrainer, QUICK_THEORY_RUN } from "../../src/recipes/theory/run.ts";
import { accuracyAtK } from "../../src/training-free/evaluate.ts";
import { ExperienceLibrary } from "../../src/training-free/experience-library.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-report-");

/** A directory removed when the test file that imports these fixtures ends. */
export function tempDir(prefix: string): string {
  return tmp(`${prefix}-`);
}

export const HOSTILE = `<img src=x onerror="console.error('injected')"></td></table><script>throw new Error("injected")</script>`;

/** A parametric run in the trainer's format: history lines (eval on even steps), stats, checkpoints. */
export function writeParametricRun(dir: string, steps = 6): string {
  mkdirSync(dir, { recursive: true });
  for (let s = 1; s <= steps; s++) {
    const line: Record<string, number | null> = {
      step: s,
      reward: s / 10,
      reward_std: 0.05,
      frac_reward_zero_std: 0,
      kl: 0.001 * s,
      entropy: 2 - s / 100,
      "clip_ratio/low_mean": 0,
      "clip_ratio/high_mean": 0.01,
      "completions/mean_length": 10 + s,
      "completions/clipped_ratio": 0,
      trainable_tokens_ratio: 0.8,
      loss: -0.01,
      success_rate: s / steps,
      step_time: 0.5,
      my_custom_metric: s * s,
      grad_norm: null,
    };
    if (s % 2 === 0) {
      line.eval_success_rate = s === 4 ? 0.9 : 0.5;
      line.eval_reward = s === 4 ? 0.8 : 0.4;
    }
    appendJsonl(join(dir, "history.jsonl"), line);
  }
  const config = { groupSize: 8, loss: { beta: 0.05, lossType: "grpo" }, note: HOSTILE };
  writeJsonAtomic(join(dir, "training_stats.json"), {
    steps,
    best: { successRate: 0.9, reward: 0.8, step: 4 },
    config,
  });
  for (const [name, step] of [
    ["best_model", 4],
    ["final", steps],
    ["checkpoint-2", 2],
    ["checkpoint-4", 4],
  ] as const) {
    writeJsonAtomic(join(dir, name, "metadata.json"), {
      step,
      accuracy: 0.5,
      success_rate: 0.5,
      reward: 0.4,
      config,
    });
  }
  appendJsonl(join(dir, "samples.jsonl"), {
    step: 2,
    completions: [
      { text: "good theory", reward: 0.9 },
      { text: HOSTILE, reward: -1 },
      { text: "so-so", reward: 0.1 },
    ],
  });
  return dir;
}

const SCAFFOLD = { target_variable: "x", knowns: { a: 1 }, causal_graph: [], computation_plan: [] };

function rollouts(totals: number[], correct: boolean[]): ProblemRecord["rollouts"] {
  return totals.map((r_total, i) => ({
    rollout_id: i,
    scaffold: SCAFFOLD,
    answer: correct[i] ? "42" : "7",
    is_correct: correct[i]!,
    r_ans: correct[i] ? 1 : 0,
    r_logic: 0.5,
    r_graph: 0.5,
    r_total,
  }));
}

function stats(agent: string, promptTokens: number, completionTokens: number, costUSD: number): UsageStats {
  return {
    agent,
    model: "test-model",
    calls: 3,
    failedCalls: 0,
    retries: 0,
    promptTokens,
    completionTokens,
    costUSD,
    cacheHits: 0,
    byKind: emptyByKind(),
  };
}

/**
 * A training-free working directory: three generators × `problems` problems (rewards chosen so
 * that μ and σ are easy to check by hand), critic fusions, libraries with an add/modify/delete
 * history, a run summary and a tf-eval result. Generator 1 also has a problem "pf" whose second
 * and third rollouts failed (rate_limit, schema), and the critic one whose fusion failed (timeout).
 */
export function writeTrainingFreeRun(dir: string, problems = 4, shift = 0): string {
  const cache = cacheDir(dir);
  const when = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
  for (const g of [1, 2, 3] as const) {
    for (let p = 0; p < problems; p++) {
      const totals = [1, 0, 0.5].map((r) => Math.min(1, r + shift + 0.05 * p * (g - 1)));
      appendProblemRecord(generatorCachePath(cache, g), {
        problem_id: `p${p}`,
        problem_text: p === 0 ? HOSTILE : `problem ${p}`,
        ground_truth: "42",
        rollouts: rollouts(totals, [true, false, p % 2 === 0]),
        timestamp: when(p),
      });
    }
  }
  const failed = (kind: string) => ({
    scaffold: null,
    answer: null,
    is_correct: false,
    r_ans: 0,
    r_logic: 0,
    r_graph: 0,
    r_total: 0,
    error: `${kind} error after 5 attempts`,
    error_kind: kind,
  });
  appendProblemRecord(generatorCachePath(cache, 1), {
    problem_id: "pf",
    problem_text: "a problem that failed",
    ground_truth: "42",
    rollouts: [
      rollouts([1], [true])[0]!,
      { rollout_id: 1, ...failed("rate_limit") },
      { rollout_id: 2, ...failed("schema") },
    ],
    timestamp: when(problems),
  });
  appendCriticRecord(criticResultsPath(cache), {
    problem_id: "pf",
    generator_id: "generator_1",
    fused_scaffold: null,
    answer: null,
    is_correct: false,
    r_ans: 0,
    r_logic: 0,
    r_graph: 0,
    r_fusion: 0,
    r_total: 0,
    error: "fusion failed: timeout",
    error_kind: "timeout",
    timestamp: when(problems),
  });
  for (let p = 0; p < problems; p++) {
    for (const g of [1, 2, 3]) {
      appendCriticRecord(criticResultsPath(cache), {
        problem_id: `p${p}`,
        generator_id: `generator_${g}`,
        fused_scaffold: SCAFFOLD,
        answer: "42",
        is_correct: g !== 3,
        r_ans: 1,
        r_logic: 0.5,
        r_graph: 0.5,
        r_fusion: 0.5,
        r_total: 0.2 * g,
        timestamp: when(p),
      });
    }
  }
  let minute = 0;
  const now = () => new Date(Date.UTC(2026, 0, 1, 1, minute++));
  for (const owner of ["generator_1", "generator_2", "generator_3", "critic"] as const) {
    const lib = ExperienceLibrary.empty(libraryPath(dir, owner), libraryIdentity(owner));
    lib.apply(
      [
        { operation: "add", content: "Check units before combining quantities." },
        { operation: "add", content: `Draw the causal graph first; ${HOSTILE}` },
      ],
      { problemId: "p0", now },
    );
    const [first, second] = lib.entries().map((e) => e.id);
    lib.apply([{ operation: "modify", id: first!, content: "Check units and signs before combining." }], {
      problemId: "p1",
      now,
    });
    lib.apply([{ operation: "delete", id: second! }], { problemId: "p2", now });
    lib.apply([{ operation: "add", content: "Verify the answer lies in 0 to 999 for AIME." }], {
      problemId: "p3",
      now,
    });
    lib.save();
  }
  recordRunUsage(
    dir,
    "tf-train",
    new Date(Date.UTC(2026, 0, 1)),
    [
      stats("generator_1", 1000, 200, 0.01),
      stats("generator_2", 1100, 210, 0.02),
      stats("critic", 500, 100, 0.005),
    ],
    new Date(Date.UTC(2026, 0, 1, 2)),
  );
  const rec = (correct: boolean[]): ProblemRecord => ({
    problem_id: "e1",
    problem_text: "",
    ground_truth: "1",
    rollouts: rollouts(
      correct.map((c) => (c ? 1 : 0)),
      correct,
    ),
    timestamp: when(0),
  });
  const withArm = {
    perGenerator: { generator_1: accuracyAtK([rec([true, true])], 2) },
    overall: accuracyAtK([rec([true, true])], 2),
  };
  const withoutArm = {
    perGenerator: { generator_1: accuracyAtK([rec([true, false])], 2) },
    overall: accuracyAtK([rec([true, false])], 2),
  };
  writeJsonAtomic(join(dir, "grpo_training", "tf_eval_results.json"), {
    k: 2,
    problems: ["e1"],
    generators: [1],
    with_experiences: withArm,
    without_experiences: withoutArm,
    delta: { meanAtK: 0.5, passAtK: 0 },
  });
  return dir;
}

/** A parametric run damaged the ways a crash or a bad edit leaves it. */
export function writeBrokenRun(dir: string): string {
  mkdirSync(join(dir, "final"), { recursive: true });
  writeFileSync(
    join(dir, "history.jsonl"),
    '{"step":1,"reward":0.1}\n{"step":2,"reward":0.2}\n{"step":3,"rew',
  );
  writeFileSync(join(dir, "training_stats.json"), "{ not json");
  writeFileSync(join(dir, "final", "metadata.json"), "");
  mkdirSync(join(dir, "checkpoint-1"));
  return dir;
}

/** A real (tiny) theory run: 4 GRPO steps of 4 samples, evaluation and checkpoints every 2 steps. */
export async function realTheoryRun(dir: string): Promise<string> {
  await initBackend("cpu");
  const { trainer } = await prepareTheoryTrainer(
    {
      ...QUICK_THEORY_RUN,
      maxSteps: 4,
      numGenerations: 4,
      sftSteps: 0,
      evalInterval: 2,
      evalSamples: 4,
      saveInterval: 2,
      outputDir: dir,
    },
    { log: () => {} },
  );
  await trainer.train(4);
  trainer.policy.dispose();
  return dir;
}
