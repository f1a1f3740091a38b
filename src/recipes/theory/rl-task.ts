import type { Rng } from "../../core/rng.ts";
import type { RewardResult, RlTask, TokenConstraint } from "../../rl/types.ts";
import { ARCHIVE_FILE, pickRare, TheoryArchive } from "./archive.ts";
import { contentClass, coreClass, isValidTheory, theoryClass } from "./canonical.ts";
import { formatTheory, parseTheory } from "./fields.ts";
import { QUICK_GRAMMAR } from "./presets.ts";
import type { TheoryReward } from "./reward.ts";
import { createTheoryTask, type TheoryTask, type TheoryTaskOptions } from "./task.ts";

/**
 * The theory recipe: a small transformer writes a list of fields (SU(3) rep, SU(2) rep,
 * hypercharge) under the grammar's constraint; the reward is the environment's anomaly reward
 * ("physics"), plus, with a novelty weight, a reward for valid theories the run has rarely seen.
 */

export interface TheoryRlTaskOptions extends TheoryTaskOptions {
  /**
   * Weight of the novelty reward: a valid theory earns weight / √n, n = how often the run has
   * sampled it in training (this step's samples included) plus how often the demonstrations
   * showed it. 0 (default): the physics reward alone.
   */
  noveltyWeight?: number;
  /**
   * Weight of the core novelty reward: a valid theory earns weight / √n, n = how often the run
   * has sampled (and the demonstrations showed) any theory with its chiral core (canonical.ts
   * coreClass). The novelty reward pays for a vector-like pair added to a known theory as for a
   * new chiral content; this one pays for new chiral content alone. 0 (default): none.
   */
  coreNoveltyWeight?: number;
  /**
   * Weight of the diversity reward: −(1 − 1/m) for a valid theory written m times in the step's
   * samples, so that a group made of one repeated theory no longer pays in full. 0 (default): none.
   */
  diversityWeight?: number;
  /**
   * Weight of the content diversity reward: −(1 − 1/m) for a valid theory whose field content
   * (canonical.ts contentClass: the representations without their hypercharges) m of the step's
   * valid samples share, so that a policy spread over one content's hypercharges — a generation
   * with singlets of every charge — pays as a family would. 0 (default): none.
   */
  contentDiversityWeight?: number;
  /**
   * Weight of the content novelty reward: a non-trivial theory, anomaly-free or not, earns
   * weight·a⁴/√n, with a the physics reward's anomaly score (1 when every anomaly cancels) and n
   * how many of the run's training samples (this step's included, the demonstrations not) held a
   * non-trivial theory with its field content (canonical.ts contentClass). Every other content
   * than the one a policy has settled on needs two fields changed together (a vector-like pair),
   * so the other terms, which pay valid theories only, see nothing until both are right; this one
   * pays a new content for coming close, and less as the content becomes common. 0 (default): none.
   */
  contentNoveltyWeight?: number;
  /**
   * Valid theories from the archive added to every training group (RlTask.archiveSamples): the
   * run's own finds, the rarely seen ones most likely, rewarded as if sampled (novelty included),
   * so that a theory found once is learnt from again. 0 (default): none.
   */
  archiveReplay?: number;
  /** Valid theory classes the grammar allows (enumerate.ts), for the share found; unset: unknown. */
  validTheories?: number;
}

export interface TheoryRlTask extends RlTask {
  readonly theory: TheoryTask;
  readonly vocabSize: number;
  /** prompt + longest completion. */
  readonly contextLength: number;
  /** The valid theories sampled so far, and the demonstrations' ones. */
  readonly archive: TheoryArchive;
  /** The class (canonical.ts) of a completion that is a valid theory; null otherwise. */
  validClass(tokens: readonly number[]): string | null;
}

export function theoryRlTask(opts: TheoryRlTaskOptions = QUICK_GRAMMAR): TheoryRlTask {
  const theory = createTheoryTask(opts);
  const g = theory.grammar;
  /** An exploration term's weight, 0 when unset. */
  const weight = (
    name:
      | "noveltyWeight"
      | "coreNoveltyWeight"
      | "diversityWeight"
      | "contentDiversityWeight"
      | "contentNoveltyWeight",
  ) => {
    const w = opts[name] ?? 0;
    if (!(w >= 0 && Number.isFinite(w))) throw new Error(`theory task: ${name} must be ≥ 0, got ${w}`);
    return w;
  };
  const noveltyWeight = weight("noveltyWeight");
  const coreNoveltyWeight = weight("coreNoveltyWeight");
  const diversityWeight = weight("diversityWeight");
  const contentDiversityWeight = weight("contentDiversityWeight");
  const contentNoveltyWeight = weight("contentNoveltyWeight");
  const archiveReplay = opts.archiveReplay ?? 0;
  if (!(Number.isInteger(archiveReplay) && archiveReplay >= 0)) {
    throw new Error(`theory task: archiveReplay must be an integer ≥ 0, got ${archiveReplay}`);
  }
  const archive = new TheoryArchive(opts.validTheories ?? null, (c) => coreClass(parseTheory(c)));
  const validClass = (tokens: readonly number[]): string | null => {
    const t = g.decode(tokens);
    return t && isValidTheory(t) ? theoryClass(t) : null;
  };
  /**
   * physics + the exploration terms of one sample of class `c` written `copies` times in its step,
   * `sameContent` of the step's valid samples sharing its field content, `content` its field
   * content when it is non-trivial.
   */
  const compose = (
    r: TheoryReward,
    c: string | null,
    copies: number,
    sameContent = 1,
    content: string | null = null,
  ): RewardResult => {
    const components: Record<string, number> = { physics: r.total };
    let total = r.total;
    if (noveltyWeight > 0) {
      components.novelty = c ? 1 / Math.sqrt(Math.max(1, archive.timesSeen(c))) : 0;
      total += noveltyWeight * components.novelty;
    }
    if (coreNoveltyWeight > 0) {
      components.core_novelty = c ? 1 / Math.sqrt(Math.max(1, archive.timesCoreSeen(c))) : 0;
      total += coreNoveltyWeight * components.core_novelty;
    }
    if (diversityWeight > 0) {
      components.diversity = c ? 1 / copies - 1 : 0;
      total += diversityWeight * components.diversity;
    }
    if (contentDiversityWeight > 0) {
      components.content_diversity = c ? 1 / sameContent - 1 : 0;
      total += contentDiversityWeight * components.content_diversity;
    }
    if (contentNoveltyWeight > 0) {
      components.content_novelty =
        content === null
          ? 0
          : r.terms.anomaly! ** 4 / Math.sqrt(Math.max(1, archive.timesContentSeen(content)));
      total += contentNoveltyWeight * components.content_novelty;
    }
    return { total, success: r.success, components };
  };
  const contentOfClass = new Map<string, string>();
  /** The field content of class `c`, computed once per class. */
  const contentOf = (c: string): string => {
    let k = contentOfClass.get(c);
    if (k === undefined) {
      k = contentClass(parseTheory(c));
      contentOfClass.set(c, k);
    }
    return k;
  };
  /**
   * The field content of a completion that is a non-trivial theory, anomaly-free or not; null
   * otherwise. A valid one's comes from its class, computed once per class.
   */
  const nonTrivialContent = (tokens: readonly number[], r: TheoryReward, c: string | null): string | null => {
    if (!r.nonTrivial) return null;
    if (c !== null) return contentOf(c);
    const t = g.decode(tokens);
    return t ? contentClass(t) : null;
  };
  /** The class's own representative, in the grammar's tokens; null when it does not fit the grammar. */
  const encodeClass = (c: string): number[] | null => {
    try {
      return g.encode(parseTheory(c));
    } catch {
      return null;
    }
  };
  return {
    name: "theory",
    successLabel: "success",
    theory,
    archive,
    validClass,
    eosId: g.eosId,
    vocabSize: g.vocab.length,
    contextLength: 1 + g.maxLength,
    phases: 3,
    // Success means anomaly-free and non-trivial, in whichever phase the curriculum is.
    evalPhase: 3,
    constraint: g as TokenConstraint<unknown> as TokenConstraint,
    trainPrompts: (_rng: Rng, n: number) => Array.from({ length: n }, () => theory.promptTokens()),
    evalPrompts: () => [theory.promptTokens()],
    reward(tokens, phase) {
      const r = theory.reward(tokens, phase as 1 | 2 | 3);
      return { total: r.total, success: r.success };
    },
    rewardBatch(completions, { phase, step }) {
      const physics = completions.map((c) => theory.reward(c, phase as 1 | 2 | 3));
      const classes = completions.map(validClass);
      archive.record(classes, step + 1, "train");
      const copies = tally(classes);
      const contents = classes.map((c) => (c !== null && contentDiversityWeight > 0 ? contentOf(c) : null));
      const sameContent = tally(contents);
      const novelContents =
        contentNoveltyWeight > 0
          ? completions.map((c, i) => nonTrivialContent(c, physics[i]!, classes[i]!))
          : [];
      archive.recordContents(novelContents);
      return physics.map((r, i) =>
        compose(
          r,
          classes[i]!,
          copies.get(classes[i]!) ?? 1,
          sameContent.get(contents[i]!) ?? 1,
          novelContents[i] ?? null,
        ),
      );
    },
    archiveSamples(rng, { phase }) {
      if (archiveReplay === 0) return [];
      const picked = pickRare(archive, archiveReplay, rng);
      return picked.flatMap((c) => {
        const tokens = encodeClass(c);
        if (!tokens) return [];
        const r = theory.reward(tokens, phase as 1 | 2 | 3);
        return [{ tokens, reward: compose(r, c, 1, 1, contentNoveltyWeight > 0 ? contentOf(c) : null) }];
      });
    },
    evalMetrics(completions, { step }) {
      const classes = completions.map(validClass);
      archive.record(classes, step, "eval");
      const distinct = new Set(classes.filter((c): c is string => c !== null));
      const novel = [...distinct].filter((c) => !archive.inDemonstrations(c)).length;
      return {
        distinct_valid: distinct.size,
        novel_valid: novel,
        distinct_valid_cumulative: archive.distinct,
        novel_valid_cumulative: archive.novel,
        chiral_cores_cumulative: archive.cores,
        ...(archive.validInGrammar ? { found_share: archive.distinct / archive.validInGrammar } : {}),
      };
    },
    memory: {
      file: ARCHIVE_FILE,
      save: () => archive.save(),
      load: (state, source) => archive.load(state, source),
    },
    describe(tokens) {
      const t = g.decode(tokens);
      return t ? formatTheory(t) : g.tokensToString(tokens);
    },
    // Full sequences for the warm start: the environment's demonstrations with <bos> in front.
    demonstrations: (rng: Rng, n: number) =>
      theory.demonstrations(rng, n).map((c) => (c[0] === g.bosId ? c : [g.bosId, ...c])),
  };
}

/** The figure the benchmark tracks: share of completions that are anomaly-free and non-trivial. */
export function validShare(task: TheoryRlTask, completions: number[][]): number {
  if (completions.length === 0) return 0;
  return completions.filter((c) => task.validClass(c) !== null).length / completions.length;
}

/** How many times each key occurs (nulls, the invalid samples, left out). */
function tally(keys: readonly (string | null)[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const k of keys) if (k !== null) n.set(k, (n.get(k) ?? 0) + 1);
  return n;
}
