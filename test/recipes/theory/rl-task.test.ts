import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { parseTheory, STANDARD_MODEL_GENERATION } from "../../../src/recipes/theory/fields.ts";
import { QUICK_GRAMMAR } from "../../../src/recipes/theory/presets.ts";
import { type TheoryRlTaskOptions, theoryRlTask } from "../../../src/recipes/theory/rl-task.ts";

const SM_TEXT = "(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,+6)";

function setup(opts: TheoryRlTaskOptions = {}) {
  const task = theoryRlTask({ ...QUICK_GRAMMAR, ...opts });
  const g = task.theory.grammar;
  const sm = g.encode(STANDARD_MODEL_GENERATION);
  const smNu = g.encode(parseTheory(`${SM_TEXT} (1,1,0)`));
  const anomalous = g.encode(parseTheory("(3,2,+1) (1,1,+6)"));
  return { task, sm, smNu, anomalous };
}

/** One training step's rewards, every sample in group 0. */
function stepRewards(task: ReturnType<typeof theoryRlTask>, cs: number[][], step = 0) {
  return task.rewardBatch!(cs, { phase: 3, step, groups: cs.map(() => 0) });
}

describe("theory task rewards", () => {
  it("keeps the physics reward as it is and adds novelty: weight / √(times seen)", () => {
    const { task, sm, smNu, anomalous } = setup({ noveltyWeight: 0.5 });
    const phys = (t: number[]) => task.reward(t, 3).total;
    const first = stepRewards(task, [sm, sm, anomalous, smNu], 0);
    assert.deepEqual(
      first.map((r) => r.components!.physics),
      [sm, sm, anomalous, smNu].map(phys),
    );
    assert.deepEqual(
      first.map((r) => r.components!.novelty),
      [1 / Math.SQRT2, 1 / Math.SQRT2, 0, 1],
    );
    first.forEach((r, i) => {
      assert.ok(
        Math.abs(r.total - (r.components!.physics! + 0.5 * r.components!.novelty!)) < 1e-12,
        `sample ${i}`,
      );
    });
    assert.deepEqual(
      first.map((r) => r.success),
      [true, true, false, true],
    );
    // Seen twice before: the third sighting earns 1/√3; evaluation samples do not count.
    task.evalMetrics!([sm, sm, sm], { phase: 3, step: 1 });
    assert.equal(stepRewards(task, [sm], 1)[0]!.components!.novelty, 1 / Math.sqrt(3));
    assert.equal(task.archive.theories().find((t) => t.theory === SM_TEXT)!.first_step, 1);
  });

  it("counts demonstrated theories as seen", () => {
    const { task, sm } = setup({ noveltyWeight: 1 });
    task.archive.addDemonstrations([task.validClass(sm), task.validClass(sm), task.validClass(sm)]);
    const [r] = stepRewards(task, [sm]);
    assert.equal(r!.components!.novelty, 0.5);
  });

  it("core novelty: weight / √(times any theory with the same chiral core was seen)", () => {
    const { task, sm, smNu, anomalous } = setup({ coreNoveltyWeight: 0.3 });
    const other = task.theory.grammar.encode(parseTheory(`${SM_TEXT} (1,2,-3) (1,2,+3)`));
    const rs = stepRewards(task, [sm, smNu, anomalous]);
    // Both carry the Standard Model's core: together seen twice.
    assert.deepEqual(
      rs.map((r) => r.components!.core_novelty),
      [1 / Math.SQRT2, 1 / Math.SQRT2, 0],
    );
    assert.ok(Math.abs(rs[0]!.total - (rs[0]!.components!.physics! + 0.3 / Math.SQRT2)) < 1e-12);
    assert.equal(rs[0]!.components!.novelty, undefined, "the theory novelty has its own weight");
    // A theory never sampled before, on a known core, is not new chiral content.
    const [r] = stepRewards(task, [other], 1);
    assert.equal(r!.components!.core_novelty, 1 / Math.sqrt(3));
    assert.throws(() => theoryRlTask({ coreNoveltyWeight: Number.NaN }), /coreNoveltyWeight must be ≥ 0/);
  });

  it("diversity: a valid theory written m times in a step earns −(1 − 1/m)", () => {
    const { task, sm, smNu, anomalous } = setup({ diversityWeight: 2 });
    const rs = stepRewards(task, [sm, sm, sm, sm, smNu, anomalous]);
    assert.deepEqual(
      rs.map((r) => r.components!.diversity),
      [-0.75, -0.75, -0.75, -0.75, 0, 0],
    );
    assert.ok(Math.abs(rs[0]!.total - (task.reward(sm, 3).total - 1.5)) < 1e-12);
    assert.equal(rs[0]!.components!.novelty, undefined, "no novelty term without its weight");
  });

  it("content diversity: a valid theory whose field content m valid samples share earns −(1 − 1/m)", () => {
    const { task, sm, smNu, anomalous } = setup({ contentDiversityWeight: 0.5 });
    const g = task.theory.grammar;
    // A charged singlet pair is the same content as two neutral singlets: representations only.
    const smPair = g.encode(parseTheory(`${SM_TEXT} (1,1,-6) (1,1,+6)`));
    const smZeros = g.encode(parseTheory(`${SM_TEXT} (1,1,0) (1,1,0)`));
    const smQuarks = g.encode(parseTheory(`${SM_TEXT} (3,2,-1) (3b,2,+1)`));
    const rs = stepRewards(task, [smPair, smZeros, smQuarks, smNu, sm, anomalous]);
    assert.deepEqual(
      rs.map((r) => r.components!.content_diversity),
      [-0.5, -0.5, 0, 0, 0, 0],
    );
    assert.ok(Math.abs(rs[0]!.total - (task.reward(smPair, 3).total - 0.25)) < 1e-12);
    assert.equal(rs[0]!.components!.diversity, undefined, "the theory-level term has its own weight");
    assert.throws(() => theoryRlTask({ contentDiversityWeight: -0.1 }), /contentDiversityWeight must be ≥ 0/);
  });

  it("content novelty: a non-trivial theory, valid or close, earns a⁴ / √(training samples with its field content)", () => {
    const { task, sm, smNu, anomalous } = setup({ contentNoveltyWeight: 0.5, archiveReplay: 1 });
    const g = task.theory.grammar;
    // The generation with a colour triplet and no antitriplet: chiral, anomalous, a content never seen.
    const smTriplet = g.encode(parseTheory(`${SM_TEXT} (3,1,+2)`));
    const a = task.theory.reward(smTriplet, 3).terms.anomaly!;
    assert.ok(a > 0.3 && a < 1, `anomaly score ${a}`);
    const rs = stepRewards(task, [sm, sm, smNu, smTriplet, anomalous]);
    assert.deepEqual(
      rs.map((r) => r.components!.content_novelty),
      // anomalous is (3,2,+1) (1,1,+6): two charged fields, not a non-trivial theory.
      [1 / Math.SQRT2, 1 / Math.SQRT2, 1, a ** 4, 0],
    );
    assert.equal(rs[3]!.success, false);
    assert.ok(Math.abs(rs[3]!.total - (task.reward(smTriplet, 3).total + 0.5 * a ** 4)) < 1e-12);
    assert.equal(rs[0]!.components!.novelty, undefined, "the theory novelty has its own weight");
    // A replayed theory is rewarded with the counts as they are, and not counted itself.
    const [replayed] = task.archiveSamples!(new Rng(1), { phase: 3, step: 1 });
    const replayedContent = replayed!.reward.components!.content_novelty;
    assert.ok(replayedContent === 1 / Math.SQRT2 || replayedContent === 1, `${replayedContent}`);
    // Evaluation samples are not counted; the next training sighting of the generation is its third.
    task.evalMetrics!([sm, sm], { phase: 3, step: 1 });
    assert.equal(stepRewards(task, [sm], 1)[0]!.components!.content_novelty, 1 / Math.sqrt(3));
    // The counts travel with the archive, so a resumed run pays as an uninterrupted one.
    const saved = task.archive.save();
    assert.deepEqual(Object.values(saved.contents ?? {}).sort(), [1, 1, 3]);
    const resumed = setup({ contentNoveltyWeight: 0.5 }).task;
    resumed.memory!.load(JSON.parse(JSON.stringify(saved)), "theories.json");
    assert.deepEqual(
      stepRewards(resumed, [sm, smTriplet], 2).map((r) => r.components!.content_novelty),
      stepRewards(task, [sm, smTriplet], 2).map((r) => r.components!.content_novelty),
    );
    assert.equal(stepRewards(resumed, [sm], 3)[0]!.components!.content_novelty, 1 / Math.sqrt(5));
    const { contents: _c, ...withoutContents } = saved;
    resumed.memory!.load(withoutContents, "theories.json");
    assert.equal(
      resumed.archive.timesContentSeen(Object.keys(saved.contents!)[0]!),
      0,
      "an archive from before the counts loads",
    );
    assert.throws(
      () => resumed.memory!.load({ ...saved, contents: { "(1,1)": -2 } }, "theories.json"),
      /theories\.json.*contents/,
    );
    assert.throws(() => theoryRlTask({ contentNoveltyWeight: -1 }), /contentNoveltyWeight must be ≥ 0/);
  });

  it("evaluation figures: distinct and novel in the samples, and over the run", () => {
    const { task, sm, smNu, anomalous } = setup();
    task.archive.addDemonstrations([task.validClass(sm)]);
    stepRewards(task, [smNu]);
    const m = task.evalMetrics!([sm, sm, anomalous], { phase: 3, step: 1 });
    assert.deepEqual(m, {
      distinct_valid: 1,
      novel_valid: 0,
      distinct_valid_cumulative: 2,
      novel_valid_cumulative: 1,
      chiral_cores_cumulative: 1,
    });
    assert.throws(() => theoryRlTask({ noveltyWeight: -1 }), /noveltyWeight must be ≥ 0/);
  });
});
