/** The solver a training-free command runs on: clients, engine, libraries and data. */
import { isAbsolute, resolve } from "node:path";
import { Rng } from "../../core/rng.ts";
import { DEFAULT_DATASET_CONFIG, loadDataset, loadDatasetConfig, type Problem } from "../../data/datasets.ts";
import {
  AGENTS,
  type AgentName,
  createClients,
  DEFAULT_CONFIG_PATH,
  type LLMClient,
  loadApiConfig,
} from "../../llm/index.ts";
import type { ExtractionMode } from "../../training-free/triggers.ts";
import { CausalScaffoldEngine } from "./engine.ts";
import { DEFAULT_EXTRACTION } from "./extraction.ts";
import { ExperienceManager } from "./libraries.ts";
import type { ProgressFactory } from "./progress.ts";
import { PromptSet } from "./prompts.ts";
import { loadRewardWeights } from "./rewards.ts";
import { recordRunUsage } from "./usage-log.ts";

/** What every training-free command configures: files, endpoints, learning rule and scoring. */
export interface SolverOptions {
  config?: string;
  datasetConfig?: string;
  workdir: string;
  concurrency?: number;
  seed: number;
  promptsDir?: string;
  mode: ExtractionMode;
  tau: number;
  llmEquivalence?: boolean;
  rewardWeights?: string;
}

function inWorkdir(workdir: string, path: string | undefined, fallback: string): string {
  const p = path ?? fallback;
  return isAbsolute(p) ? p : resolve(path === undefined ? workdir : process.cwd(), p);
}

export interface Runtime {
  workdir: string;
  clients: Record<AgentName, LLMClient>;
  engine: CausalScaffoldEngine;
  experiences: ExperienceManager;
  startedAt: Date;
  loadProblems(datasets: string[], opts?: { start?: number; max?: number }): Problem[];
  /** Writes this command's usage and refreshes grpo_training/run_summary.json. */
  finish(command: string): void;
}

export function buildRuntime(
  opts: SolverOptions,
  temperatures: { generator?: number; critic?: number } = {},
  progress?: ProgressFactory,
): Runtime {
  const workdir = resolve(opts.workdir);
  const configPath = inWorkdir(workdir, opts.config, DEFAULT_CONFIG_PATH);
  const endpoints = loadApiConfig(configPath);
  if (opts.concurrency !== undefined) for (const a of AGENTS) endpoints[a].maxConcurrency = opts.concurrency;
  const clients = createClients(endpoints, { rng: new Rng(opts.seed) });
  const weights = opts.rewardWeights ? loadRewardWeights(resolve(opts.rewardWeights)) : undefined;
  const engine = new CausalScaffoldEngine({
    ...(weights ? { generatorWeights: weights.generators, criticWeights: weights.critic } : {}),
    clients,
    workdir,
    prompts: new PromptSet(opts.promptsDir),
    generatorTemperature: temperatures.generator,
    criticTemperature: temperatures.critic,
    extraction: { ...DEFAULT_EXTRACTION, mode: opts.mode, tau: opts.tau },
    llmEquivalence: opts.llmEquivalence,
    concurrency: opts.concurrency ?? Math.max(...AGENTS.map((a) => endpoints[a].maxConcurrency)),
    progress,
  });
  const datasetConfigPath = inWorkdir(workdir, opts.datasetConfig, DEFAULT_DATASET_CONFIG);
  const startedAt = new Date();
  return {
    workdir,
    clients,
    engine,
    experiences: new ExperienceManager({ workdir }),
    startedAt,
    loadProblems(datasets, range = {}) {
      const config = loadDatasetConfig(datasetConfigPath);
      const all = loadDataset(datasets, config, datasetConfigPath);
      const start = range.start ?? 0;
      return all.slice(start, range.max === undefined ? undefined : start + range.max);
    },
    finish(command) {
      recordRunUsage(
        workdir,
        command,
        startedAt,
        AGENTS.map((a) => clients[a].stats()),
      );
    },
  };
}
