/**
 * PEFT LoRA adapters: `adapter_model.safetensors` + `adapter_config.json` as PEFT writes and
 * reads them (`PeftModel.from_pretrained`), and merging an adapter into its base.
 *
 * Keys: `base_model.model.<module path>.lora_A.weight` [r, d_in] and `.lora_B.weight`
 * [d_out, r] — the torch Linear layout of PEFT's two factors, for Conv1D modules (GPT-2) too;
 * PEFT's in-memory names carry the adapter name (`lora_A.default.weight`), which it strips on
 * save and which is accepted here on load. In memory A is [d_in, r] and B [r, d_out].
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../../core/rng.ts";
import { FileFormatError, readJsonFile, writeJsonAtomic } from "../../io/files.ts";
import {
  readSafetensorsFile,
  type SafeTensor,
  SafetensorsError,
  toFloat32,
  writeSafetensorsFile,
} from "../safetensors-format.ts";
import { HF_LORA_TARGETS, type HFLoRAConfig, type PretrainedLM } from "./model.ts";

export const ADAPTER_FILE = "adapter_model.safetensors";
export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const PEFT_PREFIX = "base_model.model.";

export interface AdapterConfig extends HFLoRAConfig {
  baseModelNameOrPath: string | null;
  /** PEFT's bias setting; only "none" (biases not trained) is supported. */
  bias: "none";
  fanInFanOut: boolean;
}

/** adapter_config.json → AdapterConfig; an unsupported setting is an error naming the field. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  const j = readJsonFile(file) as Record<string, unknown>;
  const fail = (field: string, msg: string): never => {
    throw new FileFormatError(file, undefined, field, msg);
  };
  if (typeof j !== "object" || j === null || Array.isArray(j)) fail("(root)", "expected a JSON object");
  if (j.peft_type !== "LORA") fail("peft_type", `must be "LORA", got ${JSON.stringify(j.peft_type)}`);
  if (j.task_type !== undefined && j.task_type !== null && j.task_type !== "CAUSAL_LM")
    fail("task_type", `must be "CAUSAL_LM", got ${JSON.stringify(j.task_type)}`);
  if (!Number.isInteger(j.r) || (j.r as number) <= 0) fail("r", "must be a positive integer");
  const alpha = j.lora_alpha ?? 8;
  if (typeof alpha !== "number" || !(alpha > 0)) fail("lora_alpha", "must be a positive number");
  const dropout = j.lora_dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1))
    fail("lora_dropout", "must be in [0, 1)");
  const targets = typeof j.target_modules === "string" ? [j.target_modules] : j.target_modules;
  if (!Array.isArray(targets) || targets.length === 0 || !targets.every((t) => typeof t === "string"))
    fail("target_modules", "must be a non-empty list of module names");
  if ((j.bias ?? "none") !== "none") fail("bias", `only "none" is supported, got ${JSON.stringify(j.bias)}`);
  if (j.use_dora === true) fail("use_dora", "DoRA is not supported");
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    const v = j[k];
    if (v !== undefined && v !== null && (typeof v !== "object" || Object.keys(v as object).length > 0))
      fail(k, "per-module ranks or alphas are not supported");
  }
  if (j.layers_to_transform !== undefined && j.layers_to_transform !== null)
    fail("layers_to_transform", "is not supported");
  const base = j.base_model_name_or_path;
  return {
    r: j.r as number,
    alpha: alpha as number,
    dropout: dropout as number,
    targetModules: targets as string[],
    useRslora: j.use_rslora === true,
    baseModelNameOrPath: typeof base === "string" ? base : null,
    bias: "none",
    fanInFanOut: j.fan_in_fan_out === true,
  };
}

/** PEFT's adapter_config.json for the model's LoRA. */
export function adapterConfigJson(
  model: PretrainedLM,
  baseModelNameOrPath: string | null,
): Record<string, unknown> {
  const l = model.loraConfig;
  if (!l) throw new Error("adapter config: the model has no LoRA adapters enabled");
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModelNameOrPath,
    r: l.r,
    lora_alpha: l.alpha,
    lora_dropout: l.dropout ?? 0,
    target_modules: l.targetModules,
    bias: "none",
    // GPT-2's Conv1D stores weights [d_in, d_out]; PEFT needs to know to merge them transposed.
    fan_in_fan_out: model.spec.family === "gpt2",
    use_rslora: l.useRslora ?? false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

function transposed(t: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.transpose(t).dataSync() as Float32Array).slice();
}

/** Writes the adapter (F32) and its config; the base is not written. */
export function saveAdapter(
  dir: string,
  model: PretrainedLM,
  opts: { baseModelNameOrPath?: string | null } = {},
): void {
  const tensors: Record<string, SafeTensor> = {};
  for (const p of model.projections()) {
    if (!p.lora) continue;
    const [din, r] = p.lora.a.shape as [number, number];
    const dout = p.lora.b.shape[1]!;
    tensors[`${PEFT_PREFIX}${p.path}.lora_A.weight`] = {
      dtype: "F32",
      shape: [r, din],
      data: transposed(p.lora.a),
    };
    tensors[`${PEFT_PREFIX}${p.path}.lora_B.weight`] = {
      dtype: "F32",
      shape: [dout, r],
      data: transposed(p.lora.b),
    };
  }
  writeSafetensorsFile(join(dir, ADAPTER_FILE), tensors, { format: "pt" });
  writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), adapterConfigJson(model, opts.baseModelNameOrPath ?? null));
}

/**
 * Enables LoRA on `model` with the adapter's config and loads its A/B matrices. Every
 * adapted module needs both factors in the file, and every tensor in the file must belong to
 * an adapted module.
 */
export function loadAdapter(model: PretrainedLM, dir: string, rng: Rng): AdapterConfig {
  const cfg = readAdapterConfig(dir);
  const cfgFile = join(dir, ADAPTER_CONFIG_FILE);
  const file = join(dir, ADAPTER_FILE);
  if (!existsSync(file)) throw new SafetensorsError(file, "file not found");
  const expectedFanInFanOut = model.spec.family === "gpt2";
  if (cfg.fanInFanOut !== expectedFanInFanOut) {
    throw new FileFormatError(
      cfgFile,
      undefined,
      "fan_in_fan_out",
      `must be ${expectedFanInFanOut} for ${model.spec.architecture} (${expectedFanInFanOut ? "Conv1D" : "Linear"} modules)`,
    );
  }
  const { tensors } = readSafetensorsFile(file);
  try {
    model.enableLoRA(cfg, rng);
  } catch (err) {
    const known = HF_LORA_TARGETS[model.spec.family].join(", ");
    throw new FileFormatError(
      cfgFile,
      undefined,
      "target_modules",
      `${(err as Error).message} (known: ${known})`,
    );
  }
  const byName = new Map<string, SafeTensor>();
  for (const [key, t] of Object.entries(tensors)) {
    if (!key.startsWith(PEFT_PREFIX))
      throw new SafetensorsError(file, `tensor "${key}" lacks the "${PEFT_PREFIX}" prefix`);
    byName.set(
      key.slice(PEFT_PREFIX.length).replace(/\.lora_([AB])\.default\.weight$/, ".lora_$1.weight"),
      t,
    );
  }
  const values: Record<string, tf.Tensor> = {};
  const used = new Set<string>();
  tf.tidy(() => {
    for (const p of model.projections()) {
      if (!p.lora) continue;
      for (const [which, fileShape] of [
        ["A", [p.lora.a.shape[1]!, p.lora.a.shape[0]!]],
        ["B", [p.lora.b.shape[1]!, p.lora.b.shape[0]!]],
      ] as const) {
        const name = `${p.path}.lora_${which}.weight`;
        const t = byName.get(name);
        if (!t) throw new SafetensorsError(file, `missing tensor "${PEFT_PREFIX}${name}"`);
        if (!tf.util.arraysEqual(t.shape, [...fileShape]))
          throw new SafetensorsError(
            file,
            `tensor "${PEFT_PREFIX}${name}" has shape [${t.shape}], expected [${fileShape}]`,
          );
        used.add(name);
        values[name] = tf.keep(tf.transpose(tf.tensor(toFloat32(t, name), t.shape)));
      }
    }
  });
  try {
    for (const n of byName.keys()) {
      if (!used.has(n))
        throw new SafetensorsError(file, `tensor "${PEFT_PREFIX}${n}" belongs to no adapted module`);
    }
    model.loadNamedWeights(values, { partial: true, source: file });
  } finally {
    tf.dispose(Object.values(values));
  }
  return cfg;
}
