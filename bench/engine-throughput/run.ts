/**
 * Policy-engine throughput: Adam train-step time, training tokens/s, KV-cache sampling tokens/s,
 * peak RSS and the speed of one projection-sized matMul, for the reference model and the
 * recipes' model sizes, per backend — and the same step and sampling loop in PyTorch when
 * python3 can import torch. Each (backend, model) pair runs in its own child process so peak
 * RSS is its own. Backends: `wasm` (with the BLAS kernels when the native addon is built),
 * `wasm-plain` (tfjs's own wasm kernels, GRPO_BLAS=0) and `cpu`.
 *
 * A Hugging Face-shaped model with SmolLM2-135M's shape (LlamaForCausalLM: 30 layers, d 576,
 * 9 heads, 3 KV heads, MLP 1536, vocabulary 49 152, tied head; random weights) runs a LoRA
 * (r 16, all seven projections) Adam step on 8 × 256 tokens and KV-cache sampling of 8 × 128 new
 * tokens after 16-token prompts, beside the same model, adapter and loop in PyTorch
 * (torch_hf_step.py).
 *
 *   node --import tsx bench/engine-throughput/run.ts [--backends wasm,wasm-plain] [--models reference,...]
 *        [--hf-models smollm2-135m|none] [--steps 5] [--hf-steps 2] [--cpu-steps 2] [--profile]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { type BackendName, initBackend } from "../../src/model/backend.ts";
import { blasStatus } from "../../src/model/blas.ts";
import { GPT, type GPTConfig } from "../../src/model/gpt.ts";
import { parseArchConfig } from "../../src/model/hf/config.ts";
import { HF_LORA_TARGETS, PretrainedLM, randomWeights } from "../../src/model/hf/model.ts";
import { sample } from "../../src/model/sampler.ts";

const MODELS: Record<string, { config: GPTConfig; batch: number; seq: number }> = {
  reference: {
    config: { vocabSize: 96, contextLength: 128, dModel: 128, nLayers: 4, nHeads: 4 },
    batch: 32,
    seq: 64,
  },
  // The theory recipe's sizes (its vocabulary has 20 tokens, its context 26).
  "theory-tiny": {
    config: { vocabSize: 20, contextLength: 64, dModel: 32, nLayers: 2, nHeads: 2 },
    batch: 32,
    seq: 64,
  },
  "theory-small": {
    config: { vocabSize: 20, contextLength: 64, dModel: 64, nLayers: 4, nHeads: 4 },
    batch: 32,
    seq: 64,
  },
  // Long episodes (8 × 512 tokens) on a small model: the shape of the email recipe when it was character-level.
  email: {
    config: { vocabSize: 102, contextLength: 1024, dModel: 64, nLayers: 2, nHeads: 4 },
    batch: 8,
    seq: 512,
  },
};

interface HfBench {
  /** config.json of the model (random weights). */
  config: Record<string, unknown>;
  batch: number;
  seq: number;
  rank: number;
  alpha: number;
  sampleBatch: number;
  prompt: number;
  newTokens: number;
}

const HF_MODELS: Record<string, HfBench> = {
  "smollm2-135m": {
    config: {
      architectures: ["LlamaForCausalLM"],
      vocab_size: 49152,
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      max_position_embeddings: 8192,
      rope_theta: 100000,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: true,
    },
    batch: 8,
    seq: 256,
    rank: 16,
    alpha: 32,
    sampleBatch: 8,
    prompt: 16,
    newTokens: 128,
  },
};

interface HfResult {
  model: string;
  kernels: string;
  stepMs: number;
  sampleTokPerS: number;
  peakRssMb: number;
  /** the wasm heap at its largest (it never shrinks): what the 4 GB limit applies to. */
  heapMb: number;
}

/** wasm heap size in MB, or 0 on another backend. */
function wasmHeapMb(): number {
  const be = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return be.wasm ? be.wasm.HEAPU8.length / 1e6 : 0;
}

async function hfChild(modelName: string, steps: number): Promise<HfResult> {
  const got = await initBackend("wasm");
  if (got !== "wasm") throw new Error("wasm backend unavailable");
  const blas = blasStatus();
  const b = HF_MODELS[modelName]!;
  const rng = new Rng(1);
  const spec = parseArchConfig(modelName, b.config);
  const model = new PretrainedLM(spec, randomWeights(rng, 0.02));
  model.enableLoRA({ r: b.rank, alpha: b.alpha, targetModules: [...HF_LORA_TARGETS.llama] }, rng);
  const V = spec.vocabSize;
  const ids = tf.tensor2d(
    Array.from({ length: b.batch }, () => Array.from({ length: b.seq }, () => rng.int(V))),
    undefined,
    "int32",
  );
  const opt = tf.train.adam(1e-4);
  const vars = model.trainableVariables();
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.neg(tf.mean(model.tokenLogprobs(ids).logprobs)) as tf.Scalar,
        vars,
      );
      opt.applyGradients(grads as Record<string, tf.Variable>);
      return value.dataSync()[0]!;
    });
  step();
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const prompts = Array.from({ length: b.sampleBatch }, () =>
    Array.from({ length: b.prompt }, () => rng.int(V)),
  );
  sample(model, prompts, { maxNewTokens: 8, rng });
  let sampleS = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    sample(model, prompts, { maxNewTokens: b.newTokens, rng });
    sampleS = Math.min(sampleS, (performance.now() - t0) / 1000);
  }
  return {
    model: modelName,
    kernels: blas.active ? `BLAS ${blas.library}, ${blas.threads} threads` : "tfjs kernels",
    stepMs: best(times),
    sampleTokPerS: (b.sampleBatch * b.newTokens) / sampleS,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    heapMb: wasmHeapMb(),
  };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Result {
  backend: string;
  model: string;
  /** e.g. "BLAS libopenblas.so.0, 2 threads" or "tfjs kernels". */
  kernels: string;
  matmulGflops: number;
  stepMs: number;
  trainTokPerS: number;
  sampleTokPerS: number;
  peakRssMb: number;
  profile?: string;
}

/** Best of N: on a shared machine the fastest step is the least disturbed one. */
function best(xs: number[]): number {
  return Math.min(...xs);
}

/** GFLOP/s of the reference projection product [2048, 128]·[128, 512], best of 10. */
function matmulGflops(): number {
  const x = tf.randomNormal([2048, 128], 0, 1, "float32", 1);
  const w = tf.randomNormal([128, 512], 0, 1, "float32", 2);
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 11; r++) {
    const t0 = performance.now();
    const y = tf.matMul(x, w);
    y.dataSync();
    if (r > 0) min = Math.min(min, performance.now() - t0);
    y.dispose();
  }
  tf.dispose([x, w]);
  return (2 * 2048 * 128 * 512) / min / 1e6;
}

async function child(
  backendArg: string,
  modelName: string,
  steps: number,
  profile: boolean,
): Promise<Result> {
  const backend = (backendArg === "wasm-plain" ? "wasm" : backendArg) as BackendName;
  if (backendArg === "wasm-plain") process.env.GRPO_BLAS = "0";
  const got = await initBackend(backend);
  if (got !== backend) throw new Error(`backend ${backend} unavailable`);
  const blas = blasStatus();
  const kernels = blas.active ? `BLAS ${blas.library}, ${blas.threads} threads` : "tfjs kernels";
  const { config, batch, seq } = MODELS[modelName]!;
  const rng = new Rng(1);
  const model = new GPT(config, rng);
  const ids = tf.tensor2d(
    Array.from({ length: batch }, () => Array.from({ length: seq }, () => rng.int(config.vocabSize))),
    undefined,
    "int32",
  );
  const opt = tf.train.adam(1e-3);
  const vars = model.trainableVariables();
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.neg(tf.mean(model.tokenLogprobs(ids).logprobs)) as tf.Scalar,
        vars,
      );
      opt.applyGradients(grads as Record<string, tf.Variable>);
      return value.dataSync()[0]!;
    });
  step(); // warm-up: kernel setup, optimizer slots, causal mask
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  let profileText: string | undefined;
  if (profile) {
    const info = await tf.profile(() => {
      step();
    });
    const byKernel = new Map<string, { n: number; ms: number }>();
    for (const k of info.kernels) {
      // Batched (attention) products take a slow path on wasm; list them apart from 2-D ones.
      const name = k.name === "BatchMatMul" && k.inputShapes[0]!.length > 2 ? "BatchMatMul(batched)" : k.name;
      const e = byKernel.get(name) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
      byKernel.set(name, e);
    }
    const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
    profileText = `${info.kernels.length} kernels/step; top: ${top.map(([n, e]) => `${n}×${e.n} ${e.ms.toFixed(0)}ms`).join(", ")}`;
  }
  const stepMs = best(times);
  const prompts = Array.from({ length: 32 }, () => [rng.int(config.vocabSize)]);
  const newTokens = Math.min(63, config.contextLength - 1);
  sample(model, prompts, { maxNewTokens: newTokens, rng }); // warm-up at the timed shapes
  let sampleS = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    sample(model, prompts, { maxNewTokens: newTokens, rng });
    sampleS = Math.min(sampleS, (performance.now() - t0) / 1000);
  }
  return {
    backend: backendArg,
    model: modelName,
    kernels,
    matmulGflops: matmulGflops(),
    stepMs,
    trainTokPerS: (batch * seq) / (stepMs / 1000),
    sampleTokPerS: (32 * newTokens) / sampleS,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    profile: profileText,
  };
}

/**
 * The first interpreter that can import torch: $PYTHON, then python3 on PATH, then Debian's own
 * (python3-torch installs for /usr/bin/python3, which a version manager on PATH can shadow).
 */
function torchPython(): string | undefined {
  const candidates = [process.env.PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string =>
    Boolean(c),
  );
  for (const py of candidates) {
    try {
      execFileSync(py, ["-c", "import torch"], { stdio: "ignore" });
      return py;
    } catch {
      // not this one
    }
  }
  return undefined;
}

async function main(): Promise<void> {
  if (process.env.ENGINE_BENCH_HF_CHILD) {
    const [modelName, steps] = process.env.ENGINE_BENCH_HF_CHILD.split(":");
    const r = await hfChild(modelName!, Number(steps));
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    return;
  }
  if (process.env.ENGINE_BENCH_CHILD) {
    const [backend, modelName, steps, profile] = process.env.ENGINE_BENCH_CHILD.split(":");
    const r = await child(backend!, modelName!, Number(steps), profile === "1");
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    return;
  }
  const backends = arg("backends", "wasm,wasm-plain").split(",");
  const models = arg("models", Object.keys(MODELS).join(",")).split(",");
  for (const m of models)
    if (!MODELS[m])
      throw new Error(`--models: unknown model "${m}" (known: ${Object.keys(MODELS).join(", ")})`);
  const steps = Number(arg("steps", "5"));
  const cpuSteps = Number(arg("cpu-steps", "2"));
  const profile = process.argv.includes("--profile");
  const self = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  for (const modelName of models) {
    for (const backend of backends) {
      const n = backend === "cpu" ? cpuSteps : steps;
      const out = spawnSync(process.execPath, ["--import", "tsx", self], {
        env: { ...process.env, ENGINE_BENCH_CHILD: `${backend}:${modelName}:${n}:${profile ? 1 : 0}` },
        encoding: "utf8",
      });
      const line = out.stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (!line) {
        process.stdout.write(`${backend}/${modelName}: failed\n${out.stderr.slice(-2000)}\n`);
        continue;
      }
      const r = JSON.parse(line.slice(7)) as Result;
      results.push(r);
      process.stdout.write(
        `${r.backend.padEnd(10)} ${r.model.padEnd(12)} step ${r.stepMs.toFixed(0).padStart(6)} ms  ` +
          `train ${r.trainTokPerS.toFixed(0).padStart(7)} tok/s  sample ${r.sampleTokPerS.toFixed(0).padStart(6)} tok/s  ` +
          `peak RSS ${r.peakRssMb.toFixed(0)} MB  matMul ${r.matmulGflops.toFixed(1)} GFLOP/s  (${r.kernels}; best of ${n} steps)\n`,
      );
      if (r.profile) process.stdout.write(`      profile: ${r.profile}\n`);
    }
  }
  const torch = new Map<string, { stepMs: number; sampleTokPerS: number }>();
  const python = torchPython();
  if (!python) process.stdout.write("pytorch: skipped (no python3 here can import torch)\n");
  for (const modelName of python ? models : []) {
    const { config: c, batch, seq } = MODELS[modelName]!;
    const cfg = {
      vocab: c.vocabSize,
      context: c.contextLength,
      d: c.dModel,
      layers: c.nLayers,
      heads: c.nHeads,
      ff: c.dFF ?? 4 * c.dModel,
      batch,
      seq,
    };
    const py = spawnSync(
      python!,
      [fileURLToPath(new URL("torch_step.py", import.meta.url)), String(steps), JSON.stringify(cfg)],
      { encoding: "utf8" },
    );
    const step = /step_ms=([\d.]+)/.exec(py.stdout);
    const samp = /sample_tok_s=([\d.]+)/.exec(py.stdout);
    if (!step || !samp) {
      process.stdout.write(`pytorch/${modelName}: failed\n${py.stderr.slice(-2000)}\n`);
      continue;
    }
    const t = { stepMs: Number(step[1]), sampleTokPerS: Number(samp[1]) };
    torch.set(modelName, t);
    process.stdout.write(
      `${"pytorch".padEnd(10)} ${modelName.padEnd(12)} step ${t.stepMs.toFixed(0).padStart(6)} ms  ` +
        `train ${((batch * seq) / (t.stepMs / 1000)).toFixed(0).padStart(7)} tok/s  sample ${t.sampleTokPerS.toFixed(0).padStart(6)} tok/s\n`,
    );
  }
  // Markdown summary: ratios > 1 mean the engine is slower than PyTorch by that factor.
  process.stdout.write(
    "\n| backend | model | train step | train tok/s | sample tok/s | peak RSS | matMul GFLOP/s | step / PyTorch | PyTorch / sample |\n" +
      "|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
  );
  for (const r of results) {
    const t = torch.get(r.model);
    const stepRatio = t ? `${(r.stepMs / t.stepMs).toFixed(2)}×` : "";
    const sampleRatio = t ? `${(t.sampleTokPerS / r.sampleTokPerS).toFixed(2)}×` : "";
    process.stdout.write(
      `| ${r.backend} | ${r.model} | ${r.stepMs.toFixed(0)} ms | ${r.trainTokPerS.toFixed(0)} | ${r.sampleTokPerS.toFixed(0)} | ` +
        `${r.peakRssMb.toFixed(0)} MB | ${r.matmulGflops.toFixed(1)} | ${stepRatio} | ${sampleRatio} |\n`,
    );
  }
  for (const [m, t] of torch) {
    const { batch, seq } = MODELS[m]!;
    process.stdout.write(
      `| pytorch | ${m} | ${t.stepMs.toFixed(0)} ms | ${((batch * seq) / (t.stepMs / 1000)).toFixed(0)} | ${t.sampleTokPerS.toFixed(0)} | | | | |\n`,
    );
  }
  const hfModels = arg("hf-models", Object.keys(HF_MODELS).join(","))
    .split(",")
    .filter((m) => m !== "none" && m !== "");
  for (const m of hfModels)
    if (!HF_MODELS[m])
      throw new Error(`--hf-models: unknown model "${m}" (known: ${Object.keys(HF_MODELS).join(", ")})`);
  const hfSteps = Number(arg("hf-steps", "2"));
  for (const m of hfModels) await runHf(m, hfSteps, self, python);
}

/** The Hugging Face-shaped model in the engine (own process) and in PyTorch, with the ratios. */
async function runHf(
  modelName: string,
  steps: number,
  self: string,
  python: string | undefined,
): Promise<void> {
  const b = HF_MODELS[modelName]!;
  const load = () => (process.platform === "linux" ? readLoad() : "");
  const loadBefore = load();
  const out = spawnSync(process.execPath, ["--import", "tsx", self], {
    env: { ...process.env, ENGINE_BENCH_HF_CHILD: `${modelName}:${steps}` },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = out.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) {
    process.stdout.write(`hf/${modelName}: failed\n${out.stderr.slice(-2000)}\n`);
    return;
  }
  const r = JSON.parse(line.slice(7)) as HfResult;
  let t: { stepMs: number; sampleTokPerS: number; peakRssMb: number } | undefined;
  if (python) {
    const c = b.config as Record<string, number>;
    const cfg = {
      vocab: c.vocab_size,
      d: c.hidden_size,
      layers: c.num_hidden_layers,
      heads: c.num_attention_heads,
      kv_heads: c.num_key_value_heads,
      ff: c.intermediate_size,
      batch: b.batch,
      seq: b.seq,
      rank: b.rank,
      alpha: b.alpha,
      sample_batch: b.sampleBatch,
      prompt: b.prompt,
      new_tokens: b.newTokens,
    };
    const py = spawnSync(
      python,
      [fileURLToPath(new URL("torch_hf_step.py", import.meta.url)), String(steps), JSON.stringify(cfg)],
      { encoding: "utf8" },
    );
    const num = (k: string) => Number(new RegExp(`${k}=([\\d.]+)`).exec(py.stdout)?.[1] ?? Number.NaN);
    t = { stepMs: num("step_ms"), sampleTokPerS: num("sample_tok_s"), peakRssMb: num("peak_rss_mb") };
    if (!Number.isFinite(t.stepMs)) {
      process.stdout.write(`pytorch/${modelName}: failed\n${py.stderr.slice(-2000)}\n`);
      t = undefined;
    }
  }
  const tokens = b.batch * b.seq;
  process.stdout.write(
    `\n${modelName}: LoRA r ${b.rank} on all seven projections, Adam step on ${b.batch} × ${b.seq} tokens; sampling ${b.sampleBatch} × ${b.newTokens} new tokens (KV cache, ${b.prompt}-token prompts); load average ${loadBefore} → ${load()}\n` +
      "| engine | LoRA step | train tok/s | sample tok/s | peak RSS | wasm heap | step / PyTorch | PyTorch / sample |\n" +
      "|---|---:|---:|---:|---:|---:|---:|---:|\n" +
      `| wasm (${r.kernels}) | ${(r.stepMs / 1000).toFixed(1)} s | ${(tokens / (r.stepMs / 1000)).toFixed(0)} | ${r.sampleTokPerS.toFixed(1)} | ${r.peakRssMb.toFixed(0)} MB | ${r.heapMb.toFixed(0)} MB | ${t ? `${(r.stepMs / t.stepMs).toFixed(2)}×` : ""} | ${t ? `${(t.sampleTokPerS / r.sampleTokPerS).toFixed(2)}×` : ""} |\n` +
      (t
        ? `| pytorch | ${(t.stepMs / 1000).toFixed(1)} s | ${(tokens / (t.stepMs / 1000)).toFixed(0)} | ${t.sampleTokPerS.toFixed(1)} | ${t.peakRssMb.toFixed(0)} MB | | | |\n`
        : "pytorch: skipped (no python3 here can import torch)\n"),
  );
}

function readLoad(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

await main();
