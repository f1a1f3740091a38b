/**
 * The email environment as a multi-turn episode of the parametric trainer: each policy turn is
 * one line (a tool call), the tool's result comes back fenced on its own lines, and an episode
 * the rollout cuts short is scored by the environment's own bands.
 */

import type { GPT } from "../../model/gpt.ts";
import {
  type EpisodeFactory,
  type Episode as MultiTurnEpisode,
  type MultiTurnOptions,
  type MultiTurnRollout,
  runMultiTurnRollouts,
  type TurnPolicy,
} from "../../rl/multiturn.ts";
import type { EmailEpisode, EpisodeOptions, EpisodeStats } from "./episode.ts";
import { formatToolResult } from "./prompt.ts";
import { computeReward } from "./reward.ts";
import { emailVocab, endOfTurnId } from "./tokenizer.ts";

export type EmailRollout = MultiTurnRollout<EpisodeStats>;

/** The episode seen through the rollout's interface; the episode itself keeps its history. */
export function emailTurns(episode: EmailEpisode): MultiTurnEpisode<EpisodeStats> {
  return {
    // The prompt is a line of its own, like every turn after it.
    prompt: `${episode.prompt.trimEnd()}\n`,
    get turns() {
      return episode.turns;
    },
    get done() {
      return episode.done;
    },
    get solved() {
      return episode.done && episode.stats().verdict === "correct";
    },
    step(turn, info) {
      const s = episode.step(turn, info);
      if (s.done) return { done: true, reward: s.reward ?? episode.finalReward() };
      return { done: false, context: `${formatToolResult(s.toolResult ?? "")}\n` };
    },
    cutShort(reason) {
      return computeReward({
        // A full context is a spent budget; eos before an answer ends the turns.
        outcome: { kind: reason === "context_full" ? "out_of_budget" : "out_of_turns" },
        expected: episode.question,
        turns: episode.turns,
        maxTurns: episode.maxTurns,
        foundSource: episode.foundSource,
        readSource: episode.readSource,
      }).reward;
    },
    stats: () => episode.stats(),
  };
}

/** The multi-turn options over the email vocabulary: its codec, end-of-turn and eos ids by default. */
export type EmailTurnOptions = Omit<MultiTurnOptions, "codec" | "stopTokenId" | "eosId"> &
  Partial<Pick<MultiTurnOptions, "codec" | "stopTokenId" | "eosId">>;

/** Runs `count` email episodes made by `factory` as one batched group (see runMultiTurnRollouts). */
export function runEmailRollouts(
  policy: GPT | TurnPolicy,
  factory: (index: number, limits: EpisodeOptions) => EmailEpisode,
  count: number,
  opts: EmailTurnOptions,
): EmailRollout[] {
  const vocab = emailVocab();
  const episodes: EpisodeFactory<EpisodeStats> = (i, limits) => emailTurns(factory(i, limits));
  return runMultiTurnRollouts(policy, episodes, count, {
    codec: vocab,
    stopTokenId: endOfTurnId(vocab),
    eosId: vocab.eosId!,
    ...opts,
  });
}

/** One episode; see runEmailRollouts. */
export function runEmailRollout(
  policy: GPT | TurnPolicy,
  factory: (index: number, limits: EpisodeOptions) => EmailEpisode,
  opts: EmailTurnOptions,
): EmailRollout {
  return runEmailRollouts(policy, factory, 1, opts)[0]!;
}
