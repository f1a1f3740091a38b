/** The solver a training-free command runs on: clients, engine, libraries and data. */
import { isAbsolute, resolve } from "node:path";
import { createProgress } from "../cli/progress.ts";
import { Rng } from "../core/rng.ts";
import { DEFAULT_DATASET_CONFIG, loadDataset, loadDatasetConfig, type Problem } from "../data/datasets.ts";
import {
  AGENTS,
  type AgentName,
  createClients,
  DEFAULT_CONFIG_PATH,
  type LLMClient,
  loadApiConfig,
} from "../llm/index.ts";
import type { CommonOptions } from "./cli-runtime.ts";
import { CausalScaffoldEngine } from "./engine.ts";
import { ExperienceManager } from "./experience.ts";
import type { ExtractionSettings } from "./generator.ts";
import { PromptSet } from "./prompts.ts";
import { loadRewardWeights } from "./rewards.ts";
import { recordRunUsage } from "./usage-log.ts";

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
  opts: CommonOptions,
  temperatures: { generator?: number; critic?: number } = {},
  display: { plainProgress?: boolean } = {},
): Runtime {
  const workdir = resolve(opts.workdir);
  const configPath = inWorkdir(workdir, opts.config, DEFAULT_CONFIG_PATH);
  const endpoints = loadApiConfig(configPath);
  if (opts.concurrency !== undefined) for (const a of AGENTS) endpoints[a].maxConcurrency = opts.concurrency;
  const clients = createClients(endpoints, { rng: new Rng(opts.seed) });
  const extraction: ExtractionSettings = { mode: opts.mode, tau: opts.tau, temperature: 0.3 };
  const weights = opts.rewardWeights ? loadRewardWeights(resolve(opts.rewardWeights)) : undefined;
  const engine = new CausalScaffoldEngine({
    ...(weights ? { generatorWeights: weights.generators, criticWeights: weights.critic } : {}),
    clients,
    workdir,
    prompts: new PromptSet(opts.promptsDir),
    generatorTemperature: temperatures.generator,
    criticTemperature: temperatures.critic,
    extraction,
    llmEquivalence: opts.llmEquivalence,
    concurrency: opts.concurrency ?? Math.max(...AGENTS.map((a) => endpoints[a].maxConcurrency)),
    progress: (label, total) =>
      createProgress({
        label,
        total,
        stream: process.stderr,
        ...(display.plainProgress ? { tty: false } : {}),
      }),
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
