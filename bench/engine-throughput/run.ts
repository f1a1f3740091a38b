/**
 * Policy-engine throughput: Adam train-step time, training tokens/s, KV-cache sampling tokens/s
 * and peak RSS for a reference (4 layers, d=128, 4 heads) and a tiny transformer, per backend.
 * Each (backend, model) pair runs in its own child process so peak RSS is its own.
 *
 *   npx tsx bench/engine-throughput/run.ts [--backends wasm,cpu] [--steps 5] [--cpu-steps 2] [--profile]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { type BackendName, initBackend } from "../../src/model/backend.ts";
import { GPT, type GPTConfig } from "../../src/model/gpt.ts";
import { sample } from "../../src/model/sampler.ts";

const MODELS: Record<string, { config: GPTConfig; batch: number; seq: number }> = {
  reference: {
    config: { vocabSize: 96, contextLength: 128, dModel: 128, nLayers: 4, nHeads: 4 },
    batch: 32,
    seq: 64,
  },
  tiny: {
    config: { vocabSize: 32, contextLength: 64, dModel: 32, nLayers: 2, nHeads: 2 },
    batch: 32,
    seq: 64,
  },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Result {
  backend: string;
  model: string;
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

async function child(
  backend: BackendName,
  modelName: string,
  steps: number,
  profile: boolean,
): Promise<Result> {
  const got = await initBackend(backend);
  if (got !== backend) throw new Error(`backend ${backend} unavailable`);
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
  const newTokens = 63;
  sample(model, prompts.slice(0, 2), { maxNewTokens: 4, rng });
  const t0 = performance.now();
  sample(model, prompts, { maxNewTokens: newTokens, rng });
  const sampleS = (performance.now() - t0) / 1000;
  return {
    backend,
    model: modelName,
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
  if (process.env.ENGINE_BENCH_CHILD) {
    const [backend, modelName, steps, profile] = process.env.ENGINE_BENCH_CHILD.split(":");
    const r = await child(backend as BackendName, modelName!, Number(steps), profile === "1");
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    return;
  }
  const backends = arg("backends", "wasm,cpu").split(",") as BackendName[];
  const steps = Number(arg("steps", "5"));
  const cpuSteps = Number(arg("cpu-steps", "2"));
  const profile = process.argv.includes("--profile");
  const self = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  for (const backend of backends) {
    for (const modelName of Object.keys(MODELS)) {
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
        `${r.backend.padEnd(5)} ${r.model.padEnd(10)} step ${r.stepMs.toFixed(0).padStart(6)} ms  ` +
          `train ${r.trainTokPerS.toFixed(0).padStart(7)} tok/s  sample ${r.sampleTokPerS.toFixed(0).padStart(6)} tok/s  ` +
          `peak RSS ${r.peakRssMb.toFixed(0)} MB  (best of ${n} steps)\n`,
      );
      if (r.profile) process.stdout.write(`      profile: ${r.profile}\n`);
    }
  }
  const python = torchPython();
  if (!python) {
    process.stdout.write("pytorch: skipped (no python3 here can import torch)\n");
    return;
  }
  const py = spawnSync(python, [fileURLToPath(new URL("torch_step.py", import.meta.url)), String(steps)], {
    encoding: "utf8",
  });
  const m = /step_ms=([\d.]+)/.exec(py.stdout);
  if (!m) {
    process.stdout.write(`pytorch: failed\n${py.stderr}\n`);
    return;
  }
  const torchMs = Number(m[1]);
  const ref =
    results.find((r) => r.model === "reference" && r.backend === "wasm") ??
    results.find((r) => r.model === "reference");
  process.stdout.write(`pytorch reference step ${torchMs.toFixed(0)} ms`);
  if (ref) process.stdout.write(`; ${ref.backend} / pytorch = ${(ref.stepMs / torchMs).toFixed(1)}×`);
  process.stdout.write("\n");
}

await main();
