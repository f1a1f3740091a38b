/**
 * Multi-turn tool-use rollouts over any environment that implements `Episode`: the policy writes
 * a turn (up to its stop token), the episode runs it, the context it answers with is appended as
 * tokens the policy never trained on, and so on until the episode is done or a limit is reached.
 *
 * Each turn re-samples from the whole context, so the sequence a rollout returns is exactly
 * what a full forward pass sees later; the logprobs recorded while sampling are then comparable
 * with the trainer's recomputation (old-policy ratios start at 1).
 *
 * G episodes are advanced together: every turn samples all unfinished episodes in one batched
 * call (the sampler left-pads, and a row's result does not depend on its batch-mates).
 */
import type { Rng } from "../core/rng.ts";
import type { CausalLM, DecoderModel } from "../model/causal-lm.ts";
import { sample } from "../model/sampler.ts";
import type { Rollout } from "./types.ts";

/**
 * A tool-using environment as the rollout sees it: it takes the text of each policy turn and
 * answers with the context that follows it (a tool result, already formatted as the policy is
 * to read it), or ends the episode with a reward. `S` is what the environment reports about a
 * finished episode, handed back in the rollout's stats.
 */
export interface Episode<S = unknown> {
  /** The text before the first policy turn, exactly as it goes into the context. */
  readonly prompt: string;
  /** Policy turns taken so far; a fresh episode has none. */
  readonly turns: number;
  readonly done: boolean;
  /** Whether the environment ended the episode with its task solved. */
  readonly solved: boolean;
  /** Runs one policy turn (its text without the stop token); `tokens` is what the turn cost. */
  step(turn: string, info: { tokens: number }): EpisodeStep;
  /**
   * The reward of an episode the rollout ends before the environment does: the context is full
   * ("context_full"), or the policy wrote eos while the environment still expected a turn ("eos").
   */
  cutShort(reason: CutShort): number;
  stats(): S;
}

export type EpisodeStep = { done: true; reward: number } | { done: false; context: string };
export type CutShort = "context_full" | "eos";

/** The limits a rollout gives each episode it makes, so that the episode can score them. */
export interface EpisodeLimits {
  maxTurns: number;
  maxTokens: number;
}

/** Text to token ids and back; the policy's vocabulary. */
export interface TextCodec {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/** What a turn generator receives: one context per active episode. */
export interface TurnRequest {
  /** Per context, the most tokens it may generate this turn (always ≥ 1). */
  maxNewTokens: number[];
  temperature: number;
  topP?: number;
  topK?: number;
  stopTokenId: number;
  rng: Rng;
}

/** Generated ids per context (the stop token included when produced) and their logprobs. */
export interface TurnResult {
  tokens: number[][];
  logprobs: number[][];
}

/** Anything that writes the next turn: a model through the sampler, or a script in tests. */
export type TurnPolicy = (contexts: number[][], req: TurnRequest) => TurnResult;

export interface MultiTurnOptions {
  /** Policy turns per episode; also handed to the episode so that it scores running out. */
  maxTurns: number;
  /** Policy tokens per episode (tool results do not count); the episode ends past it. */
  maxTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  rng: Rng;
  /** Ends a turn when the policy writes it; a turn cut before it gets one, so the context starts afresh. */
  stopTokenId: number;
  /**
   * Ends the whole rollout when the policy writes it. The trainer's mask stops at the first eos,
   * so nothing may follow one in a rollout.
   */
  eosId: number;
  /** Tokens one turn may use; defaults to the remaining budget. */
  maxTurnTokens?: number;
  /** Longest context a rollout may build; defaults to the model's contextLength, else unlimited. */
  contextLength?: number;
  /** Encodes the prompt and the contexts, decodes the policy's turns. */
  codec: TextCodec;
}

export interface MultiTurnStats<S = unknown> {
  turns: number;
  promptTokens: number;
  policyTokens: number;
  toolTokens: number;
  /** True when the context length cut the episode short; the reward is then out_of_budget's. */
  truncated: boolean;
  /** True when the policy wrote eos before the episode was over; the reward is then out_of_turns'. */
  stoppedByEos: boolean;
  /** What the environment reports about the episode. */
  episode: S;
}

export interface MultiTurnRollout<S = unknown> {
  /** Prompt, then every policy turn and tool result in order. */
  ids: number[];
  /** 1 on tokens the policy generated, 0 on the prompt, tool results and separators. */
  policyMask: number[];
  /** logprobs[i] = log π(ids[i] | ids[<i]) where policyMask[i] = 1, else 0. */
  logprobs: number[];
  promptLength: number;
  reward: number;
  success: boolean;
  stats: MultiTurnStats<S>;
}

/** Makes episode i of a group; the rollout's limits are passed on so the episode scores them. */
export type EpisodeFactory<S = unknown> = (index: number, limits: EpisodeLimits) => Episode<S>;

/** Samples with the KV-cached sampler; contexts of unequal length share one batch. */
export function gptTurnPolicy(model: DecoderModel): TurnPolicy {
  return (contexts, req) => {
    // One call per distinct limit would fragment the batch: sample to the largest and cut.
    const maxNew = Math.max(...req.maxNewTokens);
    const out = sample(model, contexts, {
      maxNewTokens: maxNew,
      temperature: req.temperature,
      topP: req.topP,
      topK: req.topK,
      eosId: req.stopTokenId,
      rng: req.rng,
    });
    return {
      tokens: out.tokens.map((t, i) => t.slice(0, req.maxNewTokens[i])),
      logprobs: out.logprobs.map((l, i) => l.slice(0, req.maxNewTokens[i])),
    };
  };
}

interface Running<S> {
  episode: Episode<S>;
  ids: number[];
  mask: number[];
  logprobs: number[];
  promptLength: number;
  policyTokens: number;
  toolTokens: number;
  truncated: boolean;
  stoppedByEos: boolean;
  reward: number | null;
}

function validateOptions(opts: MultiTurnOptions, contextLength: number): void {
  if (!Number.isInteger(opts.maxTurns) || opts.maxTurns < 1)
    throw new Error(`multi-turn rollout: maxTurns must be a positive integer, got ${opts.maxTurns}`);
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1)
    throw new Error(`multi-turn rollout: maxTokens must be a positive integer, got ${opts.maxTokens}`);
  if (opts.maxTurnTokens !== undefined && (!Number.isInteger(opts.maxTurnTokens) || opts.maxTurnTokens < 1))
    throw new Error(
      `multi-turn rollout: maxTurnTokens must be a positive integer, got ${opts.maxTurnTokens}`,
    );
  if (!(opts.temperature >= 0) || !Number.isFinite(opts.temperature))
    throw new Error(`multi-turn rollout: temperature must be ≥ 0, got ${opts.temperature}`);
  if (!(contextLength >= 2))
    throw new Error(`multi-turn rollout: contextLength must be ≥ 2, got ${contextLength}`);
}

function append<S>(r: Running<S>, ids: readonly number[], mask: number, logprobs?: readonly number[]): void {
  ids.forEach((id, i) => {
    r.ids.push(id);
    r.mask.push(mask);
    r.logprobs.push(logprobs ? logprobs[i]! : 0);
  });
}

/** Runs G = `count` episodes to the end, batching each turn over the unfinished ones. */
export function runMultiTurnRollouts<S>(
  policy: CausalLM | TurnPolicy,
  episodeFactory: EpisodeFactory<S>,
  count: number,
  opts: MultiTurnOptions,
): MultiTurnRollout<S>[] {
  const generate = typeof policy === "function" ? policy : gptTurnPolicy(policy);
  const contextLength =
    opts.contextLength ?? (typeof policy === "function" ? Number.POSITIVE_INFINITY : policy.contextLength);
  validateOptions(opts, contextLength);
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`multi-turn rollout: count must be a positive integer, got ${count}`);
  const encode = (text: string) => opts.codec.encode(text);
  const separator = [opts.stopTokenId];
  const eosId = opts.eosId;

  const runs: Running<S>[] = [];
  for (let i = 0; i < count; i++) {
    const episode = episodeFactory(i, { maxTurns: opts.maxTurns, maxTokens: opts.maxTokens });
    if (typeof episode?.step !== "function" || episode.done || episode.turns > 0)
      throw new Error(`multi-turn rollout: episode factory returned a used or invalid episode at index ${i}`);
    const prompt = encode(episode.prompt);
    if (prompt.length >= contextLength)
      throw new Error(
        `multi-turn rollout: prompt of episode ${i} has ${prompt.length} tokens, contextLength is ${contextLength}`,
      );
    const r: Running<S> = {
      episode,
      ids: [],
      mask: [],
      logprobs: [],
      promptLength: prompt.length,
      policyTokens: 0,
      toolTokens: 0,
      truncated: false,
      stoppedByEos: false,
      reward: null,
    };
    append(r, prompt, 0);
    runs.push(r);
  }

  for (;;) {
    const active = runs.filter((r) => r.reward === null);
    if (active.length === 0) break;
    const limits = active.map((r) => {
      const budget = Math.min(
        opts.maxTokens - r.policyTokens,
        opts.maxTurnTokens ?? Number.POSITIVE_INFINITY,
      );
      return Math.min(budget, contextLength - r.ids.length);
    });
    // A context with no room left cannot take another turn: the episode ends here.
    const turning: Running<S>[] = [];
    const turnLimits: number[] = [];
    active.forEach((r, i) => {
      if (limits[i]! >= 1) {
        turning.push(r);
        turnLimits.push(limits[i]!);
      } else {
        r.truncated = true;
        r.reward = r.episode.cutShort("context_full");
      }
    });
    if (turning.length === 0) continue;
    const out = generate(
      turning.map((r) => r.ids),
      {
        maxNewTokens: turnLimits,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        stopTokenId: opts.stopTokenId,
        rng: opts.rng,
      },
    );
    if (out.tokens.length !== turning.length || out.logprobs.length !== turning.length)
      throw new Error(
        `multi-turn rollout: the policy returned ${out.tokens.length} turns for ${turning.length} contexts`,
      );
    turning.forEach((r, i) => {
      // A generator may not exceed the limit it was given: the budget and the context depend on it.
      const generated = out.tokens[i]!.slice(0, turnLimits[i]);
      const stop = generated.findIndex((id) => id === opts.stopTokenId || id === eosId);
      // Anything a generator wrote after its stop token is not part of the turn.
      const tokens = stop < 0 ? generated : generated.slice(0, stop + 1);
      const eos = stop >= 0 && generated[stop] === eosId;
      const logprobs = out.logprobs[i]!.slice(0, tokens.length);
      if (logprobs.length !== tokens.length)
        throw new Error(
          `multi-turn rollout: ${tokens.length} tokens but ${logprobs.length} logprobs (row ${i})`,
        );
      append(r, tokens, 1, logprobs);
      r.policyTokens += tokens.length;
      // The turn's text stops before its stop token (or eos), which are not part of what it says.
      const text = opts.codec.decode(stop < 0 ? tokens : tokens.slice(0, -1));
      const step = r.episode.step(text, { tokens: tokens.length });
      if (step.done) {
        r.reward = step.reward;
        return;
      }
      if (eos) {
        r.stoppedByEos = true;
        r.reward = r.episode.cutShort("eos");
        return;
      }
      // A turn cut before its stop token still needs one, so the tool result starts afresh.
      if (stop < 0) append(r, separator, 0);
      const tool = encode(step.context);
      append(r, tool, 0);
      r.toolTokens += tool.length;
      if (r.ids.length >= contextLength) {
        r.truncated = true;
        r.reward = r.episode.cutShort("context_full");
      }
    });
  }

  return runs.map((r) => {
    const stats = r.episode.stats();
    return {
      ids: r.ids,
      policyMask: r.mask,
      logprobs: r.logprobs,
      promptLength: r.promptLength,
      reward: r.reward!,
      success: r.episode.solved,
      stats: {
        turns: r.episode.turns,
        promptTokens: r.promptLength,
        policyTokens: r.policyTokens,
        toolTokens: r.toolTokens,
        truncated: r.truncated,
        stoppedByEos: r.stoppedByEos,
        episode: stats,
      },
    };
  });
}

/** One episode; see runMultiTurnRollouts. */
export function runMultiTurnRollout<S>(
  policy: CausalLM | TurnPolicy,
  episodeFactory: EpisodeFactory<S>,
  opts: MultiTurnOptions,
): MultiTurnRollout<S> {
  return runMultiTurnRollouts(policy, episodeFactory, 1, opts)[0]!;
}

/**
 * The trainer's view of a multi-turn rollout: the prompt, then every later token as the
 * "completion", with the tool mask keeping tool results out of the loss.
 */
export function toRollout(r: MultiTurnRollout, group: number): Rollout {
  return {
    group,
    prompt: r.ids.slice(0, r.promptLength),
    tokens: r.ids.slice(r.promptLength),
    finished: !r.stats.truncated,
    toolMask: r.policyMask.slice(r.promptLength),
    reward: r.reward,
    success: r.success,
  };
}

/** `Trainable tokens: 1234/5678 (21.7%)` — policy tokens over all tokens of the rollouts. */
export function trainableTokensLine(rollouts: readonly Pick<MultiTurnRollout, "policyMask">[]): string {
  let trainable = 0;
  let total = 0;
  for (const r of rollouts) {
    total += r.policyMask.length;
    for (const m of r.policyMask) trainable += m;
  }
  const pct = total > 0 ? (100 * trainable) / total : 0;
  return `Trainable tokens: ${trainable}/${total} (${pct.toFixed(1)}%)`;
}
