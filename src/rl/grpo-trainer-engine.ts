/**
 * GRPOTrainer's engine (see ./grpo-trainer.ts): the dataset as an RlTask — rows drawn in epoch
 * order, G completions each from the KV-cached sampler, every reward function called on the
 * batch and composed with its weight (core's composeRewards, whose unweighted values the trainer
 * logs as rewards/<name>/mean and /std) — and GrpoTrainer driving it, with LoRA, checkpoints,
 * resume and TRL's periodic log entries.
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import type { GrpoConfig } from "../core/config.ts";
import { composeRewards } from "../core/rewards.ts";
import { Rng } from "../core/rng.ts";
import type { CausalLM } from "../model/causal-lm.ts";
import { GPT, LORA_TARGETS, type LoRATarget } from "../model/gpt.ts";
import { PretrainedLM } from "../model/hf/model.ts";
import { HFTokenizer } from "../model/hf/tokenizer.ts";
import { COMPANION_FILES } from "../model/hf/weights.ts";
import { loadModel, saveModel } from "../model/safetensors.ts";
import { sample } from "../model/sampler.ts";
import { DatasetOrder, type DatasetRow, type Prompt } from "./dataset.ts";
import {
  DEFAULT_TRAINER_CONFIG,
  type EvalResult,
  GrpoTrainer,
  rewardComponentMetrics,
  type StepRecord,
  type TrainerConfig,
} from "./trainer.ts";
import type { EpisodeRequest, RlTask, Rollout } from "./types.ts";

export { ensureBackend } from "../model/backend.ts";

/** A completion as the reward functions see it: text for a text prompt, an assistant turn for a chat prompt (TRL's convention). */
export type Completion = string | [{ role: "assistant"; content: string }];

export interface RewardFuncArgs {
  /** the prompt of each completion, as the dataset has it (repeated numGenerations times). */
  prompts: Prompt[];
  completions: Completion[];
  /** the generated token ids of each completion (eos included when it was produced). */
  completionIds: number[][];
  /** every other column of the rows, one value per completion. */
  [column: string]: unknown[];
}

/** One number per completion, in their order. */
export type RewardFunc = (args: RewardFuncArgs) => number[];
export type RewardFuncSpec = RewardFunc | { name: string; fn: RewardFunc };

/** What GRPOTrainer needs of a tokenizer (HFTokenizer has it). */
export type ChatTokenizer = Pick<
  HFTokenizer,
  "encode" | "encodeChat" | "decode" | "eosTokenIds" | "padTokenId"
>;

export type LogEntry = Record<string, number> & { step: number; epoch: number; learning_rate: number };

export interface TrainOutput {
  globalStep: number;
  /** mean of `loss` over the steps of this call. */
  trainingLoss: number;
  metrics: Record<string, number>;
}

const RESERVED = new Set(["prompts", "completions", "completionIds"]);

/** Completions of `count` rows × G, scored; the rows of an eval split are all of them. */
interface DatasetTask extends RlTask {
  /** position in the training order of the next row drawn (set on resume). */
  cursor: number;
  /** metrics of the last evaluation (eval_reward, eval_rewards/<name>/mean, …). */
  lastEvalMetrics: Record<string, number> | null;
}

function datasetTask(o: {
  tokenizer: ChatTokenizer;
  train: DatasetRow[];
  eval: DatasetRow[];
  rewardFuncs: { name: string; fn: RewardFunc }[];
  weights: number[];
  config: GrpoConfig;
  contextLength: number;
}): DatasetTask {
  const tok = o.tokenizer;
  const eos = tok.eosTokenIds;
  const order = new DatasetOrder(o.train.length, o.config.shuffleDataset ? o.config.seed : null);
  const encoded = new Map<DatasetRow, number[]>();
  const chunkRows = Math.max(o.config.perDeviceTrainBatchSize, 1);

  function promptIds(row: DatasetRow, where: string): number[] {
    let ids = encoded.get(row);
    if (ids) return ids;
    if (typeof row.prompt === "string") ids = tok.encode(row.prompt);
    else {
      if (row.prompt.at(-1)!.role === "assistant")
        throw new Error(
          `${where}: the prompt ends with an assistant message; continuing it is not supported`,
        );
      ids = tok.encodeChat(row.prompt, { addGenerationPrompt: true, variables: o.config.chatTemplateKwargs });
    }
    if (ids.length === 0) throw new Error(`${where}: the prompt encodes to no tokens`);
    if (ids.length >= o.contextLength)
      throw new Error(
        `${where}: the prompt has ${ids.length} tokens, the model's context is ${o.contextLength}`,
      );
    encoded.set(row, ids);
    return ids;
  }

  function score(
    rows: DatasetRow[],
    tokens: number[][],
  ): { total: number[]; perFunction: Record<string, number[]> } {
    const completions: Completion[] = tokens.map((t, i) => {
      const text = tok.decode(t, { skipSpecialTokens: true });
      return typeof rows[i]!.prompt === "string" ? text : [{ role: "assistant", content: text }];
    });
    const args: RewardFuncArgs = { prompts: rows.map((r) => r.prompt), completions, completionIds: tokens };
    for (const key of new Set(rows.flatMap((r) => Object.keys(r)))) {
      if (key === "prompt") continue;
      if (RESERVED.has(key))
        throw new Error(`dataset column "${key}" clashes with a reward-function argument`);
      args[key] = rows.map((r) => r[key]);
    }
    const values = new Map<string, number[]>();
    for (const f of o.rewardFuncs) {
      const out: unknown = f.fn(args);
      if (out instanceof Promise)
        throw new Error(`reward "${f.name}" returned a Promise: reward functions are synchronous here`);
      if (!Array.isArray(out) || out.length !== tokens.length)
        throw new Error(
          `reward "${f.name}" returned ${Array.isArray(out) ? `${out.length} values` : typeof out} for ${tokens.length} completions`,
        );
      values.set(f.name, out as number[]);
    }
    const composed = composeRewards(
      o.rewardFuncs.map((f, k) => ({
        name: f.name,
        weight: o.weights[k]!,
        fn: (j: number) => values.get(f.name)![j]!,
      })),
      tokens.map((_, j) => j),
    );
    return composed;
  }

  function rollouts(
    policy: CausalLM,
    rows: DatasetRow[],
    where: (i: number) => string,
    req: EpisodeRequest,
  ): Rollout[] {
    const G = req.numGenerations;
    const out: Rollout[] = [];
    const items = rows.flatMap((row, k) => Array.from({ length: G }, () => ({ row, k })));
    for (let start = 0; start < items.length; start += chunkRows) {
      const part = items.slice(start, start + chunkRows);
      const prompts = part.map((p) => promptIds(p.row, where(p.k)));
      const res = sample(policy, prompts, {
        maxNewTokens: o.config.maxCompletionLength,
        temperature: req.temperature,
        topP: req.topP,
        topK: req.topK,
        eosId: eos,
        rng: req.rng,
      });
      const scored = score(
        part.map((p) => p.row),
        res.tokens,
      );
      part.forEach((p, i) => {
        const components: Record<string, number> = {};
        for (const f of o.rewardFuncs) components[f.name] = scored.perFunction[f.name]![i]!;
        out.push({
          group: p.k,
          prompt: prompts[i]!,
          tokens: res.tokens[i]!,
          finished: res.finished[i]!,
          reward: scored.total[i]!,
          // A dataset with reward functions has no notion of a solved task; best_model/ follows the eval reward.
          success: false,
          rewardComponents: components,
        });
      });
    }
    return out;
  }

  const task: DatasetTask = {
    name: "dataset",
    eosId: eos[0] ?? tok.padTokenId ?? 0,
    cursor: 0,
    lastEvalMetrics: null,
    successLabel: "success",
    trainPrompts: () => {
      throw new Error("dataset task: prompts come with its rollouts");
    },
    evalPrompts: () => {
      throw new Error("dataset task: prompts come with its rollouts");
    },
    reward: () => {
      throw new Error("dataset task: rewards come with its rollouts");
    },
    describe: (tokens) => tok.decode(tokens, { skipSpecialTokens: false }).slice(0, 4000),
    rollouts(policy, req) {
      if (req.split === "eval") {
        const rs = rollouts(policy, o.eval, (i) => `evalDataset row ${i}`, req);
        const rewards = rs.map((r) => r.reward);
        const m = rewardComponentMetrics(rs);
        const metrics: Record<string, number> = {
          eval_reward: mean(rewards),
          "eval_completions/mean_length": mean(rs.map((r) => r.tokens.length)),
          "eval_completions/clipped_ratio": mean(rs.map((r) => (r.finished ? 0 : 1))),
        };
        for (const [k, v] of Object.entries(m)) metrics[`eval_${k}`] = v;
        task.lastEvalMetrics = metrics;
        return rs;
      }
      const picked = Array.from({ length: req.count }, () => order.at(task.cursor++));
      return rollouts(
        policy,
        picked.map((i) => o.train[i]!),
        (k) => `trainDataset row ${picked[k]}`,
        req,
      );
    },
  };
  return task;
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** What GRPOTrainer hands its engine: the checked options. */
export interface EngineSpec {
  config: GrpoConfig;
  outputDir: string;
  rewardFuncs: readonly { name: string; fn: RewardFunc }[];
  /** the model directory (absolute), or null for a model given in memory. */
  modelDir: string | null;
  model: CausalLM | null;
  tokenizer: ChatTokenizer | null;
  trainRows: DatasetRow[];
  evalRows: DatasetRow[] | null;
  log: (entry: LogEntry) => void;
}

/**
 * The tensor half of GRPOTrainer, loaded on its first train/evaluate/save so that importing the
 * package costs nothing of tfjs for those who never train.
 */
export class GRPOTrainerEngine {
  private readonly config: GrpoConfig;
  private readonly outputDir: string;
  private readonly rewardFuncs: readonly { name: string; fn: RewardFunc }[];
  private readonly modelDir: string | null;
  private readonly trainRows: DatasetRow[];
  private readonly evalRows: DatasetRow[] | null;
  private readonly log: (entry: LogEntry) => void;
  private policy: CausalLM | null;
  private tokenizer: ChatTokenizer | null;
  private inner: GrpoTrainer<CausalLM> | null = null;
  private task: DatasetTask | null = null;

  constructor(spec: EngineSpec) {
    this.config = spec.config;
    this.outputDir = spec.outputDir;
    this.rewardFuncs = spec.rewardFuncs;
    this.modelDir = spec.modelDir;
    this.trainRows = spec.trainRows;
    this.evalRows = spec.evalRows;
    this.log = spec.log;
    this.policy = spec.model;
    this.tokenizer = spec.tokenizer;
  }

  get model(): CausalLM | null {
    return this.policy;
  }

  get step(): number {
    return this.inner?.step ?? 0;
  }

  private promptsPerStep(): number {
    return this.config.perDeviceTrainBatchSize / this.config.numGenerations;
  }

  private trainerConfig(): TrainerConfig {
    const c = this.config;
    return {
      ...DEFAULT_TRAINER_CONFIG,
      ...c,
      promptsPerStep: this.promptsPerStep(),
      evalEvery: c.evalSteps ?? c.loggingSteps,
      evalSamples: c.numGenerationsEval ?? c.numGenerations,
      saveEvery: c.saveSteps,
      evaluate: this.evalRows !== null,
    };
  }

  private runInfo(): Record<string, unknown> {
    return {
      trainer: "GRPOTrainer",
      model: this.modelDir ?? "(given in memory)",
      reward_funcs: this.rewardFuncs.map((f) => f.name),
      reward_weights: this.config.rewardWeights ?? this.rewardFuncs.map(() => 1),
      train_rows: this.trainRows.length,
      eval_rows: this.evalRows?.length ?? 0,
    };
  }

  /** Loads what was given as a directory and applies the LoRA settings to a fresh policy. */
  private prepare(fresh: boolean): { tokenizer: ChatTokenizer; task: DatasetTask } {
    if (!this.tokenizer) this.tokenizer = HFTokenizer.load(this.modelDir!);
    if (fresh && !this.policy) {
      this.policy = loadModel(this.modelDir!, { rng: new Rng(this.config.seed) });
      if (this.config.lora) enableLora(this.policy, this.config.lora, new Rng(this.config.seed ^ 0x10a));
    } else if (fresh && this.config.lora && !this.policy!.loraConfig) {
      enableLora(this.policy!, this.config.lora, new Rng(this.config.seed ^ 0x10a));
    }
    const contextLength = this.policy?.contextLength ?? Number.POSITIVE_INFINITY;
    this.task ??= datasetTask({
      tokenizer: this.tokenizer,
      train: this.trainRows,
      eval: this.evalRows ?? [],
      rewardFuncs: [...this.rewardFuncs],
      weights: this.config.rewardWeights ?? this.rewardFuncs.map(() => 1),
      config: this.config,
      contextLength,
    });
    return { tokenizer: this.tokenizer, task: this.task };
  }

  /**
   * Runs to config.maxSteps steps in all. `resumeFromCheckpoint`: true continues from the newest
   * checkpoint-N of outputDir, a path from that checkpoint (model, Adam state, RNG, data order).
   */
  async train(opts: { resumeFromCheckpoint?: boolean | string } = {}): Promise<TrainOutput> {
    const resume = opts.resumeFromCheckpoint;
    let inner = this.inner;
    if (!inner) {
      if (resume) {
        if (this.modelDir === null)
          throw new Error(
            "GRPOTrainer: resuming needs the model as a directory (its checkpoints point to it)",
          );
        this.policy?.dispose();
        this.policy = null;
        const { task } = this.prepare(false);
        inner = await GrpoTrainer.resume<CausalLM>({
          task,
          config: this.trainerConfig(),
          outputDir: this.outputDir,
          runInfo: this.runInfo(),
          ...(this.config.lora ? { baseModelDir: this.modelDir } : {}),
          ...(typeof resume === "string" ? { checkpointDir: resume } : {}),
        });
        this.policy = inner.policy;
        task.cursor = inner.step * this.promptsPerStep();
      } else {
        const { task } = this.prepare(true);
        const policyBase = this.config.lora && this.modelDir !== null ? { baseModelDir: this.modelDir } : {};
        inner = new GrpoTrainer<CausalLM>(this.policy!, {
          task,
          config: this.trainerConfig(),
          outputDir: this.outputDir,
          runInfo: this.runInfo(),
          ...policyBase,
        });
      }
      this.inner = inner;
    }
    const policy = this.policy!;
    const dropout = this.config.lora?.loraDropout ?? 0;
    if (policy instanceof PretrainedLM && dropout > 0)
      policy.setTraining(true, this.config.seed ^ inner.step);
    const window: StepRecord[] = [];
    const losses: number[] = [];
    let pendingEval: Record<string, number> | null = null;
    try {
      await inner.train(this.config.maxSteps, (r: StepRecord, e: EvalResult | null) => {
        window.push(r);
        if (r.loss !== null && r.loss !== undefined) losses.push(r.loss);
        if (e) pendingEval = this.task!.lastEvalMetrics;
        if (inner.step % this.config.loggingSteps === 0 || inner.step >= this.config.maxSteps) {
          this.emitLog(window.splice(0), pendingEval);
          pendingEval = null;
        }
      });
    } finally {
      if (policy instanceof PretrainedLM) policy.setTraining(false);
    }
    this.copyCompanions();
    return {
      globalStep: inner.step,
      trainingLoss: mean(losses),
      metrics: this.lastLog ?? {},
    };
  }

  private lastLog: LogEntry | null = null;

  private emitLog(records: StepRecord[], evalMetrics: Record<string, number> | null): void {
    if (records.length === 0) return;
    const step = records.at(-1)!.step;
    const entry: Record<string, number> = {};
    const keys = new Set(records.flatMap((r) => Object.keys(r)));
    for (const k of keys) {
      if (k === "step" || k === "phase" || k === "success_rate" || k.startsWith("eval_")) continue;
      const vs = records.map((r) => r[k]).filter((v): v is number => typeof v === "number");
      if (vs.length > 0) entry[k] = mean(vs);
    }
    Object.assign(entry, evalMetrics ?? {});
    const log = {
      ...entry,
      step,
      epoch: (step * this.promptsPerStep()) / this.trainRows.length,
      learning_rate: this.config.learningRate,
    } as LogEntry;
    this.lastLog = log;
    this.log(log);
  }

  /** A full fine-tune's final/ and best_model/ get the tokenizer files, so they load on their own. */
  private copyCompanions(): void {
    if (this.config.lora || this.modelDir === null) return;
    for (const d of ["final", "best_model"]) {
      const dir = join(this.outputDir, d);
      if (existsSync(dir)) copyCompanionFiles(this.modelDir, dir);
    }
  }

  /**
   * Samples numGenerationsEval completions of every eval row and returns TRL's eval metrics
   * (eval_reward, eval_rewards/<name>/mean and /std, eval_completions/mean_length, …).
   */
  async evaluate(): Promise<Record<string, number>> {
    if (!this.evalRows) throw new Error("GRPOTrainer.evaluate: no evalDataset was given");
    const { task } = this.prepare(this.inner === null);
    const c = this.config;
    task.rollouts!(this.policy!, {
      split: "eval",
      count: 0,
      numGenerations: c.numGenerationsEval ?? c.numGenerations,
      temperature: c.temperature,
      topP: c.topP,
      topK: c.topK,
      rng: new Rng(c.seed ^ 0x5eed_e7a1),
      phase: 1,
    });
    return { ...task.lastEvalMetrics! };
  }

  /**
   * Writes the policy to `dir` (default: outputDir): a LoRA policy as its PEFT adapter
   * (adapter_model.safetensors + adapter_config.json, base_model_name_or_path the model
   * directory), otherwise the full weights in the model's layout with its tokenizer files.
   */
  async saveModel(dir: string = this.outputDir): Promise<void> {
    const policy = this.policy;
    if (!policy) throw new Error("GRPOTrainer.saveModel: no model yet (call train first)");
    mkdirSync(dir, { recursive: true });
    if (policy.loraConfig) {
      const base = this.modelDir === null ? undefined : relative(dir, this.modelDir) || ".";
      saveModel(dir, policy, { lora: true, baseModelPath: base });
    } else {
      saveModel(dir, policy);
      if (this.modelDir !== null) copyCompanionFiles(this.modelDir, dir);
    }
  }

  /** Frees the tensors of the policy (when this engine loaded it), its reference and optimizer. */
  dispose(): void {
    this.inner?.dispose();
    if (this.modelDir !== null) this.policy?.dispose();
    this.inner = null;
  }
}

function copyCompanionFiles(from: string, to: string): void {
  for (const f of COMPANION_FILES) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
}

function enableLora(model: CausalLM, l: NonNullable<GrpoConfig["lora"]>, rng: Rng): void {
  if (model.loraConfig)
    throw new Error("GRPOTrainer: the model already carries LoRA adapters; pass lora: null");
  if (model instanceof PretrainedLM) {
    model.enableLoRA(
      { r: l.r, alpha: l.loraAlpha, dropout: l.loraDropout, targetModules: l.targetModules },
      rng,
    );
    return;
  }
  if (model instanceof GPT) {
    if (l.loraDropout !== 0)
      throw new Error("GRPOTrainer: the project's GPT has no LoRA dropout; set lora.loraDropout to 0");
    const unknown = l.targetModules.filter((t) => !LORA_TARGETS.includes(t as LoRATarget));
    if (unknown.length > 0)
      throw new Error(
        `GRPOTrainer: lora.targetModules ${unknown.join(", ")} are not modules of the project's GPT (${LORA_TARGETS.join(", ")})`,
      );
    model.enableLoRA({ r: l.r, alpha: l.loraAlpha, targetModules: l.targetModules as LoRATarget[] }, rng);
    return;
  }
  throw new Error("GRPOTrainer: lora is set but this model type has no LoRA support");
}
