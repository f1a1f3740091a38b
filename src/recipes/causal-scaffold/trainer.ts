import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { readJsonChecked, writeJsonAtomic } from "../../io/files.ts";
import type { CriticSummary } from "./critic.ts";
import { SOLVER_DEFAULTS } from "./defaults.ts";
import type { CausalScaffoldEngine } from "./engine.ts";
import { type PassCounts, passComplete, passLine } from "./failures.ts";
import type { GeneratorSummary } from "./generator.ts";
import type { ExperienceManager, LibraryOwner } from "./libraries.ts";
import { LIBRARY_OWNERS } from "./libraries.ts";
import { backupsDir, cacheDir, trainReportPath, trainStatePath } from "./paths.ts";
import { isCompleteRecord } from "./rollout-cache.ts";
import type { ProblemRef } from "./solve.ts";

export interface TrainerOptions {
  causalEngine: CausalScaffoldEngine;
  experienceManager: ExperienceManager;
  /** Rollouts each generator writes per problem (the group over which μ and σ are taken). */
  rolloutsPerGenerator?: number;
  numEpochs?: number;
  verbose?: boolean;
  /** A fresh run keeps the libraries on disk; otherwise it backs them up and starts from empty ones. */
  useExistingExperiences?: boolean;
  /**
   * Start over: the earlier run's caches, progress and libraries are moved to a backup folder
   * first. Without it, a run that was interrupted continues where it stopped.
   */
  restart?: boolean;
  log?: (line: string) => void;
}

/** How one agent's pass over the problems of an epoch went (see GeneratorSummary). */
export interface AgentEpochReport extends PassCounts {
  agent: string;
  /** Over the complete groups only: a failed rollout is not a result. */
  meanReward: number;
  accuracy: number;
}

export interface EpochReport {
  epoch: number;
  /** Every agent completed every problem: the next epoch may start. */
  complete: boolean;
  generators: (AgentEpochReport & { generator: number; failedRollouts: number })[];
  critic: AgentEpochReport & { fused: number; failedFusions: number };
  librarySizes: Record<LibraryOwner, number>;
}

export interface TrainingReport {
  backupDir?: string;
  /** Epochs already complete when this run started (a continued run). */
  epochsBefore: number;
  /** The epochs this run worked on. */
  epochs: EpochReport[];
  /** All requested epochs are complete. */
  complete: boolean;
}

/** What tf-train keeps between runs: how far it got, and what it was asked to do. */
const TrainStateSchema = z.object({
  version: z.literal(1),
  started_at: z.string(),
  updated_at: z.string(),
  problem_ids: z.array(z.string()),
  rollouts_per_generator: z.number().int().min(1),
  epochs_completed: z.number().int().min(0),
});
export type TrainState = z.infer<typeof TrainStateSchema>;

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function generatorRow(g: GeneratorSummary): EpochReport["generators"][number] {
  const complete = g.records.filter((r) => isCompleteRecord(r, { learn: false }));
  const rollouts = complete.flatMap((r) => r.rollouts);
  return {
    agent: `generator_${g.generator}`,
    generator: g.generator,
    requested: g.requested,
    completed: g.completed,
    alreadyComplete: g.alreadyComplete,
    failed: g.failed,
    skipped: g.skipped,
    failures: g.failures,
    failedRollouts: g.failedRollouts,
    extractions: g.extractions,
    meanReward: mean(rollouts.map((r) => r.r_total)),
    accuracy: mean(rollouts.map((r) => (r.is_correct ? 1 : 0))),
  };
}

function criticRow(c: CriticSummary): EpochReport["critic"] {
  const fused = c.records.filter((r) => r.fused_scaffold !== null);
  return {
    agent: "critic",
    requested: c.requested,
    completed: c.completed,
    alreadyComplete: c.alreadyComplete,
    failed: c.failed,
    skipped: c.skipped,
    failures: c.failures,
    extractions: c.extractions,
    fused: c.fused,
    failedFusions: c.failedFusions,
    meanReward: mean(fused.map((r) => r.r_total)),
    accuracy: mean(fused.map((r) => (r.is_correct ? 1 : 0))),
  };
}

/**
 * Training-free GRPO: per epoch, the generators solve every problem (learning their own
 * lessons), then the critic fuses their rollouts (learning its lessons). Model weights never
 * change; the libraries are what is trained. Progress is recorded after each epoch, so a rerun
 * after a crash continues the same epoch with the libraries as they were; an epoch with
 * failures is not left behind: the run stops there, and the rerun redoes its failed parts.
 */
export class TrainingFreeGRPOTrainer {
  readonly rolloutsPerGenerator: number;
  readonly numEpochs: number;
  private readonly opts: TrainerOptions;

  constructor(opts: TrainerOptions) {
    if (opts && Object.hasOwn(opts, "groupSize")) {
      throw new Error(
        "TrainingFreeGRPOTrainer: the option groupSize is no longer accepted; use rolloutsPerGenerator " +
          "(rollouts each generator writes per problem, e.g. { rolloutsPerGenerator: 3 }).",
      );
    }
    if (!opts?.causalEngine) throw new Error("TrainingFreeGRPOTrainer: causalEngine is required");
    if (!opts.experienceManager) throw new Error("TrainingFreeGRPOTrainer: experienceManager is required");
    this.rolloutsPerGenerator = opts.rolloutsPerGenerator ?? SOLVER_DEFAULTS.rolloutsPerGenerator;
    this.numEpochs = opts.numEpochs ?? SOLVER_DEFAULTS.numEpochs;
    for (const [name, v] of [
      ["rolloutsPerGenerator", this.rolloutsPerGenerator],
      ["numEpochs", this.numEpochs],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`TrainingFreeGRPOTrainer: ${name} must be an integer ≥ 1, got ${v}`);
    }
    this.opts = opts;
  }

  private log(line: string): void {
    if (this.opts.verbose) (this.opts.log ?? console.log)(line);
  }

  /**
   * Moves the earlier run aside: caches, progress and report into
   * grpo_training/backups/<time>/, the libraries copied there before they are emptied.
   */
  private backUpRun(now: Date): string {
    const workdir = this.opts.causalEngine.workdir;
    const dir = join(backupsDir(workdir), now.toISOString().replace(/[:.]/g, "-"));
    mkdirSync(dir, { recursive: true });
    const move = (from: string, name: string) => {
      if (existsSync(from)) renameSync(from, join(dir, name));
    };
    move(cacheDir(workdir), "cache");
    move(trainStatePath(workdir), "tf_train_state.json");
    move(trainReportPath(workdir), "tf_train_report.json");
    this.opts.experienceManager.resetAll(now, join(dir, "grpo_experiences"));
    return dir;
  }

  async train(problems: readonly ProblemRef[]): Promise<TrainingReport> {
    const { causalEngine: engine, experienceManager: experiences } = this.opts;
    const statePath = trainStatePath(engine.workdir);
    const now = new Date();
    const report: TrainingReport = { epochsBefore: 0, epochs: [], complete: false };
    const ids = [...new Set(problems.map((p) => p.id))];
    let state: TrainState | undefined = existsSync(statePath)
      ? readJsonChecked(statePath, TrainStateSchema)
      : undefined;
    if (this.opts.restart) {
      report.backupDir = this.backUpRun(now);
      this.log(
        `starting over: the earlier run (caches, progress, libraries) is backed up in ${report.backupDir}`,
      );
      state = undefined;
    } else if (state) {
      const sameProblems =
        state.problem_ids.length === ids.length && state.problem_ids.every((id, i) => id === ids[i]);
      if (!sameProblems || state.rollouts_per_generator !== this.rolloutsPerGenerator) {
        throw new Error(
          `tf-train: the run recorded in ${statePath} was started with ${state.problem_ids.length} problems ` +
            `(${state.problem_ids.slice(0, 3).join(", ")}${state.problem_ids.length > 3 ? ", …" : ""}) and ` +
            `${state.rollouts_per_generator} rollouts per generator, this one has ${ids.length} problems and ` +
            `${this.rolloutsPerGenerator}. Rerun with the same arguments to continue it, or pass --restart to back it up and start over.`,
        );
      }
      report.epochsBefore = state.epochs_completed;
      this.log(
        `continuing the run started ${state.started_at}: ${state.epochs_completed} of ${this.numEpochs} epochs complete, ` +
          "libraries as they are on disk",
      );
    } else if (!this.opts.useExistingExperiences) {
      report.backupDir = experiences.resetAll(now);
      if (report.backupDir) this.log(`existing experience libraries backed up to ${report.backupDir}`);
    }
    const current: TrainState = state ?? {
      version: 1,
      started_at: now.toISOString(),
      updated_at: now.toISOString(),
      problem_ids: ids,
      rollouts_per_generator: this.rolloutsPerGenerator,
      epochs_completed: 0,
    };
    writeJsonAtomic(statePath, current);
    if (current.epochs_completed >= this.numEpochs) {
      this.log(
        `all ${this.numEpochs} epochs are already complete: nothing to do (--epochs to add epochs, --restart to start over)`,
      );
      report.complete = true;
      return report;
    }
    for (let epoch = current.epochs_completed + 1; epoch <= this.numEpochs; epoch++) {
      this.log(`epoch ${epoch}/${this.numEpochs}: generators on ${problems.length} problems`);
      const gens = await engine.runGenerators({
        problems,
        rollouts: this.rolloutsPerGenerator,
        experiences,
        epoch,
      });
      let critic: CriticSummary | undefined;
      if (!engine.stopped) {
        this.log(`epoch ${epoch}/${this.numEpochs}: critic`);
        critic = await engine.runCritic({ experiences, epoch, problemIds: ids });
      }
      const sizes = {} as Record<LibraryOwner, number>;
      for (const o of LIBRARY_OWNERS) sizes[o] = experiences.library(o).entries().length;
      const generators = gens.map(generatorRow);
      const criticReport: EpochReport["critic"] = critic
        ? criticRow(critic)
        : {
            agent: "critic",
            requested: ids.length,
            completed: 0,
            alreadyComplete: 0,
            failed: 0,
            skipped: ids.length,
            failures: {},
            extractions: 0,
            fused: 0,
            failedFusions: 0,
            meanReward: 0,
            accuracy: 0,
          };
      const complete = [...generators, criticReport].every(passComplete);
      const epochReport: EpochReport = {
        epoch,
        complete,
        generators,
        critic: criticReport,
        librarySizes: sizes,
      };
      report.epochs.push(epochReport);
      for (const a of [...generators, criticReport]) this.log(`epoch ${epoch}: ${passLine(a.agent, a)}`);
      this.log(
        `epoch ${epoch}: ${generators.map((g) => `G${g.generator} acc=${g.accuracy.toFixed(3)}`).join(" ")} ` +
          `critic acc=${criticReport.accuracy.toFixed(3)} libraries ${JSON.stringify(sizes)}`,
      );
      if (!complete) {
        this.log(
          `epoch ${epoch} is incomplete; rerun the same tf-train command to redo its failed parts (nothing else is repeated), then it goes on`,
        );
        return report;
      }
      current.epochs_completed = epoch;
      current.updated_at = new Date().toISOString();
      writeJsonAtomic(statePath, current);
    }
    report.complete = true;
    return report;
  }
}
