/**
 * The closing lines of a long command: what it did, what changed, where the results are and the
 * command that shows them. Every command prints them the same way, after its progress stopped:
 *
 *   done: 100 GRPO steps in 2m05s
 *     reward 0.270 → 0.410
 *     held-out success 0.0% → 12.5% (best 25.0% at step 80)
 *     results in outputs/grpo_theory
 *     see them: npx grpo report outputs/grpo_theory
 */
import { fixed, percent } from "./progress.ts";
import { shellCommand } from "./shell.ts";

export interface RunSummary {
  /** What ran, after "done: ", e.g. "100 GRPO steps in 2m05s". */
  done: string;
  /** What changed, one line each; `change` and `shareChange` write the usual ones. */
  changes?: readonly string[];
  /** Where the results are (a directory or a file). */
  results?: string;
  /** Commands that show the results, e.g. `reportCommand(dir)`. */
  next?: readonly string[];
}

export function summaryLines(s: RunSummary): string[] {
  const lines = [`done: ${s.done}`, ...(s.changes ?? []).map((c) => `  ${c}`)];
  if (s.results !== undefined) lines.push(`  results in ${s.results}`);
  for (const n of s.next ?? []) lines.push(`  see them: ${n}`);
  return lines;
}

/** "120 GRPO steps", with "(20 since the resume)" when the run started at `firstStep` > 0. */
export function grpoSteps(step: number, firstStep: number): string {
  return `${step} GRPO steps${firstStep > 0 ? ` (${step - firstStep} since the resume)` : ""}`;
}

/** Writes the summary to stdout (the results channel; progress may be on stderr). */
export function printSummary(s: RunSummary, write: (line: string) => void = console.log): void {
  for (const line of summaryLines(s)) write(line);
}

/** "reward 0.270 → 0.410"; `digits` decimals. */
export function change(name: string, first: number, last: number, digits = 3): string {
  return `${name} ${fixed(first, digits)} → ${fixed(last, digits)}`;
}

/** "success 0.0% → 12.5%" for shares in [0, 1]. */
export function shareChange(name: string, first: number, last: number): string {
  return `${name} ${percent(first)} → ${percent(last)}`;
}

/** The command that renders a run's report, as a person would type it in the checkout. */
export function reportCommand(...dirs: string[]): string {
  return shellCommand(["npx", "grpo", "report", ...dirs]);
}
