/**
 * The held-out evaluation of the email agent as data: each episode with its verdict and the
 * cause of its failure, and the figures a run keeps of it (warm_start_eval.json before the
 * first GRPO step, final_eval.json at the end), so that a resumed run still reports both.
 */
import { countErrors, type ErrorClass, type ErrorCounts } from "./errors.ts";
import type { Verdict } from "./reward.ts";
import type { Question } from "./types.ts";

export const WARM_START_EVAL_FILE = "warm_start_eval.json";
export const FINAL_EVAL_FILE = "final_eval.json";

/** One held-out episode: what the agent answered, and why it failed (null: it did not). */
export interface HeldOutEpisode {
  question: Question;
  reward: number;
  /** null when the rollout cut the episode short (a full context, eos before an answer). */
  verdict: Verdict | null;
  answer: string | null;
  errorClass: ErrorClass | null;
  /** for a wrong answer: whether some email of the inbox states it (else the value is invented). */
  answerInInbox: boolean | null;
  /** the whole episode as the policy saw it. */
  transcript: string;
}

export interface HeldOutResult {
  accuracy: number;
  reward: number;
  errors: ErrorCounts;
  episodes: HeldOutEpisode[];
}

export function summariseHeldOut(episodes: HeldOutEpisode[]): HeldOutResult {
  const n = Math.max(1, episodes.length);
  return {
    accuracy: episodes.filter((h) => h.errorClass === null).length / n,
    reward: episodes.reduce((a, h) => a + h.reward, 0) / n,
    errors: countErrors(episodes.map((h) => h.errorClass)),
    episodes,
  };
}

export interface HeldOutFigures {
  questions: number;
  accuracy: number;
  reward: number;
  errors: ErrorCounts;
}

export function heldOutFigures(h: HeldOutResult): HeldOutFigures {
  return { questions: h.episodes.length, accuracy: h.accuracy, reward: h.reward, errors: h.errors };
}
