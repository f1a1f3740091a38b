import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_LESSON_LIMITS } from "../../src/training-free/experience-library.ts";
import { DEFAULT_LEARNER_PROMPTS, parseLessons } from "../../src/training-free/learner-prompts.ts";

const brief = {
  agentObjective: "Solve sums.",
  learningObjective: "Fewer slips.",
  groundTruth: true,
  limits: DEFAULT_LESSON_LIMITS,
};
const task = { id: "t1", text: "What is 2 plus 2?", answer: "4" };
const attempt = { number: 1, output: "5", trajectory: "reply: 5", score: 0, correct: false };

describe("learner prompts", () => {
  test("the lessons of a contrast reply: numbered lines of the last block; no block throws", () => {
    assert.deepEqual(parseLessons("analysis…\n<lessons>\n1. A: b.\n2) C: d.\n- E: f.\n</lessons>"), [
      "A: b.",
      "C: d.",
      "E: f.",
    ]);
    assert.deepEqual(parseLessons("<LESSONS>\n(none)\n</LESSONS>"), []);
    assert.deepEqual(parseLessons("<lessons>1. old</lessons> then <lessons>1. new</lessons>"), ["new"]);
    assert.throws(() => parseLessons("1. A lesson without the block"), /no <lessons>/);
  });

  test("without ground truth the learner sees neither the expected answer nor the scores", () => {
    const withGt = DEFAULT_LEARNER_PROMPTS.summarise({ ...brief, task, attempt });
    const withoutGt = DEFAULT_LEARNER_PROMPTS.summarise({ ...brief, groundTruth: false, task, attempt });
    assert.equal(withGt[0]!.role, "system");
    assert.match(withGt[0]!.content, /What the agent does: Solve sums\./);
    assert.match(withGt[1]!.content, /Expected answer: 4/);
    assert.match(withGt[1]!.content, /score 0\.000, wrong/);
    assert.doesNotMatch(withoutGt[1]!.content, /Expected answer|score|wrong/);
    const contrast = DEFAULT_LEARNER_PROMPTS.contrast({
      ...brief,
      groundTruth: false,
      task,
      attempts: [attempt],
      summaries: ["s"],
      lessonsPerTask: 2,
    });
    assert.doesNotMatch(contrast[1]!.content, /Expected answer|score/);
    assert.match(contrast[0]!.content, /at most\n2 lessons/);
  });

  test("the limits of the library are what the prompts ask for", () => {
    const m = DEFAULT_LEARNER_PROMPTS.propose({
      ...brief,
      limits: { maxWords: 12, maxChars: 90 },
      library: "",
      lessons: ["A: b."],
    });
    assert.match(m[0]!.content, /at most 12 words and 90 characters/);
    assert.match(m[1]!.content, /Library:\n\(empty\)/);
  });
});
