import type { GrpoBatch } from "./grpo-step.ts";

/** One sampled completion with what the trainer needs to learn from it. */
export interface Rollout {
  /** which prompt group the completion belongs to. */
  group: number;
  prompt: number[];
  /** generated ids, without the prompt. */
  tokens: number[];
  /** false when the completion hit the length limit before eos. */
  finished: boolean;
  /** per generated token, 0 for tokens written by the environment (tool output): context, never trained. */
  toolMask?: number[];
  reward: number;
  success: boolean;
}

export interface MaskOptions {
  eosId: number;
  /** drop completions cut by the length limit from the loss (their reward says little). */
  maskTruncated: boolean;
}

/**
 * Completion mask × tool mask × truncation mask for one rollout: tokens up to and including
 * the first eos count, anything a sampler emitted after it does not.
 */
export function rolloutMask(r: Rollout, opts: MaskOptions): number[] {
  const m = new Array<number>(r.tokens.length).fill(0);
  if (opts.maskTruncated && !r.finished) return m;
  if (r.toolMask && r.toolMask.length !== r.tokens.length) {
    throw new Error(`rollout mask: toolMask has ${r.toolMask.length} entries for ${r.tokens.length} tokens`);
  }
  for (let t = 0; t < r.tokens.length; t++) {
    m[t] = r.toolMask ? (r.toolMask[t] ? 1 : 0) : 1;
    if (r.tokens[t] === opts.eosId) break;
  }
  return m;
}

/** Pads completions to a common length and lays out ids, masks and advantages for the update. */
export function buildBatch(
  rollouts: Rollout[],
  advantages: number[],
  opts: MaskOptions & { padId: number },
): GrpoBatch {
  if (rollouts.length === 0) throw new Error("buildBatch: no rollouts");
  if (advantages.length !== rollouts.length) {
    throw new Error(`buildBatch: ${advantages.length} advantages for ${rollouts.length} rollouts`);
  }
  const P = rollouts[0]!.prompt.length;
  for (const r of rollouts) {
    if (r.prompt.length !== P)
      throw new Error(`buildBatch: prompts of lengths ${P} and ${r.prompt.length} cannot share a batch`);
  }
  const L = Math.max(1, ...rollouts.map((r) => r.tokens.length));
  const ids: number[][] = [];
  const mask: number[][] = [];
  for (const r of rollouts) {
    const row = [...r.prompt, ...r.tokens];
    while (row.length < P + L) row.push(opts.padId);
    ids.push(row);
    const m = rolloutMask(r, opts);
    while (m.length < L) m.push(0);
    mask.push(m);
  }
  return { ids, promptLength: P, mask, advantages: [...advantages] };
}

/** `completions/mean_length`, `completions/clipped_ratio`, `trainable_tokens_ratio`. */
export function completionStats(batch: GrpoBatch, rollouts: Rollout[]) {
  const lengths = rollouts.map((r) => r.tokens.length);
  const totalSlots = batch.mask.length * (batch.mask[0]?.length ?? 0);
  const trained = batch.mask.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  return {
    meanLength: lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length),
    clippedRatio: rollouts.filter((r) => !r.finished).length / Math.max(1, rollouts.length),
    trainableTokensRatio: totalSlots > 0 ? trained / totalSlots : 0,
  };
}
