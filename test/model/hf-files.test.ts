/**
 * Hugging Face model files: 16-bit floats, sharded safetensors, loading errors that name the
 * file and the key, GPT-2 checkpoints in their older key layout, PEFT adapters (keys, config,
 * round trip) and merge.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { ADAPTER_CONFIG_FILE, PEFT_PREFIX } from "../../src/model/hf/adapter.ts";
import { mergeAdapter } from "../../src/model/hf/merge.ts";
import type { PretrainedLM } from "../../src/model/hf/model.ts";
import { loadPretrained, savePretrained } from "../../src/model/hf/weights.ts";
import { loadModel, saveModel } from "../../src/model/safetensors.ts";
import {
  bf16ToFloat,
  floatToBf16,
  floatToHalf,
  halfToFloat,
  readSafetensorsFile,
  type SafeTensor,
  SafetensorsReader,
  ShardedReader,
  writeSafetensorsFile,
  writeShardedSafetensors,
} from "../../src/model/safetensors-format.ts";
import { sample } from "../../src/model/sampler.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { maxAbsDiff, randomIds } from "./helpers.ts";
import { tinyModel, writeTinyModel } from "./hf-helpers.ts";

const tmp = tempDirs("grpo-hf-files-")();

before(async () => {
  await initBackend("wasm");
});

const logitsOf = (m: PretrainedLM, ids: number[][]) =>
  tf.tidy(() => m.forward(tf.tensor2d(ids, undefined, "int32")).dataSync() as Float32Array);

describe("16-bit floats", () => {
  it("half: exact values, round to nearest even, overflow, subnormals", () => {
    assert.equal(floatToHalf(1), 0x3c00);
    assert.equal(floatToHalf(-2), 0xc000);
    assert.equal(floatToHalf(65504), 0x7bff);
    assert.equal(floatToHalf(70000), 0x7c00);
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
    assert.equal(floatToHalf(2 ** -24), 0x0001);
    assert.equal(floatToHalf(2 ** -26), 0);
    assert.ok(Number.isNaN(halfToFloat(floatToHalf(Number.NaN))));
    for (const v of [0.1, -3.75, 1234.5, 2 ** -20])
      assert.equal(halfToFloat(floatToHalf(v)), Math.fround(halfToFloat(floatToHalf(v))));
    assert.equal(halfToFloat(0x3555), 0.333251953125);
  });

  it("bfloat16: round to nearest even, NaN kept", () => {
    assert.equal(floatToBf16(1), 0x3f80);
    assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie → even
    assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(bf16ToFloat(0xc040), -3);
    assert.ok(Number.isNaN(bf16ToFloat(floatToBf16(Number.NaN))));
  });
});

describe("safetensors files", () => {
  it("shards above maxShardBytes with transformers' index, and reads them back tensor by tensor", () => {
    const tensors: Record<string, SafeTensor> = {};
    for (let i = 0; i < 5; i++)
      tensors[`t${i}`] = {
        dtype: "F32",
        shape: [10, 10],
        data: Float32Array.from({ length: 100 }, (_, j) => i * 1000 + j),
      };
    const dir = join(tmp, "sharded");
    const files = writeShardedSafetensors(dir, tensors, { maxShardBytes: 900 });
    assert.deepEqual(files, [
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
      "model.safetensors.index.json",
    ]);
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
    assert.equal(index.metadata.total_size, 2000);
    assert.equal(index.weight_map.t4, "model-00003-of-00003.safetensors");
    const r = new ShardedReader(dir);
    try {
      assert.deepEqual(r.names().sort(), Object.keys(tensors));
      assert.deepEqual(Array.from(r.read("t3").data), Array.from(tensors.t3!.data));
    } finally {
      r.close();
    }
  });

  it("streams F16 and BF16 tensors to disk and reads their words back", () => {
    const file = join(tmp, "half.safetensors");
    writeSafetensorsFile(file, {
      h: { dtype: "F16", shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) },
      b: { dtype: "BF16", shape: [1], data: Uint16Array.from([0x3f80]) },
    });
    const { tensors } = readSafetensorsFile(file);
    assert.deepEqual(Array.from(tensors.h!.data), [0x3c00, 0xc000]);
    assert.equal(tensors.b!.dtype, "BF16");
    const r = new SafetensorsReader(file);
    assert.deepEqual(r.info("h"), { dtype: "F16", shape: [2] });
    r.close();
  });
});

describe("loading Hugging Face directories", () => {
  it("keeps each tensor's dtype: a BF16 checkpoint is written back as BF16 with the same values", () => {
    const dir = join(tmp, "bf16");
    writeTinyModel(dir, "qwen2", { dtype: "BF16" });
    const m = loadPretrained(dir);
    const out = join(tmp, "bf16-again");
    savePretrained(out, m);
    const a = readSafetensorsFile(join(dir, "model.safetensors")).tensors;
    const b = readSafetensorsFile(join(out, "model.safetensors")).tensors;
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const k of Object.keys(a)) {
      assert.equal(b[k]!.dtype, "BF16", k);
      assert.deepEqual(Array.from(b[k]!.data), Array.from(a[k]!.data), k);
    }
    // Tied head: no lm_head.weight is written.
    assert.ok(!("lm_head.weight" in b));
    assert.equal(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).torch_dtype, "bfloat16");
    m.dispose();
  });

  it("an unsupported architecture names config.json and the field", () => {
    const dir = join(tmp, "mistral");
    writeTinyModel(dir, "llama");
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ ...cfg, architectures: ["MistralForCausalLM"] }),
    );
    assert.throws(
      () => loadModel(dir),
      /mistral\/config\.json \(field architectures\): "MistralForCausalLM" is not supported \(supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel\)/,
    );
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ ...cfg, rope_scaling: { rope_type: "yarn", factor: 4 } }),
    );
    assert.throws(
      () => loadModel(dir),
      /config\.json \(field rope_scaling\.rope_type\): "yarn" is not supported/,
    );
  });

  it("a missing, mis-shaped or unknown tensor names the file and the key", () => {
    const dir = join(tmp, "broken");
    writeTinyModel(dir, "qwen3");
    const file = join(dir, "model.safetensors");
    const { tensors } = readSafetensorsFile(file);
    const without = { ...tensors };
    delete without["model.layers.1.self_attn.k_norm.weight"];
    writeSafetensorsFile(file, without);
    assert.throws(
      () => loadModel(dir),
      /broken\/model\.safetensors: missing tensor "model\.layers\.1\.self_attn\.k_norm\.weight"/,
    );
    writeSafetensorsFile(file, {
      ...tensors,
      "model.layers.0.mlp.up_proj.weight": { dtype: "F32", shape: [2, 2], data: new Float32Array(4) },
    });
    assert.throws(
      () => loadModel(dir),
      /model\.safetensors: tensor "model\.layers\.0\.mlp\.up_proj\.weight" has shape \[2,2\], Qwen3ForCausalLM with this config\.json needs \[48,32\]/,
    );
    writeSafetensorsFile(file, {
      ...tensors,
      "model.layers.0.mlp.extra.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    });
    assert.throws(
      () => loadModel(dir),
      /model\.safetensors: tensor "model\.layers\.0\.mlp\.extra\.weight" has no place in Qwen3ForCausalLM/,
    );
  });

  it("a sharded checkpoint names its index for a tensor it lacks", () => {
    const dir = join(tmp, "sharded-model");
    writeTinyModel(dir, "llama", { maxShardBytes: 20_000 });
    const indexFile = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexFile, "utf8"));
    delete index.weight_map["lm_head.weight"];
    writeFileSync(indexFile, JSON.stringify(index));
    assert.throws(() => loadModel(dir), /model\.safetensors\.index\.json: missing tensor "lm_head\.weight"/);
  });

  it("GPT-2 checkpoints without the transformer. prefix and with attention-mask buffers load", () => {
    const dir = join(tmp, "gpt2-old");
    const m = tinyModel("gpt2");
    savePretrained(dir, m);
    const file = join(dir, "model.safetensors");
    const { tensors } = readSafetensorsFile(file);
    const old: Record<string, SafeTensor> = {};
    for (const [k, t] of Object.entries(tensors)) old[k.replace(/^transformer\./, "")] = t;
    old["h.0.attn.bias"] = { dtype: "F32", shape: [1, 1, 2, 2], data: new Float32Array(4) };
    writeSafetensorsFile(file, old);
    const loaded = loadModel(dir) as PretrainedLM;
    const ids = randomIds(new Rng(3), 2, 6, 59);
    assert.ok(maxAbsDiff(logitsOf(loaded, ids), logitsOf(m, ids)) < 1e-6);
    loaded.dispose();
    m.dispose();
  });

  it("honours a list of eos ids from config.json and generation_config.json", () => {
    const dir = join(tmp, "eos");
    writeTinyModel(dir, "llama");
    writeFileSync(
      join(dir, "generation_config.json"),
      JSON.stringify({ eos_token_id: [7, 2], temperature: 0.6 }),
    );
    const m = loadModel(dir) as PretrainedLM;
    assert.deepEqual(m.spec.eosTokenIds, [2, 3, 7]);
    // Greedy run, then stop at its second token when that token is among several eos ids.
    const free = sample(m, [[5, 6, 7]], { maxNewTokens: 6, temperature: 0, rng: new Rng(1) });
    const stopAt = free.tokens[0]![1]!;
    const firstAt = free.tokens[0]!.indexOf(stopAt);
    const stopped = sample(m, [[5, 6, 7]], {
      maxNewTokens: 6,
      temperature: 0,
      rng: new Rng(1),
      eosId: [60, stopAt],
    });
    assert.deepEqual(stopped.tokens[0], free.tokens[0]!.slice(0, firstAt + 1));
    assert.deepEqual(stopped.finished, [true]);
    m.dispose();
  });
});

describe("PEFT adapters and merge", () => {
  function adapted(name: string, targets: string[], seed: number): { base: string; model: PretrainedLM } {
    const base = join(tmp, `${name}-base-${seed}`);
    writeTinyModel(base, name, { dtype: name === "qwen2" ? "BF16" : "F32", seed });
    const model = loadModel(base) as PretrainedLM;
    model.enableLoRA({ r: 2, alpha: 4, dropout: 0.05, targetModules: targets }, new Rng(seed));
    const rng = new Rng(seed + 7);
    tf.tidy(() => {
      const w: Record<string, tf.Tensor> = {};
      for (const [n, t] of Object.entries(model.namedWeights()))
        if (n.includes(".lora_B"))
          w[n] = tf.tensor(
            Float32Array.from({ length: t.size }, () => 0.2 * rng.normal()),
            t.shape,
          );
      model.loadNamedWeights(w, { partial: true });
    });
    return { base, model };
  }

  it("writes PEFT's keys, shapes and config fields", () => {
    const { base, model } = adapted("llama", ["q_proj", "down_proj"], 1);
    const dir = join(tmp, "llama-adapter");
    saveModel(dir, model, { lora: true, baseModelPath: "my-org/tiny-llama" });
    const cfg = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), "utf8"));
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.task_type, "CAUSAL_LM");
    assert.equal(cfg.base_model_name_or_path, "my-org/tiny-llama");
    assert.equal(cfg.r, 2);
    assert.equal(cfg.lora_alpha, 4);
    assert.equal(cfg.lora_dropout, 0.05);
    assert.deepEqual(cfg.target_modules, ["q_proj", "down_proj"]);
    assert.equal(cfg.bias, "none");
    assert.equal(cfg.fan_in_fan_out, false);
    const { tensors } = readSafetensorsFile(join(dir, "adapter_model.safetensors"));
    assert.deepEqual(Object.keys(tensors).sort(), [
      `${PEFT_PREFIX}model.layers.0.mlp.down_proj.lora_A.weight`,
      `${PEFT_PREFIX}model.layers.0.mlp.down_proj.lora_B.weight`,
      `${PEFT_PREFIX}model.layers.0.self_attn.q_proj.lora_A.weight`,
      `${PEFT_PREFIX}model.layers.0.self_attn.q_proj.lora_B.weight`,
      `${PEFT_PREFIX}model.layers.1.mlp.down_proj.lora_A.weight`,
      `${PEFT_PREFIX}model.layers.1.mlp.down_proj.lora_B.weight`,
      `${PEFT_PREFIX}model.layers.1.self_attn.q_proj.lora_A.weight`,
      `${PEFT_PREFIX}model.layers.1.self_attn.q_proj.lora_B.weight`,
    ]);
    // A [r, d_in], B [d_out, r]: down_proj maps intermediate 40 → hidden 32.
    assert.deepEqual(tensors[`${PEFT_PREFIX}model.layers.0.mlp.down_proj.lora_A.weight`]!.shape, [2, 40]);
    assert.deepEqual(tensors[`${PEFT_PREFIX}model.layers.0.mlp.down_proj.lora_B.weight`]!.shape, [32, 2]);
    // A hub id is no directory here: the base is given explicitly, and the result matches.
    assert.throws(
      () => loadModel(dir),
      /base_model_name_or_path\): "my-org\/tiny-llama" is not a model directory here/,
    );
    const back = loadModel(base, { adapter: dir }) as PretrainedLM;
    const ids = randomIds(new Rng(2), 2, 7, 61);
    assert.ok(maxAbsDiff(logitsOf(back, ids), logitsOf(model, ids)) < 1e-6);
    assert.deepEqual(back.loraConfig?.targetModules, ["q_proj", "down_proj"]);
    back.dispose();
    model.dispose();
  });

  it("GPT-2 adapters (Conv1D) say fan_in_fan_out and c_proj adapts both attention and MLP projections", () => {
    const { model } = adapted("gpt2", ["c_proj"], 2);
    const dir = join(tmp, "gpt2-adapter");
    saveModel(dir, model, { lora: true });
    assert.equal(JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), "utf8")).fan_in_fan_out, true);
    const keys = Object.keys(readSafetensorsFile(join(dir, "adapter_model.safetensors")).tensors);
    assert.ok(keys.includes(`${PEFT_PREFIX}transformer.h.1.attn.c_proj.lora_A.weight`));
    assert.ok(keys.includes(`${PEFT_PREFIX}transformer.h.1.mlp.c_proj.lora_B.weight`));
    assert.equal(keys.length, 2 * 2 * 2);
    model.dispose();
  });

  it("accepts PEFT's in-memory names (lora_A.default.weight) and rejects an unknown target", () => {
    const { base, model } = adapted("qwen3", ["v_proj"], 3);
    const dir = join(tmp, "qwen3-adapter");
    saveModel(dir, model, { lora: true, baseModelPath: base });
    const file = join(dir, "adapter_model.safetensors");
    const { tensors } = readSafetensorsFile(file);
    const renamed: Record<string, SafeTensor> = {};
    for (const [k, t] of Object.entries(tensors)) renamed[k.replace(".weight", ".default.weight")] = t;
    writeSafetensorsFile(file, renamed);
    const back = loadModel(dir) as PretrainedLM;
    const ids = randomIds(new Rng(4), 1, 5, 47);
    assert.ok(maxAbsDiff(logitsOf(back, ids), logitsOf(model, ids)) < 1e-6);
    back.dispose();
    const cfgFile = join(dir, ADAPTER_CONFIG_FILE);
    const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, target_modules: ["c_attn"] }));
    assert.throws(
      () => loadModel(dir),
      /adapter_config\.json \(field target_modules\): LoRA config: target module "c_attn" matches no projection of Qwen3ForCausalLM/,
    );
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, use_dora: true }));
    assert.throws(() => loadModel(dir), /adapter_config\.json \(field use_dora\): DoRA is not supported/);
    model.dispose();
  });

  it("merge writes full weights in the base's layout and dtype that reproduce the adapted model", () => {
    for (const [name, targets, tol] of [
      ["llama", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], 1e-4],
      ["qwen2", ["q_proj", "up_proj"], 0.05], // BF16: the merged weights are rounded to 8 bits of mantissa
    ] as const) {
      const { base, model } = adapted(name, [...targets], 4);
      writeFileSync(join(base, "tokenizer_config.json"), "{}");
      const adapter = join(tmp, `${name}-merge-adapter`);
      saveModel(adapter, model, { lora: true, baseModelPath: base });
      const out = join(tmp, `${name}-merged`);
      mergeAdapter(base, adapter, out);
      assert.ok(existsSync(join(out, "tokenizer_config.json")), "tokenizer files travel with the weights");
      const merged = loadModel(out) as PretrainedLM;
      assert.equal(merged.loraConfig, null);
      const baseTensors = readSafetensorsFile(join(base, "model.safetensors")).tensors;
      const mergedTensors = readSafetensorsFile(join(out, "model.safetensors")).tensors;
      for (const [k, t] of Object.entries(mergedTensors)) assert.equal(t.dtype, baseTensors[k]!.dtype, k);
      const ids = randomIds(new Rng(5), 2, 8, merged.vocabSize);
      const d = maxAbsDiff(logitsOf(merged, ids), logitsOf(model, ids));
      assert.ok(d < tol, `${name}: max |Δlogit| merged vs adapted = ${d}`);
      // The adapter changed the model: merging is not a no-op.
      const plain = loadModel(base) as PretrainedLM;
      assert.ok(maxAbsDiff(logitsOf(plain, ids), logitsOf(model, ids)) > 10 * tol);
      plain.dispose();
      merged.dispose();
      model.dispose();
    }
  });
});
