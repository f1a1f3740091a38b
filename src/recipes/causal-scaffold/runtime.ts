/** The solver a training-free command runs on: clients, engine, libraries, data, locks and usage. */
import { existsSync, readdirSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { Rng } from "../../core/rng.ts";
import { DEFAULT_DATASET_CONFIG, loadDataset, loadDatasetConfig, type Problem } from "../../data/datasets.ts";
import { acquireLock, type HeldLock, LockHeldError, sweepStaleTemps } from "../../io/lock.ts";
import {
  AGENTS,
  type AgentName,
  createClients,
  DEFAULT_CONFIG_PATH,
  errorText,
  type LLMClient,
  loadApiConfig,
  TransportThreads,
} from "../../llm/index.ts";
import type { LessonLimits } from "../../training-free/experience-library.ts";
import type { ExtractionMode } from "../../training-free/triggers.ts";
import { CausalScaffoldEngine } from "./engine.ts";
import { DEFAULT_EXTRACTION } from "./extraction.ts";
import { RunGuard } from "./failures.ts";
import { ExperienceManager } from "./libraries.ts";
import { agentLockPath, cacheDir, usageDir } from "./paths.ts";
import type { ProgressFactory } from "./progress.ts";
import { PromptSet } from "./prompts.ts";
import { loadRewardWeights } from "./rewards.ts";
import { type RunStatus, UsageLog } from "./usage-log.ts";

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
  /** Failures in a row, per agent, that stop the run. */
  maxFailures?: number;
  maxLessonWords?: number;
  maxLessonChars?: number;
  /** Worker threads that send the LLM requests; 0 or none: the main thread sends them. */
  transportThreads?: number;
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
  guard: RunGuard;
  startedAt: Date;
  /** The problems of the named data sets in [start, start + max); an empty selection is an error. */
  loadProblems(datasets: string[], opts?: { start?: number; max?: number }): Problem[];
  /**
   * Takes the write lock of each agent in this working directory: a second process for the same
   * agent is refused at once, naming the one that holds it. Held until `finish`.
   */
  lock(agents: readonly string[]): void;
  /** Records the end of this command's usage, refreshes run_summary.json and releases the locks. */
  finish(status: RunStatus): void;
}

/** The folders whose atomic writes a killed process may have left half done. */
function writtenDirs(workdir: string): string[] {
  const base = cacheDir(workdir);
  const epochs = existsSync(base)
    ? readdirSync(base)
        .filter((n) => /^epoch_\d+$/.test(n))
        .map((n) => join(base, n))
    : [];
  return [
    join(workdir, "data", "grpo_experiences"),
    join(workdir, "grpo_training"),
    base,
    ...epochs,
    usageDir(workdir),
  ];
}

export function buildRuntime(
  command: string,
  opts: SolverOptions,
  temperatures: { generator?: number; critic?: number } = {},
  progress?: ProgressFactory,
  log: (line: string) => void = (line) => console.error(line),
): Runtime {
  const workdir = resolve(opts.workdir);
  const configPath = inWorkdir(workdir, opts.config, DEFAULT_CONFIG_PATH);
  const endpoints = loadApiConfig(configPath);
  if (opts.concurrency !== undefined) for (const a of AGENTS) endpoints[a].maxConcurrency = opts.concurrency;
  const weights = opts.rewardWeights ? loadRewardWeights(resolve(opts.rewardWeights)) : undefined;
  const startedAt = new Date();
  let usage: UsageLog;
  try {
    usage = new UsageLog(workdir, command, startedAt);
  } catch (err) {
    throw new Error(`work directory ${workdir} is not writable (${errorText(err)}); nothing was run`);
  }
  const clients = createClients(endpoints, {
    ...(opts.transportThreads ? { threads: new TransportThreads(opts.transportThreads) } : {}),
    rng: new Rng(opts.seed),
    onCall: (call) => usage.record(call),
    warn: (line) => log(`warning: ${line}`),
  });
  const guard = new RunGuard({ maxFailures: opts.maxFailures, log });
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
    guard,
    progress,
  });
  const limits: Partial<LessonLimits> = {
    ...(opts.maxLessonWords !== undefined ? { maxWords: opts.maxLessonWords } : {}),
    ...(opts.maxLessonChars !== undefined ? { maxChars: opts.maxLessonChars } : {}),
  };
  const datasetConfigPath = inWorkdir(workdir, opts.datasetConfig, DEFAULT_DATASET_CONFIG);
  const locks: HeldLock[] = [];
  const releaseAll = () => {
    for (const l of locks.splice(0)) l.release();
  };
  process.once("exit", releaseAll);
  return {
    workdir,
    clients,
    engine,
    experiences: new ExperienceManager({ workdir, limits }),
    guard,
    startedAt,
    loadProblems(datasets, range = {}) {
      const config = loadDatasetConfig(datasetConfigPath);
      const all = loadDataset(datasets, config, datasetConfigPath);
      const names = datasets.join(", ");
      if (all.length === 0) throw new Error(`data set ${names} (${datasetConfigPath}) holds no problems`);
      const start = range.start ?? 0;
      if (start >= all.length) {
        throw new Error(
          `--start-problem ${start} is past the end: data set ${names} holds ${all.length} problems (indices 0 to ${all.length - 1})`,
        );
      }
      return all.slice(start, range.max === undefined ? undefined : start + range.max);
    },
    lock(agents) {
      for (const agent of agents) {
        const path = agentLockPath(workdir, agent);
        try {
          locks.push(acquireLock(path, { command: `grpo ${command}` }));
        } catch (err) {
          releaseAll();
          if (err instanceof LockHeldError) {
            const h = err.holder;
            throw new Error(
              `${agent} in ${workdir} is being written by ${h ? `process ${h.pid} (${h.command}, since ${h.started_at})` : "another process"}; ` +
                `one process per agent and work directory: wait for it to finish or stop it (lock file ${path})`,
            );
          }
          throw new Error(`work directory ${workdir} is not writable (${errorText(err)}); nothing was run`);
        }
      }
      // Our lock is held: leftovers of atomic writes by dead processes can go.
      for (const dir of writtenDirs(workdir)) sweepStaleTemps(dir);
    },
    finish(status) {
      try {
        usage.close(status);
      } finally {
        releaseAll();
        process.removeListener("exit", releaseAll);
      }
    },
  };
}
