import { isAbsolute, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
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
import { CausalScaffoldEngine } from "./engine.ts";
import { ExperienceManager } from "./experience.ts";
import type { ExtractionSettings } from "./generator.ts";
import { PromptSet } from "./prompts.ts";
import { DEFAULT_TAU, type ExtractionMode, type GeneratorId, loadRewardWeights } from "./rewards.ts";
import { recordRunUsage } from "./usage-log.ts";

/** Options every training-free command accepts. */
export interface CommonOptions {
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

export function parsePositiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} must be an integer ≥ 1, got "${v}"`);
    return n;
  };
}

export function parseNonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be an integer ≥ 0, got "${v}"`);
    return n;
  };
}

export function parseUnitFloat(name: string, max = 2) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`${name} must be in [0, ${max}], got "${v}"`);
    return n;
  };
}

/** A comma list of generator ids such as "1,3", for the flag named; duplicates collapse. */
export function parseGeneratorList(flag: string) {
  return (v: string): GeneratorId[] => {
    const ids = v.split(",").map((s) => s.trim());
    if (ids.some((s) => s !== "1" && s !== "2" && s !== "3")) {
      throw new InvalidArgumentError(`${flag} must be a comma list of 1, 2, 3, got "${v}"`);
    }
    return [...new Set(ids.map(Number))] as GeneratorId[];
  };
}

/** --max-problems and --start-problem, the window of a data set every per-problem command walks. */
export function addProblemRangeOptions(cmd: Command, verb: string): Command {
  return cmd
    .option("--max-problems <n>", `${verb} at most this many problems`, parsePositiveInt("--max-problems"))
    .option(
      "--start-problem <i>",
      "index (0-based) of the first problem in the data set",
      parseNonNegativeInt("--start-problem"),
      0,
    );
}

/** What the generator commands share: the data sets, the group size and the sampling temperature. */
export function addGeneratorOptions(cmd: Command, rolloutsHelp: string): Command {
  return cmd
    .requiredOption("--dataset <names...>", "data set name(s) from the dataset config, or full")
    .option("--rollouts <n>", rolloutsHelp, parsePositiveInt("--rollouts"), 3)
    .option(
      "--temperature <t>",
      "sampling temperature of the scaffold requests",
      parseUnitFloat("--temperature"),
      0.7,
    );
}

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option("--config <path>", `LLM endpoint config (default <workdir>/${DEFAULT_CONFIG_PATH})`)
    .option("--dataset-config <path>", `dataset registry (default <workdir>/${DEFAULT_DATASET_CONFIG})`)
    .option("--workdir <dir>", "root of grpo_training/ and data/", process.cwd())
    .option(
      "--concurrency <n>",
      "LLM requests in flight per agent (overrides max_concurrency)",
      parsePositiveInt("--concurrency"),
    )
    .option("--seed <n>", "seed of retry jitter", parseNonNegativeInt("--seed"), 0)
    .option("--prompts-dir <dir>", "folder with prompt templates overriding the built-in ones")
    .addOption(
      new Option(
        "--mode <mode>",
        "when to learn: variance (σ > τ) or mixed (correct and wrong answers in the group)",
      )
        .choices(["variance", "mixed"])
        .default("variance"),
    )
    .option("--tau <x>", "σ threshold of the variance mode", parseUnitFloat("--tau", 1), DEFAULT_TAU)
    .option("--llm-equivalence", "ask the LLM when answers differ textually and numerically")
    .option(
      "--reward-weights <path>",
      'JSON file of weights per agent, e.g. {"generator_1": {"ans": 0.5, "logic": 0.25, "graph": 0.25}}',
    );
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

/**
 * `plainProgress`: one log line per problem instead of a bar, for commands that run several
 * agents at once (bars of parallel agents would overdraw each other on one terminal).
 */
export function createRuntime(
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
