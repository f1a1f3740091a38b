/**
 * GRPOTrainer: TRL's GRPOTrainer for TypeScript, on the project's trainer (./trainer.ts).
 *
 *   const trainer = new GRPOTrainer({
 *     model: "SmolLM2-135M-Instruct",            // a Hugging Face model directory, or a loaded CausalLM
 *     rewardFuncs: [correct, short],             // (args) => one number per completion
 *     trainDataset: "train.jsonl",               // rows with a `prompt` and any other columns
 *     config: { numGenerations: 8, maxCompletionLength: 128, lora: { r: 16, … } },
 *     outputDir: "outputs/my-run",
 *   });
 *   await trainer.train();
 *
 * A step takes perDeviceTrainBatchSize / numGenerations rows, samples numGenerations completions
 * of each with the KV-cached sampler, scores them with every reward function (weighted by
 * rewardWeights, summed), and takes the GRPO step of GrpoTrainer: group advantages, the loss
 * type's objective, KL when β > 0, Adam. The output directory is GrpoTrainer's: history.jsonl
 * (one line per step, TRL's metric names, rewards/<name>/mean and /std per reward function),
 * checkpoint-N/ every saveSteps, final/, best_model/ when there is an eval dataset,
 * training_stats.json; a LoRA run's checkpoints hold the PEFT adapter over the model directory.
 *
 * This module loads no tensors: the engine (./grpo-trainer-engine.ts) is imported on the first
 * train, evaluate or saveModel call.
 */
import { resolve } from "node:path";
import { GRPO_DEFAULTS, type GrpoConfig } from "../core/config.ts";
import type { CausalLM } from "../model/causal-lm.ts";
import { checkDataset, type DatasetRow, loadDataset } from "./dataset.ts";
import type {
  ChatTokenizer,
  GRPOTrainerEngine,
  LogEntry,
  RewardFunc,
  TrainOutput,
} from "./grpo-trainer-engine.ts";

export type {
  ChatTokenizer,
  Completion,
  LogEntry,
  RewardFunc,
  RewardFuncArgs,
  TrainOutput,
} from "./grpo-trainer-engine.ts";
export type RewardFuncSpec = RewardFunc | { name: string; fn: RewardFunc };

export interface GRPOTrainerOptions {
  /** a model directory (Hugging Face layout, or the project's GPT with a tokenizer.json), or a loaded model. */
  model: string | CausalLM;
  /** TRL's processing_class; default: the tokenizer of the model directory. */
  processingClass?: ChatTokenizer;
  rewardFuncs: RewardFuncSpec | RewardFuncSpec[];
  /** rows, or a .jsonl / .json file of rows. */
  trainDataset: readonly DatasetRow[] | string;
  evalDataset?: readonly DatasetRow[] | string;
  /** GrpoConfig with TRL's names; what is left out takes GRPO_DEFAULTS' value. */
  config?: Partial<GrpoConfig>;
  outputDir: string;
  /** every loggingSteps steps: the means of the steps since the last entry (and the last evaluation's metrics). */
  onLog?: (entry: LogEntry) => void;
}

function namedRewardFuncs(specs: RewardFuncSpec | RewardFuncSpec[]): { name: string; fn: RewardFunc }[] {
  const list = Array.isArray(specs) ? specs : [specs];
  if (list.length === 0) throw new Error("GRPOTrainer: rewardFuncs is empty");
  return list.map((f, k) => {
    if (typeof f === "function") {
      if (!f.name) throw new Error(`GRPOTrainer: reward function ${k} has no name; pass { name, fn }`);
      return { name: f.name, fn: f };
    }
    if (!f || typeof f.fn !== "function" || typeof f.name !== "string")
      throw new Error(`GRPOTrainer: reward function ${k}: expected a function or { name, fn }`);
    return f;
  });
}

function resolveConfig(c: Partial<GrpoConfig> | undefined, rewardCount: number): GrpoConfig {
  // A field given as undefined keeps its default, as an absent one does.
  const given = Object.fromEntries(Object.entries(c ?? {}).filter(([, v]) => v !== undefined));
  const cfg: GrpoConfig = { ...GRPO_DEFAULTS, ...given };
  const posInt = (v: number, name: string) => {
    if (!(Number.isInteger(v) && v >= 1))
      throw new Error(`GRPOTrainer config: ${name} must be an integer ≥ 1, got ${v}`);
  };
  posInt(cfg.perDeviceTrainBatchSize, "perDeviceTrainBatchSize");
  posInt(cfg.loggingSteps, "loggingSteps");
  if (cfg.evalSteps !== undefined) posInt(cfg.evalSteps, "evalSteps");
  if (cfg.numGenerationsEval !== undefined) posInt(cfg.numGenerationsEval, "numGenerationsEval");
  if (!(Number.isInteger(cfg.saveSteps) && cfg.saveSteps >= 0))
    throw new Error(`GRPOTrainer config: saveSteps must be an integer ≥ 0, got ${cfg.saveSteps}`);
  if (cfg.perDeviceTrainBatchSize % cfg.numGenerations !== 0)
    throw new Error(
      `GRPOTrainer config: perDeviceTrainBatchSize (${cfg.perDeviceTrainBatchSize}) must be a multiple of numGenerations (${cfg.numGenerations})`,
    );
  if (cfg.rewardWeights !== undefined) {
    if (!Array.isArray(cfg.rewardWeights) || cfg.rewardWeights.length !== rewardCount)
      throw new Error(
        `GRPOTrainer config: rewardWeights has ${cfg.rewardWeights?.length ?? 0} weights for ${rewardCount} reward functions`,
      );
  }
  if (cfg.lora) {
    const l = cfg.lora;
    if (!(Number.isInteger(l.r) && l.r >= 1))
      throw new Error(`GRPOTrainer config: lora.r must be an integer ≥ 1, got ${l.r}`);
    if (!(l.loraAlpha > 0))
      throw new Error(`GRPOTrainer config: lora.loraAlpha must be > 0, got ${l.loraAlpha}`);
    if (!(l.loraDropout >= 0 && l.loraDropout < 1))
      throw new Error(`GRPOTrainer config: lora.loraDropout must be in [0, 1), got ${l.loraDropout}`);
    if (!Array.isArray(l.targetModules) || l.targetModules.length === 0)
      throw new Error("GRPOTrainer config: lora.targetModules is empty");
  }
  return cfg;
}

export class GRPOTrainer {
  readonly config: GrpoConfig;
  readonly outputDir: string;
  readonly rewardFuncs: readonly { name: string; fn: RewardFunc }[];
  /** the entries onLog received, in order. */
  readonly logHistory: LogEntry[] = [];
  private readonly modelDir: string | null;
  private readonly given: CausalLM | null;
  private readonly tokenizer: ChatTokenizer | null;
  private readonly trainRows: DatasetRow[];
  private readonly evalRows: DatasetRow[] | null;
  private readonly onLog?: (entry: LogEntry) => void;
  private engine: GRPOTrainerEngine | null = null;

  constructor(opts: GRPOTrainerOptions) {
    this.rewardFuncs = namedRewardFuncs(opts.rewardFuncs);
    this.config = resolveConfig(opts.config, this.rewardFuncs.length);
    this.outputDir = opts.outputDir;
    const rows = (d: readonly DatasetRow[] | string, name: string) =>
      typeof d === "string" ? loadDataset(d) : checkDataset(d, name);
    this.trainRows = rows(opts.trainDataset, "trainDataset");
    this.evalRows = opts.evalDataset === undefined ? null : rows(opts.evalDataset, "evalDataset");
    this.modelDir = typeof opts.model === "string" ? resolve(opts.model) : null;
    this.given = typeof opts.model === "string" ? null : opts.model;
    this.tokenizer = opts.processingClass ?? null;
    if (!this.tokenizer && this.modelDir === null)
      throw new Error("GRPOTrainer: a loaded model needs its tokenizer as processingClass");
    this.onLog = opts.onLog;
  }

  /** The policy being trained; a model given as a directory is loaded on the first train/evaluate call. */
  get model(): CausalLM | null {
    return this.engine?.model ?? this.given;
  }

  /** GRPO steps taken so far (a resumed run counts those before it). */
  get globalStep(): number {
    return this.engine?.step ?? 0;
  }

  private async load(): Promise<GRPOTrainerEngine> {
    if (this.engine) return this.engine;
    const m = await import("./grpo-trainer-engine.ts");
    await m.ensureBackend();
    this.engine = new m.GRPOTrainerEngine({
      config: this.config,
      outputDir: this.outputDir,
      rewardFuncs: this.rewardFuncs,
      modelDir: this.modelDir,
      model: this.given,
      tokenizer: this.tokenizer,
      trainRows: this.trainRows,
      evalRows: this.evalRows,
      log: (entry) => {
        this.logHistory.push(entry);
        this.onLog?.(entry);
      },
    });
    return this.engine;
  }

  /**
   * Runs to config.maxSteps steps in all. `resumeFromCheckpoint`: true continues from the newest
   * checkpoint-N of outputDir, a path from that checkpoint (model, Adam state, RNG, data order).
   */
  async train(opts: { resumeFromCheckpoint?: boolean | string } = {}): Promise<TrainOutput> {
    return (await this.load()).train(opts);
  }

  /**
   * Samples numGenerationsEval completions of every eval row and returns TRL's eval metrics
   * (eval_reward, eval_rewards/<name>/mean and /std, eval_completions/mean_length, …).
   */
  async evaluate(): Promise<Record<string, number>> {
    if (!this.evalRows) throw new Error("GRPOTrainer.evaluate: no evalDataset was given");
    return (await this.load()).evaluate();
  }

  /**
   * Writes the policy to `dir` (default: outputDir): a LoRA policy as its PEFT adapter
   * (adapter_model.safetensors + adapter_config.json, base_model_name_or_path the model
   * directory), otherwise the full weights in the model's layout with its tokenizer files.
   */
  async saveModel(dir: string = this.outputDir): Promise<void> {
    return (await this.load()).saveModel(dir);
  }

  /** Frees the tensors of the policy (when it was loaded from a directory), its reference and optimizer. */
  dispose(): void {
    this.engine?.dispose();
    this.engine = null;
  }
}
