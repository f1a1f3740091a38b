import type { Pricing } from "../llm/config.ts";
import type { CostTotals, TokenUsage, UsageLike } from "./types.ts";

export type { TokenUsage };

function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0;
}

/**
 * Reads the project's, OpenAI's and the AI SDK's usage shapes; a price, when given, fills in the
 * cost the caller did not report.
 */
export function normaliseUsage(u: UsageLike | undefined, pricing?: Pricing): TokenUsage | undefined {
  if (!u || typeof u !== "object") return undefined;
  const r = u as Record<string, unknown>;
  const promptTokens = count(r.promptTokens ?? r.prompt_tokens ?? r.inputTokens);
  const completionTokens = count(r.completionTokens ?? r.completion_tokens ?? r.outputTokens);
  const out: TokenUsage = {
    calls: r.calls === undefined ? 1 : count(r.calls),
    promptTokens,
    completionTokens,
  };
  if (typeof r.costUSD === "number" && Number.isFinite(r.costUSD)) out.costUSD = r.costUSD;
  else if (pricing) out.costUSD = costOf(promptTokens, completionTokens, pricing);
  return out;
}

export function costOf(promptTokens: number, completionTokens: number, p: Pricing): number {
  return (promptTokens * p.inputPerMTok + completionTokens * p.outputPerMTok) / 1e6;
}

export function emptyCost(): CostTotals {
  return { calls: 0, promptTokens: 0, completionTokens: 0, costUSD: 0, priced: false };
}

export function addCost(into: CostTotals, u: TokenUsage | undefined): void {
  if (!u) return;
  into.calls += u.calls;
  into.promptTokens += u.promptTokens;
  into.completionTokens += u.completionTokens;
  if (u.costUSD !== undefined) {
    into.costUSD += u.costUSD;
    into.priced = true;
  }
}
