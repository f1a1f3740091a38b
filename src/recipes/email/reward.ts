/**
 * Episode reward in the ART·E bands. Format errors sit below every answered outcome so that a
 * well-formed wrong answer always beats a malformed call:
 *
 *   unparseable −2 < unknown tool −1.9 < bad arguments −1.8 < wrong answer −1 (+ partial)
 *     < "I don't know" / out of turns / out of token budget 0 (+ partial) < correct 1 (+ bonuses)
 *
 * Partial credits (+0.1 for a source email appearing in a search result, +0.1 for reading one)
 * only apply to the wrong / don't-know / out-of-turns outcomes: they reward progress in
 * episodes that failed, and at 0.2 in total they cannot lift a wrong answer to 0. Error
 * endings get the bare band so that the three error kinds stay distinguishable.
 */
import { answersMatch, isIDontKnow, normaliseText, parseAmount, parseDate } from "./answer.ts";
import type { ToolErrorKind } from "./tool-call.ts";

export const REWARD = {
  unparseable: -2,
  unknown_tool: -1.9,
  bad_arguments: -1.8,
  wrongAnswer: -1,
  dontKnow: 0,
  outOfTurns: 0,
  correct: 1,
  /** When the cited sources include every source email of the question. */
  sourcesBonus: 0.1,
  /** Scaled from full at one turn to nothing at the turn limit. */
  turnsBonus: 0.1,
  foundSource: 0.1,
  readSource: 0.1,
} as const;

export type Outcome =
  | { kind: "answer"; answer: string; sources: string[] }
  | { kind: "tool_error"; error: ToolErrorKind }
  | { kind: "out_of_turns" }
  | { kind: "out_of_budget" };

export interface RewardInput {
  outcome: Outcome;
  expected: { answer: string; sourceIds: string[] };
  turns: number;
  maxTurns: number;
  foundSource: boolean;
  readSource: boolean;
}

export type Verdict = "correct" | "wrong" | "dont_know" | "out_of_turns" | "out_of_budget" | ToolErrorKind;

export interface RewardResult {
  reward: number;
  verdict: Verdict;
}

function partial(input: RewardInput): number {
  return (input.foundSource ? REWARD.foundSource : 0) + (input.readSource ? REWARD.readSource : 0);
}

export function computeReward(input: RewardInput): RewardResult {
  const { outcome } = input;
  if (outcome.kind === "tool_error") return { reward: REWARD[outcome.error], verdict: outcome.error };
  if (outcome.kind === "out_of_turns")
    return { reward: REWARD.outOfTurns + partial(input), verdict: "out_of_turns" };
  if (outcome.kind === "out_of_budget") {
    return { reward: REWARD.outOfTurns + partial(input), verdict: "out_of_budget" };
  }
  if (isIDontKnow(outcome.answer)) return { reward: REWARD.dontKnow + partial(input), verdict: "dont_know" };
  if (!answersMatch(input.expected.answer, outcome.answer)) {
    return { reward: REWARD.wrongAnswer + partial(input), verdict: "wrong" };
  }
  const cited = new Set(outcome.sources.map((s) => s.toLowerCase()));
  const sources = input.expected.sourceIds.every((id) => cited.has(id)) ? REWARD.sourcesBonus : 0;
  const span = Math.max(1, input.maxTurns - 1);
  const turnsLeft = Math.min(Math.max(input.maxTurns - input.turns, 0), span);
  return { reward: REWARD.correct + sources + (REWARD.turnsBonus * turnsLeft) / span, verdict: "correct" };
}

/**
 * A shaping term, apart from the reward above: the share of the expected answer's parts that a
 * given answer states — a date's year, month and day; an amount's digit groups ("18", "200");
 * a name's or a room's words — over the larger of the two part counts, so that a long answer
 * gains nothing by listing everything. 1 for a correct answer; it separates a half-copied value
 * ("Chloe Ahmed" for "Malik Ahmed") from one copied from nowhere.
 */
export function answerParts(expected: string, given: string): number {
  const parts = (answer: string, like: string): string[] | null => {
    if (parseDate(like) !== null) return parseDate(answer)?.split("-") ?? null;
    if (parseAmount(like) !== null) {
      const v = parseAmount(answer);
      return v === null ? null : Math.round(v).toLocaleString("en-US").split(",");
    }
    const words = normaliseText(answer).split(" ").filter(Boolean);
    return words.length > 0 ? words : null;
  };
  const want = parts(expected, expected);
  const got = parts(given, expected);
  if (want === null || got === null) return 0;
  // Numbers compare by position from the right (units with units); words as sets.
  const matched =
    parseDate(expected) === null && parseAmount(expected) === null
      ? want.filter((w) => got.includes(w)).length
      : want.filter((w, i) => got[got.length - want.length + i] === w).length;
  return matched / Math.max(want.length, got.length);
}
