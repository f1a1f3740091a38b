import { buildMask } from "../core/loss.ts";
import type { CompletionTokens } from "../core/metrics.ts";
import type { GrpoBatch, Rollout } from "./types.ts";

export interface MaskOptions {
  eosId: number;
  /** drop completions cut by the length limit from the loss (their reward says little). */
  maskTruncatedCompletions: boolean;
}

/**
 * Completion mask × tool mask × truncation mask for one rollout (core's buildMask): tokens up to
 * and including the first eos count, anything a sampler emitted after it does not.
 */
export function rolloutMask(r: Rollout, opts: MaskOptions): number[] {
  if (r.toolMask && r.toolMask.length !== r.tokens.length) {
    throw new Error(`rollout mask: toolMask has ${r.toolMask.length} entries for ${r.tokens.length} tokens`);
  }
  const eos = r.tokens.indexOf(opts.eosId);
  const completion = r.tokens.map((_, t) => (eos < 0 || t <= eos ? 1 : 0));
  const tool = r.toolMask?.map((v) => (v ? 1 : 0));
  const truncation = opts.maskTruncatedCompletions ? [r.finished ? 1 : 0] : undefined;
  return buildMask([completion], tool && [tool], truncation)[0]!;
}

/**
 * Lays out ids, masks and advantages for the update. Rows are right-padded; prompts may differ
 * in length: the batch's promptLength is the shortest, and the positions of a row that still
 * lie inside its own (longer) prompt get mask 0. The model is causal with positions counted
 * from 0, so padding on the right changes nothing a trained position sees.
 */
export function buildBatch(
  rollouts: Rollout[],
  advantages: number[],
  opts: MaskOptions & { padId: number },
): GrpoBatch {
  if (rollouts.length === 0) throw new Error("buildBatch: no rollouts");
  if (advantages.length !== rollouts.length) {
    throw new Error(`buildBatch: ${advantages.length} advantages for ${rollouts.length} rollouts`);
  }
  const P = Math.min(...rollouts.map((r) => r.prompt.length));
  if (P < 1) throw new Error("buildBatch: a rollout has an empty prompt");
  const T = Math.max(P + 1, ...rollouts.map((r) => r.prompt.length + r.tokens.length));
  const ids: number[][] = [];
  const mask: number[][] = [];
  for (const r of rollouts) {
    const row = [...r.prompt, ...r.tokens];
    while (row.length < T) row.push(opts.padId);
    ids.push(row);
    const m = [...new Array<number>(r.prompt.length - P).fill(0), ...rolloutMask(r, opts)];
    while (m.length < T - P) m.push(0);
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
    /** tokens of the whole batch that carry loss, replayed rows included. */
    trainableTokens: trained,
    meanLength: lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length),
    clippedRatio: rollouts.filter((r) => !r.finished).length / Math.max(1, rollouts.length),
    trainableTokensRatio: totalSlots > 0 ? trained / totalSlots : 0,
  };
}

/**
 * What the completion metrics count of one rollout (core/metrics.ts completionMetrics): its tokens
 * after the prompt, those the loss mask trains, and whether a length limit cut it.
 */
export function rolloutTokens(r: Rollout, opts: MaskOptions): CompletionTokens {
  return {
    tokens: r.tokens.length,
    trainable: rolloutMask(r, opts).reduce((a, b) => a + b, 0),
    truncated: !r.finished,
  };
}
