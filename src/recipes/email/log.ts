/**
 * The lines a run of the email recipe prints, in the seed's format, so that logs of either can
 * be read (and grepped: `grep '^Step'`) the same way.
 */
import type { StepRecord } from "../../rl/trainer.ts";
import { ERROR_CLASSES, ERROR_LABELS, type ErrorCounts } from "./errors.ts";

/** `v.toFixed(digits)`, except that a value that rounds to zero never prints as -0.0000. */
export function fixed(v: number, digits: number): string {
  const s = v.toFixed(digits);
  return /^-0(?:\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** `Step 1/200 | Loss: 0.5234 | Policy: 0.5123 | KL: 0.0111 | Reward: 0.456 | Acc: 25.0% | Trainable tokens: 1234/5678 (21.7%)` */
export function stepLine(r: StepRecord, total: number): string {
  const trained = r.trainable_tokens ?? 0;
  const all = r.completion_tokens ?? 0;
  const pct = all > 0 ? (100 * trained) / all : 0;
  return [
    `Step ${r.step}/${total}`,
    `Loss: ${fixed(r.loss ?? 0, 4)}`,
    `Policy: ${fixed(r.policy_loss ?? 0, 4)}`,
    `KL: ${fixed(r.kl ?? 0, 4)}`,
    `Reward: ${fixed(r.reward ?? 0, 3)}`,
    `Acc: ${fixed(100 * (r.success_rate ?? 0), 1)}%`,
    `Trainable tokens: ${trained}/${all} (${fixed(pct, 1)}%)`,
  ].join(" | ");
}

/** The evaluation block's first two lines; the trainer adds `New best accuracy` when it improves. */
export function evalLines(e: { reward: number; successRate: number }): string[] {
  return [`Eval reward: ${fixed(e.reward, 4)}`, `Eval accuracy: ${fixed(e.successRate, 4)}`];
}

/** `52.0% (52/100)` */
export function percentOf(accuracy: number, n: number): string {
  return `${fixed(100 * accuracy, 1)}% (${Math.round(accuracy * n)}/${n})`;
}

/**
 * What GRPO did, for a run's closing lines: held-out accuracy after the warm start and at the
 * end with their difference in points, then the wrong answers of each by cause.
 */
export function learningSummary(
  before: { accuracy: number; errors: ErrorCounts },
  after: { accuracy: number; errors: ErrorCounts },
  questions: number,
): string[] {
  const diff = 100 * (after.accuracy - before.accuracy);
  const causes = ERROR_CLASSES.filter((c) => before.errors[c] > 0 || after.errors[c] > 0).map(
    (c) => `${ERROR_LABELS[c]} ${before.errors[c]} → ${after.errors[c]}`,
  );
  return [
    `wrong held-out answers by cause, warm start → end: ${causes.length > 0 ? causes.join("; ") : "none"}`,
    `held-out accuracy on ${questions} questions: ${percentOf(before.accuracy, questions)} after the warm start → ` +
      `${percentOf(after.accuracy, questions)} after GRPO (${diff >= 0 ? "+" : ""}${fixed(diff, 1)} points)`,
  ];
}
