import type { AgentName } from "../../llm/config.ts";
import type { ChatClient } from "../../llm/port.ts";
import type { CriticSummary } from "./critic.ts";
import { runCritic } from "./critic.ts";
import { SOLVER_DEFAULTS } from "./defaults.ts";
import { DEFAULT_EXTRACTION, type ExtractionSettings } from "./extraction.ts";
import { RunGuard } from "./failures.ts";
import type { GeneratorSummary } from "./generator.ts";
import { runGenerator } from "./generator.ts";
import type { ExperienceManager } from "./libraries.ts";
import { cacheDir } from "./paths.ts";
import type { ProgressFactory } from "./progress.ts";
import { PromptSet } from "./prompts.ts";
import type { GeneratorId, RewardWeights } from "./rewards.ts";
import { DEFAULT_CRITIC_WEIGHTS, DEFAULT_GENERATOR_WEIGHTS, GENERATOR_IDS } from "./rewards.ts";
import type { ProblemRef } from "./solve.ts";

export interface CausalEngineOptions {
  clients: Record<AgentName, ChatClient>;
  /** Root of grpo_training/ and data/. */
  workdir: string;
  prompts?: PromptSet;
  generatorTemperature?: number;
  criticTemperature?: number;
  generatorWeights?: Partial<Record<GeneratorId, RewardWeights>>;
  criticWeights?: RewardWeights;
  extraction?: ExtractionSettings;
  llmEquivalence?: boolean;
  /** LLM requests the engine aims to keep in flight per agent; sets how many problems run at once. */
  concurrency?: number;
  /** Problems each generator keeps open at once; derived from `concurrency` when absent. */
  problemsInFlight?: number;
  /** Shared by every agent of the run: failures counted, the run stopped when the endpoint is broken. */
  guard?: RunGuard;
  progress?: ProgressFactory;
}

export interface GeneratorRunRequest {
  problems: readonly ProblemRef[];
  rollouts: number;
  experiences: ExperienceManager;
  epoch?: number;
  learn?: boolean;
  useExperiences?: boolean;
  /** Overrides the epoch folder (evaluation writes elsewhere). */
  cacheDir?: string;
}

/**
 * The multi-agent causal-scaffolding solver: three generators and a critic, each with its own
 * client, reward weights and experience library. The trainer and the CLI drive it.
 */
export class CausalScaffoldEngine {
  readonly workdir: string;
  readonly prompts: PromptSet;
  readonly guard: RunGuard;
  private readonly opts: CausalEngineOptions;

  constructor(opts: CausalEngineOptions) {
    this.opts = opts;
    this.workdir = opts.workdir;
    this.prompts = opts.prompts ?? new PromptSet();
    this.guard = opts.guard ?? new RunGuard();
  }

  /** The run stopped early (a fatal endpoint error, or too many failures in a row). */
  get stopped(): boolean {
    return this.guard.stopped;
  }

  client(agent: AgentName): ChatClient {
    return this.opts.clients[agent];
  }

  /** Each problem runs its rollouts in parallel, so this many problems fill the concurrency. */
  problemConcurrency(rollouts: number): number {
    if (this.opts.problemsInFlight !== undefined) return this.opts.problemsInFlight;
    return Math.max(1, Math.ceil((this.opts.concurrency ?? 8) / Math.max(1, rollouts)));
  }

  runGenerator(id: GeneratorId, req: GeneratorRunRequest): Promise<GeneratorSummary> {
    return runGenerator({
      id,
      client: this.client(`generator_${id}`),
      problems: req.problems,
      workdir: this.workdir,
      cacheDir: req.cacheDir ?? cacheDir(this.workdir, req.epoch ?? 1),
      experiences: req.experiences,
      prompts: this.prompts,
      rollouts: req.rollouts,
      temperature: this.opts.generatorTemperature ?? SOLVER_DEFAULTS.generatorTemperature,
      weights: this.opts.generatorWeights?.[id] ?? DEFAULT_GENERATOR_WEIGHTS[id],
      extraction: this.opts.extraction ?? DEFAULT_EXTRACTION,
      llmEquivalence: this.opts.llmEquivalence,
      learn: req.learn,
      useExperiences: req.useExperiences,
      problemConcurrency: this.problemConcurrency(req.rollouts),
      guard: this.guard,
      progress: this.opts.progress?.(`generator_${id}`, req.problems.length),
    });
  }

  /** The three generators at once; each owns its cache and library file, so nothing is shared. */
  runGenerators(
    req: GeneratorRunRequest,
    ids: readonly GeneratorId[] = GENERATOR_IDS,
  ): Promise<GeneratorSummary[]> {
    return Promise.all(ids.map((id) => this.runGenerator(id, req)));
  }

  runCritic(req: {
    experiences: ExperienceManager;
    epoch?: number;
    problemIds?: readonly string[];
    maxProblems?: number;
    learn?: boolean;
  }): Promise<CriticSummary> {
    const dir = cacheDir(this.workdir, req.epoch ?? 1);
    return runCritic({
      client: this.client("critic"),
      workdir: this.workdir,
      cacheDir: dir,
      experiences: req.experiences,
      prompts: this.prompts,
      temperature: this.opts.criticTemperature ?? SOLVER_DEFAULTS.criticTemperature,
      weights: this.opts.criticWeights ?? DEFAULT_CRITIC_WEIGHTS,
      extraction: this.opts.extraction ?? DEFAULT_EXTRACTION,
      llmEquivalence: this.opts.llmEquivalence,
      learn: req.learn,
      problemIds: req.problemIds,
      maxProblems: req.maxProblems,
      problemConcurrency: this.problemConcurrency(GENERATOR_IDS.length),
      guard: this.guard,
      progress: (total) => this.opts.progress?.("critic", total),
    });
  }
}
