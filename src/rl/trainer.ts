import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import { computeAdvantages, dynamicSamplingFilter, groupStats } from "../core/advantages.ts";
import { GRPO_DEFAULTS, type GrpoConfig, learningRateAt } from "../core/config.ts";
import { resolveLossConfig } from "../core/loss.ts";
import { completionMetrics, METRICS } from "../core/metrics.ts";
import { Rng } from "../core/rng.ts";
import { appendJsonl, readJsonChecked, readJsonl, writeFileAtomic, writeJsonAtomic } from "../io/files.ts";
import type { CausalLM } from "../model/causal-lm.ts";
import type { GPT } from "../model/gpt.ts";
import { sample as sampleModel } from "../model/sampler.ts";
import {
  type CheckpointMetadata,
  listResumableCheckpoints,
  loadCheckpointModel,
  OPTIMIZER_FILE,
  restoreOptimizer,
  STATE_DIR,
  STATE_FILE,
  writeCheckpoint,
} from "./checkpoint.ts";
import { Curriculum, type CurriculumConfig } from "./curriculum.ts";
import { maxVarianceSubset } from "./downsample.ts";
import { grpoUpdate } from "./grpo-step.ts";
import { ReplayBuffer, type ReplayGroup } from "./replay.ts";
import { buildBatch, rolloutTokens } from "./rollout.ts";
import type { RewardResult, RlTask, Rollout, SampleFn } from "./types.ts";

/**
 * GrpoConfig (core/config.ts: the knobs of GRPO, TRL's names) plus what this trainer adds
 * around them: prompts per step, evaluation, checkpoints, curriculum, replay, down-sampling.
 */
export interface TrainerConfig extends GrpoConfig {
  /**
   * Prompts per step; the batch holds promptsPerStep·numGenerations completions. (TRL's
   * per_device_train_batch_size counts completions instead.)
   */
  promptsPerStep: number;
  /** evaluate every N steps (0: only at the end). */
  evalEvery: number;
  /** completions sampled per held-out prompt at evaluation. */
  evalSamples: number;
  /** write checkpoint-N every N steps (0: never). */
  saveEvery: number;
  curriculum?: CurriculumConfig;
  /** replay `perStep` stored groups each step from a buffer of `capacity`. */
  replay?: { capacity: number; perStep: number };
  /** update on this many of each group's G completions, those whose rewards vary most (PODS); default all. */
  downsample?: number;
  /** sampling temperature at evaluation; default: `temperature`. */
  evalTemperature?: number;
  /** stop once an evaluation's success rate reaches this (final/ is still written). */
  targetAccuracy?: number;
  /** evaluate once before the first step (TRL's eval_on_start): training_stats.json's `initial`. */
  evalOnStart?: boolean;
  /** false: never evaluate (a task without held-out data), so no best_model/ either; default true. */
  evaluate?: boolean;
}

export const DEFAULT_TRAINER_CONFIG: Readonly<TrainerConfig> = Object.freeze({
  ...GRPO_DEFAULTS,
  promptsPerStep: 1,
  evalEvery: 10,
  evalSamples: 64,
  saveEvery: 0,
});

/** One line of history.jsonl: the core metric names plus the trainer's own. */
export type StepRecord = Record<string, number | null> & { step: number };

export interface EvalResult {
  successRate: number;
  reward: number;
  /** the task's own figures of the evaluation (RlTask.evalMetrics). */
  metrics?: Record<string, number>;
}

const evalSchema = z.object({
  successRate: z.number(),
  reward: z.number(),
  metrics: z.record(z.string(), z.number()).optional(),
});

const stateSchema = z.object({
  version: z.literal(1),
  step: z.number().int().nonnegative(),
  rngState: z.number().int(),
  curriculum: z.object({ phase: z.number().int(), recent: z.array(z.number()) }).nullable(),
  replay: z.array(z.any()).nullable(),
  best: evalSchema.extend({ step: z.number() }).nullable(),
  lastEval: evalSchema.nullable(),
  // Absent in checkpoints written before the trainer kept them.
  initialEval: evalSchema.nullable().optional(),
  task: z.unknown().optional(),
  config: z.any(),
});
type TrainerState = z.infer<typeof stateSchema>;

export interface TrainerOptions<P extends CausalLM = GPT> {
  task: RlTask;
  config: TrainerConfig;
  /** where history.jsonl, training_stats.json and the checkpoints go; none: nothing is written. */
  outputDir?: string;
  /**
   * the frozen KL reference; default: a copy of the policy as it is now when β > 0, none when
   * β = 0 (the loss never reads it then, and a pretrained model's copy costs its size again).
   */
  reference?: CausalLM;
  sample?: SampleFn<P>;
  /** for lines that should stay in the log (phase changes, saves). */
  log?: (line: string) => void;
  /** extra fields for metadata.json / training_stats.json (recipe name, model size...). */
  runInfo?: Record<string, unknown>;
  /**
   * For a LoRA policy: the checkpoint directory of its frozen base. Checkpoints then hold only
   * the adapter, pointing there; without it they carry the base beside the adapter.
   */
  baseModelDir?: string;
}

/**
 * Parametric GRPO: sample G completions per prompt under the task's constraint, reward them,
 * turn rewards into group-relative advantages, and take μ clipped-surrogate steps with KL to a
 * frozen reference. Owns the policy's optimizer, RNG stream and output directory. `P` is the
 * policy's model type: any CausalLM (the project's GPT, which the recipes train, by default).
 */
export class GrpoTrainer<P extends CausalLM = GPT> {
  step = 0;
  readonly rng: Rng;
  readonly reference: CausalLM | null;
  readonly optimizer: tf.Optimizer;
  readonly curriculum?: Curriculum;
  readonly replay?: ReplayBuffer;
  best: (EvalResult & { step: number }) | null = null;
  lastEval: EvalResult | null = null;
  /** the evaluation before the first step, with config.evalOnStart. */
  initialEval: EvalResult | null = null;
  private readonly sampleFn: SampleFn<P>;
  private readonly cfg: TrainerConfig;
  private readonly task: RlTask;
  private readonly outputDir?: string;
  private readonly log: (line: string) => void;
  private readonly runInfo: Record<string, unknown>;
  private readonly baseModelDir?: string;
  /** set when an evaluation reached config.targetAccuracy. */
  stoppedEarly = false;

  constructor(
    readonly policy: P,
    opts: TrainerOptions<P>,
  ) {
    this.cfg = opts.config;
    validateConfig(this.cfg);
    this.task = opts.task;
    this.outputDir = opts.outputDir;
    this.rng = new Rng(this.cfg.seed);
    this.reference = opts.reference ?? (this.cfg.beta > 0 ? policy.clone() : null);
    this.optimizer = tf.train.adam(this.cfg.learningRate);
    this.sampleFn = opts.sample ?? sampleModel;
    this.log = opts.log ?? (() => {});
    this.runInfo = opts.runInfo ?? {};
    this.baseModelDir = opts.baseModelDir;
    if (this.cfg.curriculum) this.curriculum = new Curriculum(this.cfg.curriculum);
    if (this.cfg.replay) this.replay = new ReplayBuffer(this.cfg.replay.capacity);
  }

  get phase(): number {
    return this.curriculum?.phase ?? this.task.phases ?? 1;
  }

  private rollouts(prompts: number[][], group0: number, rng: Rng, phase: number): Rollout[] {
    const G = this.cfg.numGenerations;
    const expanded = prompts.flatMap((p) => Array.from({ length: G }, () => p));
    const res = this.sampleFn(this.policy, expanded, {
      maxNewTokens: this.cfg.maxCompletionLength,
      temperature: this.cfg.temperature,
      topP: this.cfg.topP,
      topK: this.cfg.topK,
      eosId: this.task.eosId,
      constraint: this.task.constraint,
      rng,
    });
    const groups = expanded.map((_, i) => group0 + Math.floor(i / G));
    const scored = this.task.rewardBatch
      ? this.task.rewardBatch(res.tokens, { phase, step: this.step, groups })
      : res.tokens.map((tokens) => this.task.reward(tokens, phase));
    if (scored.length !== expanded.length) {
      throw new Error(
        `trainer: rewardBatch returned ${scored.length} results for ${expanded.length} completions`,
      );
    }
    return expanded.map((prompt, i) => {
      const tokens = res.tokens[i]!;
      const r = scored[i]!;
      return {
        group: groups[i]!,
        prompt,
        tokens,
        finished: res.finished[i]!,
        reward: r.total,
        success: r.success,
        ...(r.components ? { rewardComponents: r.components } : {}),
      };
    });
  }

  /** One GRPO step; appends its record to history.jsonl (unless `write` is false) and returns it. */
  trainStep(write = true): StepRecord {
    const t0 = performance.now();
    const phase = this.phase;
    const cfg = this.cfg;
    const fresh = this.task.rollouts
      ? this.task.rollouts(this.policy, {
          split: "train",
          count: cfg.promptsPerStep,
          numGenerations: cfg.numGenerations,
          temperature: cfg.temperature,
          topP: cfg.topP,
          topK: cfg.topK,
          rng: this.rng,
          phase,
        })
      : this.rollouts(this.task.trainPrompts(this.rng, cfg.promptsPerStep), 0, this.rng, phase);
    const freshGroups = groupRollouts(fresh, cfg.promptsPerStep);
    const sampled = freshGroups.map((g) => this.keptForUpdate(this.withArchived(g, phase)));
    const rewardsByGroup = sampled.map((g) => g.map((r) => r.reward));
    // The statistics are those of every sampled group, dropped or not: they say how much signal there was.
    const adv = computeAdvantages(rewardsByGroup, { scaleRewards: cfg.scaleRewards });
    let groups = sampled;
    let advantages = adv.advantages.map((a) => [...a]);
    let dropped = 0;
    if (cfg.dynamicSampling) {
      const kept = dynamicSamplingFilter(sampled, rewardsByGroup);
      groups = kept.kept;
      dropped = kept.dropped;
      advantages = computeAdvantages(
        kept.keptIndex.map((i) => rewardsByGroup[i]!),
        { scaleRewards: cfg.scaleRewards },
      ).advantages;
    }
    if (this.replay) {
      const replayed = this.replay.sample(this.rng, cfg.replay!.perStep);
      groups.forEach((g, i) => {
        this.replay!.add(toReplayGroup(g, advantages[i]!));
      });
      groups = [...groups];
      for (const rg of replayed) {
        groups.push(fromReplayGroup(rg, groups.length));
        advantages.push([...rg.advantages]);
      }
    }
    const all = groups.flat();
    const maskOpts = { eosId: this.task.eosId, maskTruncatedCompletions: cfg.maskTruncatedCompletions };
    // From the step count alone, so that a resumed run takes the same steps as an uninterrupted one.
    const learningRate = learningRateAt(cfg, this.step);
    setLearningRate(this.optimizer, learningRate);
    // Every group may have been dropped; then this step learns nothing and says so with nulls.
    const upd =
      all.length === 0
        ? null
        : grpoUpdate(
            this.policy,
            this.reference ?? undefined,
            this.optimizer,
            buildBatch(all, advantages.flat(), { ...maskOpts, padId: this.task.eosId }),
            {
              loss: resolveLossConfig(cfg),
              iterations: cfg.numIterations,
              maxGradNorm: cfg.maxGradNorm,
            },
          );
    // Lengths describe what the policy wrote this step; token counts, what the update trained on.
    const written = completionMetrics(fresh.map((r) => rolloutTokens(r, maskOpts)));
    const trained = completionMetrics(all.map((r) => rolloutTokens(r, maskOpts)));
    const rewards = fresh.map((r) => r.reward);
    const successRate = fresh.filter((r) => r.success).length / fresh.length;
    this.step++;
    const phaseBefore = phase;
    if (this.curriculum?.update(successRate)) {
      this.log(
        `step ${this.step}: success rate reached ${cfg.curriculum!.threshold}, curriculum phase ${phaseBefore} → ${this.curriculum.phase}`,
      );
    }
    const record: StepRecord = {
      step: this.step,
      [METRICS.reward]: mean(rewards),
      [METRICS.rewardStd]: mean(adv.groupStd),
      [METRICS.fracRewardZeroStd]: adv.fracRewardZeroStd,
      [METRICS.kl]: upd?.kl ?? null,
      [METRICS.entropy]: upd?.entropy ?? null,
      [METRICS.clipRatioLowMean]: upd?.clipRatioLow ?? null,
      [METRICS.clipRatioHighMean]: upd?.clipRatioHigh ?? null,
      [METRICS.completionsMeanLength]: written[METRICS.completionsMeanLength]!,
      [METRICS.completionsClippedRatio]: written[METRICS.completionsClippedRatio]!,
      [METRICS.trainableTokensRatio]: trained[METRICS.trainableTokensRatio]!,
      [METRICS.trainableTokens]: trained[METRICS.trainableTokens]!,
      [METRICS.completionTokens]: trained[METRICS.completionTokens]!,
      ...rewardComponentMetrics(fresh),
      ...(cfg.dynamicSampling ? { dropped_groups: dropped } : {}),
      loss: upd?.loss ?? null,
      policy_loss: upd?.policyLoss ?? null,
      grad_norm: upd?.gradNorm ?? null,
      learning_rate: learningRate,
      success_rate: successRate,
      phase: phaseBefore,
      [METRICS.stepTime]: (performance.now() - t0) / 1000,
    };
    if (write) this.appendHistory(record);
    // Samples go out even when the caller writes the history line itself (train() adds eval fields first).
    if (this.step === 1 || this.step % Math.max(1, cfg.evalEvery) === 0) this.appendSamples(freshGroups[0]!);
    return record;
  }

  /** The group with the task's archived completions added (RlTask.archiveSamples). */
  private withArchived(group: Rollout[], phase: number): Rollout[] {
    if (!this.task.archiveSamples) return group;
    const extra = this.task.archiveSamples(this.rng, { phase, step: this.step });
    const { group: index, prompt } = group[0]!;
    return [
      ...group,
      ...extra.map(({ tokens, reward }) => ({
        group: index,
        prompt,
        tokens,
        finished: tokens.at(-1) === this.task.eosId,
        reward: reward.total,
        success: reward.success,
        ...(reward.components ? { rewardComponents: reward.components } : {}),
      })),
    ];
  }

  private keptForUpdate(group: Rollout[]): Rollout[] {
    const m = this.cfg.downsample;
    return m === undefined
      ? group
      : maxVarianceSubset(
          group.map((r) => r.reward),
          m,
        ).map((i) => group[i]!);
  }

  /** Best and worst completion of one group, so a report can show what the policy writes. */
  private appendSamples(group: readonly Rollout[]): void {
    if (!this.outputDir || !this.task.describe || group.length === 0) return;
    let best = group[0]!;
    let worst = group[0]!;
    for (const r of group) {
      if (r.reward > best.reward) best = r;
      if (r.reward < worst.reward) worst = r;
    }
    const describe = (r: Rollout) => ({ text: this.task.describe!(r.tokens), reward: r.reward });
    appendJsonl(join(this.outputDir, "samples.jsonl"), {
      step: this.step,
      group_size: group.length,
      best: describe(best),
      worst: describe(worst),
    });
  }

  private appendHistory(record: StepRecord): void {
    if (this.outputDir) appendJsonl(join(this.outputDir, "history.jsonl"), record);
  }

  /**
   * Success rate and mean reward on the task's held-out prompts. Draws from its own fixed
   * stream, so evaluating neither perturbs training nor varies between evaluations by luck.
   */
  evaluate(samples = this.cfg.evalSamples): EvalResult {
    const rng = new Rng(this.cfg.seed ^ 0x5eed_e7a1);
    const temperature = this.cfg.evalTemperature ?? this.cfg.temperature;
    const phase = this.task.evalPhase ?? this.phase;
    const scored: RewardResult[] = [];
    const completions: number[][] = [];
    if (this.task.rollouts) {
      const rs = this.task.rollouts(this.policy, {
        split: "eval",
        count: 0,
        numGenerations: samples,
        temperature,
        topP: this.cfg.topP,
        topK: this.cfg.topK,
        rng,
        phase,
      });
      for (const r of rs) {
        scored.push({ total: r.reward, success: r.success });
        completions.push(r.tokens);
      }
    } else {
      for (const prompt of this.task.evalPrompts()) {
        const res = this.sampleFn(
          this.policy,
          Array.from({ length: samples }, () => prompt),
          {
            maxNewTokens: this.cfg.maxCompletionLength,
            temperature,
            topP: this.cfg.topP,
            topK: this.cfg.topK,
            eosId: this.task.eosId,
            constraint: this.task.constraint,
            rng,
          },
        );
        for (const tokens of res.tokens) {
          scored.push(this.task.reward(tokens, phase));
          completions.push(tokens);
        }
      }
    }
    const n = scored.length;
    const successes = scored.filter((r) => r.success).length;
    const total = scored.reduce((a, r) => a + r.total, 0);
    const e: EvalResult = { successRate: n ? successes / n : 0, reward: n ? total / n : 0 };
    if (this.task.evalMetrics) e.metrics = this.task.evalMetrics(completions, { phase, step: this.step });
    return e;
  }

  /** The task's memory as a file beside history.jsonl, for reports (RlTask.memory). */
  private writeMemory(): void {
    const memory = this.task.memory;
    if (this.outputDir && memory?.file) writeJsonAtomic(join(this.outputDir, memory.file), memory.save());
  }

  private metadata(e: EvalResult | null): CheckpointMetadata {
    return {
      step: this.step,
      accuracy: e?.successRate ?? null,
      success_rate: e?.successRate ?? null,
      reward: e?.reward ?? null,
      config: { ...this.runInfo, trainer: this.cfg },
    };
  }

  private state(): TrainerState {
    return {
      version: 1,
      step: this.step,
      rngState: this.rng.getState(),
      curriculum: this.curriculum?.getState() ?? null,
      replay: this.replay?.getState() ?? null,
      best: this.best,
      lastEval: this.lastEval,
      initialEval: this.initialEval,
      task: this.task.memory?.save() ?? null,
      config: this.cfg,
    };
  }

  /** A resumable checkpoint: weights, reference, optimizer, RNG and counters. */
  async saveCheckpoint(dir: string): Promise<void> {
    await writeCheckpoint(dir, {
      policy: this.policy,
      reference: this.reference,
      optimizer: this.optimizer,
      state: this.state(),
      metadata: this.metadata(this.lastEval),
      baseModelDir: this.baseModelDir,
    });
  }

  /**
   * Evaluates, and saves best_model/ when the success rate improves, or holds with a higher
   * reward. The log line names the measure that improved, so an equal success rate is never
   * announced as a new best.
   */
  async evaluateAndTrack(opts: { announce?: boolean } = {}): Promise<EvalResult> {
    const e = this.evaluate();
    this.lastEval = e;
    this.writeMemory();
    const prev = this.best;
    const higherSuccess = !prev || e.successRate > prev.successRate;
    const better = higherSuccess || (e.successRate === prev!.successRate && e.reward > prev!.reward);
    if (better) {
      this.best = { ...e, step: this.step };
      if (this.outputDir) {
        await writeCheckpoint(join(this.outputDir, "best_model"), {
          policy: this.policy,
          metadata: this.metadata(e),
          baseModelDir: this.baseModelDir,
        });
        const label = this.task.successLabel ?? "accuracy";
        if (opts.announce !== false)
          this.log(
            higherSuccess
              ? `New best ${label}: ${e.successRate.toFixed(4)} (step ${this.step})`
              : `Best model updated: eval reward ${prev!.reward.toFixed(4)} → ${e.reward.toFixed(4)} at equal ${label} ${e.successRate.toFixed(4)} (step ${this.step})`,
          );
      }
    }
    return e;
  }

  /**
   * Runs until `totalSteps` steps have been taken in all (a resumed trainer continues its
   * count), with periodic evaluation and checkpoints; ends with final/ and training_stats.json.
   */
  async train(
    totalSteps: number = this.cfg.maxSteps,
    onStep?: (r: StepRecord, e: EvalResult | null) => void,
  ): Promise<StepRecord[]> {
    const records: StepRecord[] = [];
    const started = performance.now();
    if (this.cfg.evalOnStart && this.cfg.evaluate !== false && this.step === 0 && this.initialEval === null) {
      // The baseline that later evaluations must beat to be announced as a new best.
      this.initialEval = await this.evaluateAndTrack({ announce: false });
      this.log(`evaluation before training: ${evalSummary(this.initialEval, this.task.successLabel)}`);
    }
    while (this.step < totalSteps) {
      const r = this.trainStep(false);
      records.push(r);
      let e: EvalResult | null = null;
      if (this.cfg.evaluate !== false && this.cfg.evalEvery > 0 && this.step % this.cfg.evalEvery === 0) {
        e = await this.evaluateAndTrack();
        r.eval_success_rate = e.successRate;
        r.eval_reward = e.reward;
        for (const [name, v] of Object.entries(e.metrics ?? {})) r[`eval_${name}`] = v;
      }
      this.appendHistory(r);
      if (this.outputDir && this.cfg.saveEvery > 0 && this.step % this.cfg.saveEvery === 0) {
        await this.saveCheckpoint(join(this.outputDir, `checkpoint-${this.step}`));
        this.log(`step ${this.step}: saved checkpoint-${this.step}`);
      }
      onStep?.(r, e);
      const target = this.cfg.targetAccuracy;
      if (e && target !== undefined && e.successRate >= target) {
        this.stoppedEarly = true;
        this.log(
          `step ${this.step}: eval accuracy ${e.successRate.toFixed(4)} reached the target ${target}; stopping`,
        );
        break;
      }
    }
    if (this.outputDir) {
      const evaluatedNow =
        this.stoppedEarly ||
        (this.cfg.evalEvery > 0 && this.step % this.cfg.evalEvery === 0 && this.lastEval !== null);
      const e =
        this.cfg.evaluate === false ? null : evaluatedNow ? this.lastEval! : await this.evaluateAndTrack();
      this.writeMemory();
      await this.saveCheckpoint(join(this.outputDir, "final"));
      this.writeStats(e, (performance.now() - started) / 1000);
    }
    return records;
  }

  writeStats(finalEval: EvalResult | null, wallSeconds: number): void {
    if (!this.outputDir) return;
    const history = readJsonl(join(this.outputDir, "history.jsonl")).records.map(
      (r) => r.value as StepRecord,
    );
    const first = history.slice(0, Math.min(5, history.length));
    const last = history.slice(Math.max(0, history.length - 5));
    writeJsonAtomic(join(this.outputDir, "training_stats.json"), {
      ...this.runInfo,
      steps: this.step,
      wall_seconds_this_run: wallSeconds,
      final_eval: finalEval,
      // The figures by the history's names, before the first step (with evalOnStart) and at the end.
      initial: this.initialEval ? evalFigures(this.initialEval) : null,
      final: finalEval ? evalFigures(finalEval) : null,
      best: this.best,
      phase: this.phase,
      reward_first_steps: mean(first.map((r) => r[METRICS.reward] ?? 0)),
      reward_last_steps: mean(last.map((r) => r[METRICS.reward] ?? 0)),
      success_rate_first_steps: mean(first.map((r) => r.success_rate ?? 0)),
      success_rate_last_steps: mean(last.map((r) => r.success_rate ?? 0)),
      config: this.cfg,
    });
  }

  /**
   * Continues a run from `checkpointDir` (or the newest resumable checkpoint-N or final/ of `outputDir`):
   * policy, reference, Adam state, RNG, curriculum, replay buffer and step counter, and cuts
   * history.jsonl back to that step so the continued log matches an uninterrupted one.
   */
  static async resume<P extends CausalLM = GPT>(
    opts: Omit<TrainerOptions<P>, "reference"> & {
      checkpointDir?: string;
      /** how to load the policy from a checkpoint directory; default: whatever model it holds. */
      loadPolicy?: (dir: string) => P;
    },
  ): Promise<GrpoTrainer<P>> {
    let dir = opts.checkpointDir;
    if (!dir) {
      if (!opts.outputDir) throw new Error("resume: needs a checkpoint directory or an output directory");
      const found = listResumableCheckpoints(opts.outputDir);
      // final/ holds the same state: a run that ended between checkpoints continues from there.
      const finalDir = join(opts.outputDir, "final");
      const finalState = join(finalDir, STATE_DIR, STATE_FILE);
      if (existsSync(finalState)) {
        const step = readJsonChecked(finalState, stateSchema).step;
        if (found.length === 0 || step > found[found.length - 1]!.step) found.push({ step, dir: finalDir });
      }
      if (found.length === 0)
        throw new Error(`resume: no resumable checkpoint-N or final/ directory in ${opts.outputDir}`);
      dir = found[found.length - 1]!.dir;
    }
    const stateFile = join(dir, STATE_DIR, STATE_FILE);
    const state = readJsonChecked(stateFile, stateSchema);
    const policy = opts.loadPolicy ? opts.loadPolicy(dir) : (loadCheckpointModel(dir) as P);
    let reference: CausalLM | undefined;
    try {
      // A run with β = 0 has no reference to restore.
      const refDir = join(dir, STATE_DIR, "reference");
      if (existsSync(refDir)) reference = loadCheckpointModel(refDir);
      const t = new GrpoTrainer<P>(policy, { ...opts, ...(reference ? { reference } : {}) });
      const optFile = join(dir, STATE_DIR, OPTIMIZER_FILE);
      if (!existsSync(optFile)) throw new Error(`${optFile}: file not found`);
      await restoreOptimizer(t.optimizer, new Uint8Array(readFileSync(optFile)), optFile);
      t.step = state.step;
      t.rng.setState(state.rngState);
      if (t.curriculum && state.curriculum) t.curriculum.setState(state.curriculum);
      if (t.replay && state.replay) t.replay.setState(state.replay as ReplayGroup[]);
      t.best = state.best;
      t.lastEval = state.lastEval;
      t.initialEval = state.initialEval ?? null;
      if (t.task.memory && state.task !== undefined && state.task !== null) {
        t.task.memory.load(state.task, stateFile);
      }
      if (opts.outputDir) {
        truncateHistory(join(opts.outputDir, "history.jsonl"), state.step);
        truncateHistory(join(opts.outputDir, "samples.jsonl"), state.step);
      }
      return t;
    } catch (err) {
      policy.dispose();
      reference?.dispose();
      throw err;
    }
  }

  dispose(): void {
    this.optimizer.dispose();
    this.reference?.dispose();
  }
}

/**
 * Refuses to start a fresh run where one already logged steps: a new trainer would append to
 * that history. The message names the file and the two ways out.
 */
export function assertFreshOutputDir(outputDir: string): void {
  const history = join(outputDir, "history.jsonl");
  if (existsSync(history)) {
    throw new Error(`${history} exists: pass --resume to continue that run, or choose another --output-dir`);
  }
}

function truncateHistory(file: string, step: number): void {
  if (!existsSync(file)) return;
  const kept = readJsonl(file).records.filter((r) => ((r.value as { step?: number }).step ?? 0) <= step);
  writeFileAtomic(file, kept.map((r) => `${JSON.stringify(r.value)}\n`).join(""));
}

/** Rollouts split by their group index; every group must be present. */
function groupRollouts(rollouts: Rollout[], count: number): Rollout[][] {
  const groups: Rollout[][] = Array.from({ length: count }, () => []);
  for (const r of rollouts) {
    const g = groups[r.group];
    if (!g) throw new Error(`trainer: rollout of group ${r.group}, expected groups 0..${count - 1}`);
    g.push(r);
  }
  groups.forEach((g, i) => {
    if (g.length === 0) throw new Error(`trainer: no rollouts for group ${i}`);
  });
  return groups;
}

function toReplayGroup(g: Rollout[], advantages: number[]): ReplayGroup {
  return {
    prompt: g[0]!.prompt,
    completions: g.map((r) => ({ tokens: r.tokens, finished: r.finished, toolMask: r.toolMask })),
    rewards: g.map((r) => r.reward),
    advantages,
    successes: g.map((r) => r.success),
  };
}

function fromReplayGroup(rg: ReplayGroup, group: number): Rollout[] {
  return rg.completions.map((c, i) => ({
    group,
    prompt: rg.prompt,
    tokens: c.tokens,
    finished: c.finished,
    toolMask: c.toolMask,
    reward: rg.rewards[i]!,
    success: rg.successes[i]!,
  }));
}

/** `rewards/<name>/mean` and `/std` of every named reward function over the step's completions. */
export function rewardComponentMetrics(rollouts: readonly Rollout[]): Record<string, number> {
  const byName = new Map<string, number[]>();
  for (const r of rollouts) {
    for (const [name, v] of Object.entries(r.rewardComponents ?? {})) {
      const vs = byName.get(name);
      if (vs) vs.push(v);
      else byName.set(name, [v]);
    }
  }
  const out: Record<string, number> = {};
  for (const [name, vs] of byName) {
    const { mean, std } = groupStats(vs);
    out[`rewards/${name}/mean`] = mean;
    out[`rewards/${name}/std`] = std;
  }
  return out;
}

/** An evaluation as history.jsonl names its figures: success_rate, reward, then the task's own. */
export function evalFigures(e: EvalResult): Record<string, number> {
  return { success_rate: e.successRate, reward: e.reward, ...e.metrics };
}

function evalSummary(e: EvalResult, label = "accuracy"): string {
  const extra = Object.entries(e.metrics ?? {}).map(([k, v]) => `, ${k} ${Number(v.toPrecision(4))}`);
  return `${label} ${e.successRate.toFixed(4)}, reward ${e.reward.toFixed(4)}${extra.join("")}`;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** tfjs's Adam reads its learning rate at every update but has no setter for it. */
function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
}

function validateConfig(c: TrainerConfig): void {
  const posInt = (v: number, name: string) => {
    if (!(Number.isInteger(v) && v >= 1))
      throw new Error(`trainer config: ${name} must be an integer ≥ 1, got ${v}`);
  };
  posInt(c.numGenerations, "numGenerations");
  posInt(c.promptsPerStep, "promptsPerStep");
  posInt(c.maxCompletionLength, "maxCompletionLength");
  posInt(c.numIterations, "numIterations");
  posInt(c.maxSteps, "maxSteps");
  if (!(c.learningRate > 0))
    throw new Error(`trainer config: learningRate must be > 0, got ${c.learningRate}`);
  if (!(c.temperature > 0)) throw new Error(`trainer config: temperature must be > 0, got ${c.temperature}`);
  if (!(c.topP > 0 && c.topP <= 1)) throw new Error(`trainer config: topP must be in (0, 1], got ${c.topP}`);
  if (!(Number.isInteger(c.topK) && c.topK >= 0))
    throw new Error(`trainer config: topK must be an integer ≥ 0, got ${c.topK}`);
  if (c.evalTemperature !== undefined && !(c.evalTemperature >= 0))
    throw new Error(`trainer config: evalTemperature must be ≥ 0, got ${c.evalTemperature}`);
  if (c.targetAccuracy !== undefined && !(c.targetAccuracy > 0 && c.targetAccuracy <= 1))
    throw new Error(`trainer config: targetAccuracy must be in (0, 1], got ${c.targetAccuracy}`);
  if (c.numGenerations < 2)
    throw new Error(
      "trainer config: numGenerations must be ≥ 2 (advantages compare completions of one prompt)",
    );
  if (
    c.downsample !== undefined &&
    !(Number.isInteger(c.downsample) && c.downsample >= 2 && c.downsample <= c.numGenerations)
  )
    throw new Error(
      `trainer config: downsample must be an integer in 2..numGenerations (${c.numGenerations}), got ${c.downsample}`,
    );
}
