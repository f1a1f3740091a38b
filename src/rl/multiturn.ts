/**
 * Multi-turn tool-use rollouts: the policy writes one line (a tool call), the episode runs it,
 * the tool's text is appended to the context as tokens the policy never trained on, and so on
 * until the episode is done or a limit is reached.
 *
 * Each turn re-samples from the whole context, so the sequence a rollout returns is exactly
 * what a full forward pass sees later; the logprobs recorded while sampling are then comparable
 * with the trainer's recomputation (old-policy ratios start at 1).
 *
 * G episodes are advanced together: every turn samples all unfinished episodes in one batched
 * call (the sampler left-pads, and a row's result does not depend on its batch-mates).
 */
import type { Rng } from "../core/rng.ts";
import { EmailEpisode, type EpisodeOptions, type EpisodeStats } from "../envs/email/episode.ts";
import { formatToolResult } from "../envs/email/prompt.ts";
import { computeReward } from "../envs/email/reward.ts";
import { decodeTurn, emailVocab } from "../envs/email/tokenizer.ts";
import { GPT } from "../model/gpt.ts";
import { sample } from "../model/sampler.ts";
import type { Vocab } from "../model/tokenizer.ts";
import type { Rollout } from "./rollout.ts";

/** What a turn generator receives: one context per active episode. */
export interface TurnRequest {
  /** Per context, the most tokens it may generate this turn (always ≥ 1). */
  maxNewTokens: number[];
  temperature: number;
  stopTokenId: number;
  rng: Rng;
}

/** Generated ids per context (the stop token included when produced) and their logprobs. */
export interface TurnResult {
  tokens: number[][];
  logprobs: number[][];
}

/** Anything that writes the next turn: a GPT through the sampler, or a script in tests. */
export type TurnPolicy = (contexts: number[][], req: TurnRequest) => TurnResult;

export interface MultiTurnOptions {
  /** Policy turns per episode; also handed to the episode so that it scores running out. */
  maxTurns: number;
  /** Policy tokens per episode (tool results do not count); the episode ends past it. */
  maxTokens: number;
  temperature: number;
  rng: Rng;
  /** End-of-turn id; the newline of the email vocabulary (see endOfTurnId). */
  stopTokenId: number;
  /**
   * Ends the whole rollout when the policy writes it (default: the vocabulary's eos). The
   * trainer's mask stops at the first eos, so nothing may follow one in a rollout.
   */
  eosId?: number;
  /** Tokens one turn may use; defaults to the remaining budget. */
  maxTurnTokens?: number;
  /** Longest context a rollout may build; defaults to the model's contextLength, else unlimited. */
  contextLength?: number;
  vocab?: Vocab;
}

export interface MultiTurnStats {
  turns: number;
  promptTokens: number;
  policyTokens: number;
  toolTokens: number;
  /** True when the context length cut the episode short; the reward is then out_of_budget's. */
  truncated: boolean;
  /** True when the policy wrote eos before the episode was over; the reward is then out_of_turns'. */
  stoppedByEos: boolean;
  episode: EpisodeStats;
}

export interface MultiTurnRollout {
  /** Prompt, then every policy turn and tool result in order. */
  ids: number[];
  /** 1 on tokens the policy generated, 0 on the prompt, tool results and separators. */
  policyMask: number[];
  /** logprobs[i] = log π(ids[i] | ids[<i]) where policyMask[i] = 1, else 0. */
  logprobs: number[];
  promptLength: number;
  reward: number;
  success: boolean;
  stats: MultiTurnStats;
}

/** Makes episode i of a group; the rollout's limits are passed on so the episode scores them. */
export type EpisodeFactory = (index: number, limits: EpisodeOptions) => EmailEpisode;

/** Samples with the KV-cached sampler; contexts of unequal length share one batch. */
export function gptTurnPolicy(model: GPT): TurnPolicy {
  return (contexts, req) => {
    // One call per distinct limit would fragment the batch: sample to the largest and cut.
    const maxNew = Math.max(...req.maxNewTokens);
    const out = sample(model, contexts, {
      maxNewTokens: maxNew,
      temperature: req.temperature,
      eosId: req.stopTokenId,
      rng: req.rng,
    });
    return {
      tokens: out.tokens.map((t, i) => t.slice(0, req.maxNewTokens[i])),
      logprobs: out.logprobs.map((l, i) => l.slice(0, req.maxNewTokens[i])),
    };
  };
}

interface Running {
  episode: EmailEpisode;
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

function append(r: Running, ids: readonly number[], mask: number, logprobs?: readonly number[]): void {
  ids.forEach((id, i) => {
    r.ids.push(id);
    r.mask.push(mask);
    r.logprobs.push(logprobs ? logprobs[i]! : 0);
  });
}

/** Scores an episode that ended before the environment ended it. */
function earlyEndReward(episode: EmailEpisode, kind: "out_of_budget" | "out_of_turns"): number {
  return computeReward({
    outcome: { kind },
    expected: episode.question,
    turns: episode.turns,
    maxTurns: episode.maxTurns,
    foundSource: episode.foundSource,
    readSource: episode.readSource,
  }).reward;
}

/** Runs G = `count` episodes to the end, batching each turn over the unfinished ones. */
export function runMultiTurnRollouts(
  policy: GPT | TurnPolicy,
  episodeFactory: EpisodeFactory,
  count: number,
  opts: MultiTurnOptions,
): MultiTurnRollout[] {
  const generate = policy instanceof GPT ? gptTurnPolicy(policy) : policy;
  const contextLength =
    opts.contextLength ?? (policy instanceof GPT ? policy.config.contextLength : Number.POSITIVE_INFINITY);
  validateOptions(opts, contextLength);
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`multi-turn rollout: count must be a positive integer, got ${count}`);
  const vocab = opts.vocab ?? emailVocab();
  const encode = (text: string) => vocab.encode(text);
  const separator = [opts.stopTokenId];
  const eosId = opts.eosId ?? vocab.eosId;

  const runs: Running[] = [];
  for (let i = 0; i < count; i++) {
    const episode = episodeFactory(i, { maxTurns: opts.maxTurns, maxTokens: opts.maxTokens });
    if (!(episode instanceof EmailEpisode) || episode.done || episode.turns > 0)
      throw new Error(`multi-turn rollout: episode factory returned a used or invalid episode at index ${i}`);
    const prompt = encode(`${episode.prompt.trimEnd()}\n`);
    if (prompt.length >= contextLength)
      throw new Error(
        `multi-turn rollout: prompt of episode ${i} has ${prompt.length} tokens, contextLength is ${contextLength}`,
      );
    const r: Running = {
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
    const turning: Running[] = [];
    const turnLimits: number[] = [];
    active.forEach((r, i) => {
      if (limits[i]! >= 1) {
        turning.push(r);
        turnLimits.push(limits[i]!);
      } else {
        r.truncated = true;
        r.reward = earlyEndReward(r.episode, "out_of_budget");
      }
    });
    if (turning.length === 0) continue;
    const out = generate(
      turning.map((r) => r.ids),
      {
        maxNewTokens: turnLimits,
        temperature: opts.temperature,
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
      const text = decodeTurn(eos ? tokens.slice(0, -1) : tokens, vocab);
      const step = r.episode.step(text, { tokens: tokens.length });
      if (step.done) {
        r.reward = step.reward ?? r.episode.finalReward();
        return;
      }
      if (eos) {
        r.stoppedByEos = true;
        r.reward = earlyEndReward(r.episode, "out_of_turns");
        return;
      }
      // A turn cut before its newline still needs one, so the tool result starts on its own line.
      if (stop < 0) append(r, separator, 0);
      const tool = encode(`${formatToolResult(step.toolResult ?? "")}\n`);
      append(r, tool, 0);
      r.toolTokens += tool.length;
      if (r.ids.length >= contextLength) {
        r.truncated = true;
        r.reward = earlyEndReward(r.episode, "out_of_budget");
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
      success: r.episode.done && stats.verdict === "correct",
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
export function runMultiTurnRollout(
  policy: GPT | TurnPolicy,
  episodeFactory: EpisodeFactory,
  opts: MultiTurnOptions,
): MultiTurnRollout {
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
