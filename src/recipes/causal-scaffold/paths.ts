import { join } from "node:path";
import type { GeneratorId } from "./rewards.ts";

/**
 * Where the training-free solver keeps its files under a working directory. Epoch 1 uses the
 * seed-compatible cache folder; later epochs get their own folder because the caches resume by
 * problem id and would otherwise skip every problem the first epoch already solved.
 */
export function cacheDir(workdir: string, epoch = 1): string {
  const base = join(workdir, "grpo_training", "cache");
  return epoch > 1 ? join(base, `epoch_${epoch}`) : base;
}

export function generatorCachePath(dir: string, id: GeneratorId): string {
  return join(dir, `generator_${id}_rollouts.jsonl`);
}

export function criticResultsPath(dir: string): string {
  return join(dir, "critic_results.jsonl");
}

export function runSummaryPath(workdir: string): string {
  return join(workdir, "grpo_training", "run_summary.json");
}

export function usageDir(workdir: string): string {
  return join(workdir, "grpo_training", "usage");
}

/** The state of the critic's learning step per problem (see CriticLearningRecord). */
export function criticLearningPath(dir: string): string {
  return join(dir, "critic_learning.jsonl");
}

/** The lock of one agent's files in a working directory: one writing process per agent. */
export function agentLockPath(workdir: string, agent: string): string {
  return join(workdir, "grpo_training", "locks", `${agent}.lock`);
}

/** Where tf-train records how far it got, so that a rerun continues instead of starting over. */
export function trainStatePath(workdir: string): string {
  return join(workdir, "grpo_training", "tf_train_state.json");
}

export function trainReportPath(workdir: string): string {
  return join(workdir, "grpo_training", "tf_train_report.json");
}

/** Folder of the state --restart moves aside. */
export function backupsDir(workdir: string): string {
  return join(workdir, "grpo_training", "backups");
}
