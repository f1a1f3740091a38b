import { SOLVER_DEFAULTS } from "./defaults.ts";
import type { CausalScaffoldEngine } from "./engine.ts";
import type { ExperienceManager, LibraryOwner } from "./libraries.ts";
import { LIBRARY_OWNERS } from "./libraries.ts";
import type { ProblemRef } from "./solve.ts";

export interface TrainerOptions {
  causalEngine: CausalScaffoldEngine;
  experienceManager: ExperienceManager;
  /** Rollouts each generator writes per problem (the group over which μ and σ are taken). */
  rolloutsPerGenerator?: number;
  numEpochs?: number;
  verbose?: boolean;
  /** Keep the libraries on disk; otherwise back them up and start from empty ones. */
  useExistingExperiences?: boolean;
  log?: (line: string) => void;
}

export interface EpochReport {
  epoch: number;
  generators: {
    generator: number;
    processed: number;
    skipped: number;
    failedRollouts: number;
    extractions: number;
    meanReward: number;
    accuracy: number;
  }[];
  critic: {
    fused: number;
    skipped: number;
    failed: number;
    extractions: number;
    meanReward: number;
    accuracy: number;
  };
  librarySizes: Record<LibraryOwner, number>;
}

export interface TrainingReport {
  backupDir?: string;
  epochs: EpochReport[];
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Training-free GRPO: per epoch, the generators solve every problem (learning their own
 * lessons), then the critic fuses their rollouts (learning its lessons). Model weights never
 * change; the libraries are what is trained.
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

  async train(problems: readonly ProblemRef[]): Promise<TrainingReport> {
    const { causalEngine: engine, experienceManager: experiences } = this.opts;
    const report: TrainingReport = { epochs: [] };
    if (!this.opts.useExistingExperiences) {
      report.backupDir = experiences.resetAll();
      if (report.backupDir) this.log(`existing experience libraries backed up to ${report.backupDir}`);
    }
    for (let epoch = 1; epoch <= this.numEpochs; epoch++) {
      this.log(`epoch ${epoch}/${this.numEpochs}: generators on ${problems.length} problems`);
      const gens = await engine.runGenerators({
        problems,
        rollouts: this.rolloutsPerGenerator,
        experiences,
        epoch,
      });
      this.log(`epoch ${epoch}/${this.numEpochs}: critic`);
      const critic = await engine.runCritic({ experiences, epoch, problemIds: problems.map((p) => p.id) });
      const sizes = {} as Record<LibraryOwner, number>;
      for (const o of LIBRARY_OWNERS) sizes[o] = experiences.library(o).entries().length;
      const epochReport: EpochReport = {
        epoch,
        generators: gens.map((g) => {
          const rollouts = g.records.flatMap((r) => r.rollouts);
          return {
            generator: g.generator,
            processed: g.processed,
            skipped: g.skipped,
            failedRollouts: g.failedRollouts,
            extractions: g.extractions,
            meanReward: mean(rollouts.map((r) => r.r_total)),
            accuracy: mean(rollouts.map((r) => (r.is_correct ? 1 : 0))),
          };
        }),
        critic: {
          fused: critic.fused,
          skipped: critic.skipped,
          failed: critic.failed,
          extractions: critic.extractions,
          meanReward: mean(critic.records.map((r) => r.r_total)),
          accuracy: mean(critic.records.map((r) => (r.is_correct ? 1 : 0))),
        },
        librarySizes: sizes,
      };
      report.epochs.push(epochReport);
      this.log(
        `epoch ${epoch}: ${epochReport.generators.map((g) => `G${g.generator} acc=${g.accuracy.toFixed(3)}`).join(" ")} ` +
          `critic acc=${epochReport.critic.accuracy.toFixed(3)} libraries ${JSON.stringify(sizes)}`,
      );
    }
    return report;
  }
}
