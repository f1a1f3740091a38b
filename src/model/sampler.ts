/**
 * Batched autoregressive sampling with a per-layer KV cache.
 *
 * Prompts of different lengths are left-padded; pad keys are masked out and positions count
 * from each row's first real token, so a row's result does not depend on its batch-mates.
 * Token choice happens on the CPU from the downloaded logits with uniforms drawn from the
 * caller's Rng, so a seed reproduces the samples exactly.
 *
 * Reported logprobs: log π(token) under the distribution after the constraint mask and the
 * temperature, but before top-k/top-p truncation, i.e. log softmax(mask(logits) / T). With
 * temperature 1 and no constraint this equals GPT.tokenLogprobs on the same sequence. With
 * temperature 0 (greedy), logprobs are those of the masked distribution at temperature 1.
 *
 * Any DecoderModel samples through here: the project's GPT and the Hugging Face architectures.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { DecoderModel, KVCache } from "./causal-lm.ts";

export interface TokenConstraint<S = unknown> {
  initial(): S;
  /** Length vocabSize, 1 = allowed. */
  allowed(state: S): Uint8Array;
  advance(state: S, token: number): S;
  isDone(state: S): boolean;
}

export interface SampleOptions {
  maxNewTokens: number;
  /** Default 1; 0 selects the most likely allowed token. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** End-of-sequence token(s): one id or several (instruct models often have two). */
  eosId?: number | readonly number[];
  // biome-ignore lint/suspicious/noExplicitAny: constraints of any state type are accepted
  constraint?: TokenConstraint<any>;
  rng: Rng;
  /**
   * One stream per row, in place of `rng`: a row then samples the same whatever shares its
   * batch (rows may share a stream; their draws keep row order).
   */
  rowRngs?: readonly Rng[];
  /**
   * Called after each token a row takes, with everything the row generated so far; true ends
   * that row (finished). For per-row limits and stop strings of rows that share a batch.
   */
  rowDone?: (row: number, tokens: readonly number[]) => boolean;
}

export interface SampleResult {
  /** Generated ids per row, without the prompt; includes the eos token when one was sampled. */
  tokens: number[][];
  /** log π of each sampled token, see the module comment for which distribution. */
  logprobs: number[][];
  /** True when the row emitted eosId, its constraint reached a done state, or rowDone said so. */
  finished: boolean[];
}

const MASK_NEG = -1e9;

/**
 * Picks one token from a row of logits. Returns the token and its logprob under the masked,
 * temperature-scaled (untruncated) distribution.
 */
export function chooseToken(
  logits: Float32Array,
  allowed: Uint8Array | null,
  temperature: number,
  topK: number | undefined,
  topP: number | undefined,
  u: number,
): { token: number; logprob: number } {
  const V = logits.length;
  const t = temperature > 0 ? temperature : 1;
  const z = scratch(V);
  let max = Number.NEGATIVE_INFINITY;
  let best = -1;
  let count = 0;
  for (let i = 0; i < V; i++) {
    if (allowed && allowed[i] === 0) {
      z[i] = Number.NEGATIVE_INFINITY;
      continue;
    }
    count++;
    const zi = logits[i]! / t;
    z[i] = zi;
    if (zi > max) {
      max = zi;
      best = i;
    }
  }
  if (max === Number.NEGATIVE_INFINITY)
    throw new Error("sample: the constraint allows no token in this state");
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(z[i]! - max);
  const logZ = max + Math.log(sum);
  const logp = (i: number) => z[i]! - logZ;

  // The first index of the largest logit, as a scan keeping the earliest maximum finds it.
  if (temperature === 0) return { token: best, logprob: logp(best) };

  const truncating = (topK !== undefined && topK > 0 && topK < count) || (topP !== undefined && topP < 1);
  if (!truncating) {
    // Untruncated: walk the allowed tokens in index order (no candidate list for a 50k vocabulary).
    let mass = 0;
    let last = -1;
    for (let i = 0; i < V; i++) {
      if (z[i] === Number.NEGATIVE_INFINITY) continue;
      mass += Math.exp(z[i]! - logZ);
      last = i;
    }
    let target = u * mass;
    for (let i = 0; i < V; i++) {
      if (z[i] === Number.NEGATIVE_INFINITY) continue;
      target -= Math.exp(z[i]! - logZ);
      if (target < 0) return { token: i, logprob: logp(i) };
    }
    // Rounding left a sliver of mass unassigned: take the last candidate.
    return { token: last, logprob: logp(last) };
  }

  // Candidates in descending probability; truncation keeps a prefix of this order.
  let cand: number[] = [];
  for (let i = 0; i < V; i++) if (z[i]! > Number.NEGATIVE_INFINITY) cand.push(i);
  cand.sort((a, b) => z[b]! - z[a]! || a - b);
  if (topK !== undefined && topK > 0) cand = cand.slice(0, topK);
  if (topP !== undefined && topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < cand.length) {
      cum += Math.exp(logp(cand[keep]!));
      keep++;
      if (cum >= topP) break;
    }
    cand = cand.slice(0, Math.max(1, keep));
  }
  let mass = 0;
  for (const i of cand) mass += Math.exp(logp(i));
  let target = u * mass;
  for (const i of cand) {
    target -= Math.exp(logp(i));
    if (target < 0) return { token: i, logprob: logp(i) };
  }
  // Rounding left a sliver of mass unassigned: take the last candidate.
  const last = cand[cand.length - 1]!;
  return { token: last, logprob: logp(last) };
}

let scratchBuf = new Float64Array(0);
/** One reusable buffer for the scaled logits (sampling allocates nothing per token). */
function scratch(n: number): Float64Array {
  if (scratchBuf.length < n) scratchBuf = new Float64Array(n);
  return scratchBuf.subarray(0, n);
}

function validate(model: DecoderModel, prompts: number[][], opts: SampleOptions): void {
  const V = model.vocabSize;
  if (prompts.length === 0) throw new Error("sample: prompts is empty");
  prompts.forEach((p, r) => {
    if (p.length === 0) throw new Error(`sample: prompt ${r} is empty (at least one token is needed)`);
    p.forEach((id, j) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(`sample: prompt ${r} token ${j} = ${id} is outside the vocabulary [0, ${V})`);
      }
    });
  });
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
    throw new Error(`sample: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  }
  const temp = opts.temperature ?? 1;
  if (!(temp >= 0) || !Number.isFinite(temp)) throw new Error(`sample: temperature must be ≥ 0, got ${temp}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) {
    throw new Error(`sample: topP must be in (0, 1], got ${opts.topP}`);
  }
  if (opts.rowRngs && opts.rowRngs.length !== prompts.length)
    throw new Error(`sample: ${opts.rowRngs.length} row streams for ${prompts.length} prompts`);
  if (opts.topK !== undefined && (!Number.isInteger(opts.topK) || opts.topK < 0)) {
    throw new Error(`sample: topK must be a non-negative integer, got ${opts.topK}`);
  }
}

/**
 * Samples up to maxNewTokens per prompt (fewer if the context would overflow; such rows end
 * unfinished). Rows stop at eosId or when the constraint reports done.
 */
export function sample(model: DecoderModel, prompts: number[][], opts: SampleOptions): SampleResult {
  validate(model, prompts, opts);
  const V = model.vocabSize;
  const C = model.contextLength;
  const eos = new Set(
    opts.eosId === undefined ? [] : typeof opts.eosId === "number" ? [opts.eosId] : opts.eosId,
  );
  const B = prompts.length;
  const Lp = Math.max(...prompts.map((p) => p.length));
  if (Lp > C) throw new Error(`sample: prompt length ${Lp} exceeds contextLength ${C}`);
  const maxNew = Math.min(opts.maxNewTokens, C - Lp);
  const temperature = opts.temperature ?? 1;
  const pad = prompts.map((p) => Lp - p.length);
  const constraint = opts.constraint;

  const tokens: number[][] = prompts.map(() => []);
  const logprobs: number[][] = prompts.map(() => []);
  const finished: boolean[] = prompts.map(() => false);
  const states: unknown[] = prompts.map(() => constraint?.initial());
  if (constraint) for (let r = 0; r < B; r++) if (constraint.isDone(states[r])) finished[r] = true;
  if (maxNew === 0 || finished.every(Boolean)) return { tokens, logprobs, finished };

  // Prefill: [B, Lp] ids, per-row positions, causal + left-pad mask [B, 1, Lp, Lp].
  const ids0 = new Int32Array(B * Lp);
  const pos0 = new Int32Array(B * Lp);
  const mask0 = new Float32Array(B * Lp * Lp);
  for (let r = 0; r < B; r++) {
    for (let j = 0; j < Lp; j++) {
      ids0[r * Lp + j] = j < pad[r]! ? 0 : prompts[r]![j - pad[r]!]!;
      pos0[r * Lp + j] = Math.max(0, j - pad[r]!);
      for (let k = 0; k < Lp; k++) {
        if (k > j || k < pad[r]!) mask0[(r * Lp + j) * Lp + k] = MASK_NEG;
      }
    }
  }
  const first = tf.tidy(() =>
    model.forwardCached(
      tf.tensor2d(ids0, [B, Lp], "int32"),
      tf.tensor2d(pos0, [B, Lp], "int32"),
      tf.tensor4d(mask0, [B, 1, Lp, Lp]),
      null,
    ),
  );
  let logits: tf.Tensor = first.logits;
  let cache: KVCache = first.cache;
  try {
    const next = new Int32Array(B);
    for (let s = 0; s < maxNew; s++) {
      const all = logits.dataSync() as Float32Array;
      logits.dispose();
      for (let r = 0; r < B; r++) {
        if (finished[r]) {
          next[r] = 0;
          continue;
        }
        const allowed = constraint ? constraint.allowed(states[r]) : null;
        if (allowed && allowed.length !== V) {
          throw new Error(`sample: constraint mask has length ${allowed.length}, expected vocabSize ${V}`);
        }
        const row = all.subarray(r * V, (r + 1) * V);
        const u = (opts.rowRngs?.[r] ?? opts.rng).next();
        let pick: { token: number; logprob: number };
        try {
          pick = chooseToken(row, allowed, temperature, opts.topK, opts.topP, u);
        } catch (err) {
          throw new Error(`${(err as Error).message} (row ${r}, step ${s})`);
        }
        tokens[r]!.push(pick.token);
        logprobs[r]!.push(pick.logprob);
        next[r] = pick.token;
        if (constraint) {
          states[r] = constraint.advance(states[r], pick.token);
          if (constraint.isDone(states[r])) finished[r] = true;
        }
        if (eos.has(pick.token)) finished[r] = true;
        else if (opts.rowDone?.(r, tokens[r]!)) finished[r] = true;
      }
      if (s === maxNew - 1 || finished.every(Boolean)) {
        logits = tf.zeros([0]);
        break;
      }
      const Tk = Lp + s + 1;
      const pos = new Int32Array(B);
      const mask = new Float32Array(B * Tk);
      for (let r = 0; r < B; r++) {
        pos[r] = Lp + s - pad[r]!;
        for (let k = 0; k < pad[r]!; k++) mask[r * Tk + k] = MASK_NEG;
      }
      const old = cache;
      const out = tf.tidy(() =>
        model.forwardCached(
          tf.tensor2d(next, [B, 1], "int32"),
          tf.tensor2d(pos, [B, 1], "int32"),
          tf.tensor4d(mask, [B, 1, 1, Tk]),
          old,
        ),
      );
      for (const t of [...old.k, ...old.v]) t.dispose();
      logits = out.logits;
      cache = out.cache;
    }
  } finally {
    logits.dispose();
    for (const t of [...cache.k, ...cache.v]) t.dispose();
  }
  return { tokens, logprobs, finished };
}
