import { writeJsonAtomic } from "../io/files.ts";
import { emptyUsage, type LLMErrorKind, type UsageStats } from "./client.ts";

export type UsageTotals = Omit<UsageStats, "agent" | "model">;

export interface UsageSummary {
  /** Keyed by agent; several clients of one agent are added together. */
  perAgent: Record<string, UsageStats>;
  total: UsageTotals;
}

function addInto(into: UsageTotals, s: UsageTotals): void {
  into.calls += s.calls;
  into.failedCalls += s.failedCalls;
  into.retries += s.retries;
  into.promptTokens += s.promptTokens;
  into.completionTokens += s.completionTokens;
  into.costUSD += s.costUSD;
  // Stats saved before the cache existed have no such field.
  into.cacheHits += s.cacheHits ?? 0;
  for (const [kind, n] of Object.entries(s.byKind)) into.byKind[kind as LLMErrorKind] += n;
}

export function summarizeUsage(stats: UsageStats[]): UsageSummary {
  const perAgent: Record<string, UsageStats> = {};
  const total = emptyUsage();
  for (const s of stats) {
    let entry = perAgent[s.agent];
    if (!entry) {
      entry = { agent: s.agent, model: s.model, ...emptyUsage() };
      perAgent[s.agent] = entry;
    } else if (!entry.model.split(", ").includes(s.model)) {
      entry.model = `${entry.model}, ${s.model}`;
    }
    addInto(entry, s);
    addInto(total, s);
  }
  return { perAgent, total };
}

/** Writes the summary as JSON, atomically so that a reader never sees half a file. */
export function writeUsageSummary(path: string, stats: UsageStats[]): void {
  writeJsonAtomic(path, summarizeUsage(stats));
}
