import { z } from "zod";
import type { Rng } from "../../core/rng.ts";
import { zodFileError } from "../../io/files.ts";

/**
 * Every valid theory a run has produced (by class, canonical.ts): how often it was sampled in
 * training and at evaluation, the step it first appeared, and whether the warm start's
 * demonstrations contained it. It measures discovery (distinct and novel theories, not just the
 * share of valid samples) and feeds the novelty reward, which pays for theories rarely seen.
 */

export interface FoundTheory {
  /** The class string (theoryClass). */
  theory: string;
  /** Times sampled in training steps. */
  samples: number;
  /** Times sampled at evaluation. */
  eval_samples: number;
  /** The step of the first sample (0: the evaluation before the first step). */
  first_step: number;
  in_demonstrations: boolean;
}

/** What the archive saves: in every checkpoint, and as theories.json beside history.jsonl. */
export const archiveStateSchema = z.object({
  version: z.literal(1),
  /** Valid demonstration classes with how often the demonstrations contained each. */
  demonstrations: z.record(z.string(), z.number().int().positive()),
  theories: z.array(
    z.object({
      theory: z.string(),
      samples: z.number().int().nonnegative(),
      eval_samples: z.number().int().nonnegative(),
      first_step: z.number().int().nonnegative(),
      in_demonstrations: z.boolean(),
    }),
  ),
  /** Valid classes the grammar allows (exact search), when known. */
  valid_in_grammar: z.number().int().positive().nullable(),
  /**
   * Training samples counted by field content (canonical.ts contentClass), anomaly-free or not,
   * for the content novelty reward; absent when that reward is off.
   */
  contents: z.record(z.string(), z.number().int().positive()).optional(),
});
export type ArchiveState = z.infer<typeof archiveStateSchema>;

/** The file the trainer writes the archive to, beside history.jsonl. */
export const ARCHIVE_FILE = "theories.json";

export class TheoryArchive {
  private demos = new Map<string, number>();
  private found = new Map<string, FoundTheory>();
  /** Times seen (timesSeen) summed by chiral core; derived from the two maps above. */
  private coreSeen = new Map<string, number>();
  private coreOfClass = new Map<string, string>();
  private contentSeen = new Map<string, number>();

  /**
   * @param validInGrammar how many valid classes exist, for the share found (null: unknown).
   * @param coreOf the chiral core of a class (canonical.ts coreClass); unset: every class is its own core.
   */
  constructor(
    readonly validInGrammar: number | null = null,
    private readonly coreOf: (c: string) => string = (c) => c,
  ) {}

  /** The chiral core of class `c`, computed once per class. */
  core(c: string): string {
    let k = this.coreOfClass.get(c);
    if (k === undefined) {
      k = this.coreOf(c);
      this.coreOfClass.set(c, k);
    }
    return k;
  }

  private countCore(c: string, n: number): void {
    const k = this.core(c);
    this.coreSeen.set(k, (this.coreSeen.get(k) ?? 0) + n);
  }

  private recountCores(): void {
    this.coreSeen.clear();
    for (const [c, n] of this.demos) this.countCore(c, n);
    for (const t of this.found.values()) if (t.samples > 0) this.countCore(t.theory, t.samples);
  }

  /** Adds the valid classes of the warm start's demonstrations (null entries: not valid). */
  addDemonstrations(classes: readonly (string | null)[]): void {
    for (const c of classes) if (c !== null) this.demos.set(c, (this.demos.get(c) ?? 0) + 1);
    for (const [c, t] of this.found) t.in_demonstrations = this.demos.has(c);
    this.recountCores();
  }

  inDemonstrations(c: string): boolean {
    return this.demos.has(c);
  }

  get demonstrationClasses(): number {
    return this.demos.size;
  }

  /** Records a batch of samples (null: not valid) drawn at `step`. */
  record(classes: readonly (string | null)[], step: number, split: "train" | "eval"): void {
    for (const c of classes) {
      if (c === null) continue;
      let t = this.found.get(c);
      if (!t) {
        t = {
          theory: c,
          samples: 0,
          eval_samples: 0,
          first_step: step,
          in_demonstrations: this.demos.has(c),
        };
        this.found.set(c, t);
      }
      if (split === "train") {
        t.samples++;
        this.countCore(c, 1);
      } else t.eval_samples++;
    }
  }

  /**
   * How often the run has seen a class in training, the demonstrations counted as seen: what the
   * novelty reward decays with. Evaluation samples do not count, so evaluating never changes
   * what training is rewarded for.
   */
  timesSeen(c: string): number {
    return (this.found.get(c)?.samples ?? 0) + (this.demos.get(c) ?? 0);
  }

  /** Records the field contents of a batch of training samples (null: not counted). */
  recordContents(contents: readonly (string | null)[]): void {
    for (const k of contents) if (k !== null) this.contentSeen.set(k, (this.contentSeen.get(k) ?? 0) + 1);
  }

  /** Training samples recorded with field content `k`: what the content novelty reward decays with. */
  timesContentSeen(k: string): number {
    return this.contentSeen.get(k) ?? 0;
  }

  /** timesSeen summed over the classes that share the chiral core of `c`: what the core novelty reward decays with. */
  timesCoreSeen(c: string): number {
    return this.coreSeen.get(this.core(c)) ?? 0;
  }

  /** Distinct chiral cores among the valid classes sampled so far (training and evaluation). */
  get cores(): number {
    return new Set([...this.found.keys()].map((c) => this.core(c))).size;
  }

  /** Distinct valid classes sampled so far (training and evaluation). */
  get distinct(): number {
    return this.found.size;
  }

  /** Of those, the ones not among the demonstrations. */
  get novel(): number {
    let n = 0;
    for (const t of this.found.values()) if (!t.in_demonstrations) n++;
    return n;
  }

  /** Most sampled first. */
  theories(): FoundTheory[] {
    return [...this.found.values()].sort(
      (a, b) => b.samples + b.eval_samples - (a.samples + a.eval_samples) || a.first_step - b.first_step,
    );
  }

  save(): ArchiveState {
    return {
      version: 1,
      demonstrations: Object.fromEntries(this.demos),
      theories: this.theories().map((t) => ({ ...t })),
      valid_in_grammar: this.validInGrammar,
      ...(this.contentSeen.size > 0 ? { contents: Object.fromEntries(this.contentSeen) } : {}),
    };
  }

  /** Replaces the contents with a saved state, checked; errors name `file` and the field. */
  load(state: unknown, file = "theory archive"): void {
    const parsed = archiveStateSchema.safeParse(state);
    if (!parsed.success) throw zodFileError(file, parsed.error);
    this.demos = new Map(Object.entries(parsed.data.demonstrations));
    this.found = new Map(parsed.data.theories.map((t) => [t.theory, { ...t }]));
    this.contentSeen = new Map(Object.entries(parsed.data.contents ?? {}));
    this.recountCores();
  }
}

/**
 * Up to `n` distinct classes the policy has sampled in training, drawn with weight 1/timesSeen:
 * the rarely seen first, so that replaying them spreads the policy instead of sharpening it.
 */
export function pickRare(archive: TheoryArchive, n: number, rng: Rng): string[] {
  const pool = archive
    .theories()
    .filter((t) => t.samples > 0)
    .map((t) => ({ c: t.theory, w: 1 / archive.timesSeen(t.theory) }));
  const out: string[] = [];
  while (out.length < n && pool.length > 0) {
    let u = rng.next() * pool.reduce((a, p) => a + p.w, 0);
    let i = 0;
    while (i < pool.length - 1 && u >= pool[i]!.w) u -= pool[i++]!.w;
    out.push(pool[i]!.c);
    pool.splice(i, 1);
  }
  return out;
}
