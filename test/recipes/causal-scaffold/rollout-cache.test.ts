import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { FileFormatError } from "../../../src/io/files.ts";
import {
  appendCriticRecord,
  appendProblemRecord,
  type CriticRecord,
  completedProblemIds,
  type ProblemRecord,
  type RolloutRecord,
  readCriticResults,
  readRolloutCache,
  scaffoldOf,
} from "../../../src/recipes/causal-scaffold/rollout-cache.ts";
import { tempDirs } from "../../helpers/tmp.ts";
import { SEED_ROLLOUTS, seedSkip } from "./seed-fixture.ts";

const dir = tempDirs("grpo-rollout-cache-")();
let fileCount = 0;
const freshPath = (name: string) => join(dir, `${++fileCount}-${name}`);

function rollout(id: number, extra: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    rollout_id: id,
    scaffold: { target_variable: "x", knowns: { a: 1 }, causal_graph: [], computation_plan: [] },
    answer: "1",
    is_correct: true,
    r_ans: 1,
    r_logic: 0.5,
    r_graph: 0,
    r_total: 0.625,
    ...extra,
  };
}

function problem(id: string, extra: Partial<ProblemRecord> = {}): ProblemRecord {
  return {
    problem_id: id,
    problem_text: `text of ${id}`,
    ground_truth: "1",
    rollouts: [
      rollout(1),
      rollout(2, { scaffold: null, answer: null, is_correct: false, r_ans: 0, r_logic: 0, r_total: 0 }),
    ],
    timestamp: "2026-01-01T00:00:00.000Z",
    ...extra,
  };
}

describe("rollout cache", () => {
  test("round trip; a later line wins but keeps the position of the first; failed rollouts make a problem incomplete", () => {
    const path = freshPath("gen.jsonl");
    appendProblemRecord(path, problem("p1"));
    appendProblemRecord(
      path,
      problem("p2", {
        mean: 0.3125,
        std: 0.3125,
        extraction: { triggered: true, reason: "std > 0.05", operations: [{ op: "add" }] },
      }),
    );
    appendProblemRecord(path, problem("p1", { ground_truth: "2" }));
    appendProblemRecord(path, problem("p3", { rollouts: [rollout(1), rollout(2)] }));
    const { problems, torn, lines } = readRolloutCache(path);
    assert.equal(torn, false);
    // --max-problems must not skip p1 just because a rerun appended it again
    assert.deepEqual([...problems.keys()], ["p1", "p2", "p3"]);
    assert.equal(lines.get("p1"), 3);
    assert.equal(problems.get("p1")!.ground_truth, "2");
    assert.deepEqual(problems.get("p2")!.extraction, {
      triggered: true,
      reason: "std > 0.05",
      operations: [{ op: "add" }],
    });
    assert.deepEqual(problems.get("p2")!.rollouts, problem("p2").rollouts);
    // p1 and p2 hold a failed rollout (scaffold null): not results, so not complete
    assert.deepEqual(completedProblemIds(path), new Set(["p3"]));
    appendProblemRecord(
      path,
      problem("p4", { rollouts: [rollout(1)], extraction: { triggered: true, reason: "σ", pending: true } }),
    );
    assert.equal(completedProblemIds(path).has("p4"), false, "its learning step is outstanding");
    assert.equal(completedProblemIds(path, { learn: false }).has("p4"), true, "complete for an evaluation");
    assert.equal(readFileSync(path, "utf8").split("\n").length, 6, "one line per record");
  });

  test("a missing file is an empty cache", () => {
    const path = freshPath("none.jsonl");
    assert.equal(readRolloutCache(path).problems.size, 0);
    assert.equal(completedProblemIds(path).size, 0);
  });

  test("a torn tail is reported, skipped, and repaired by the next append", () => {
    const path = freshPath("torn.jsonl");
    appendProblemRecord(path, problem("p1"));
    appendFileSync(path, '{"problem_id": "p2", "problem_te');
    const first = readRolloutCache(path);
    assert.equal(first.torn, true);
    assert.deepEqual([...first.problems.keys()], ["p1"]);
    appendProblemRecord(path, problem("p3"));
    const second = readRolloutCache(path);
    assert.equal(second.torn, false);
    assert.deepEqual([...second.problems.keys()], ["p1", "p3"]);
  });

  test("a failed rollout scores 0 and is wrong, whatever the file recorded (the seed writes 0.5)", () => {
    const path = freshPath("seed-null.jsonl");
    const seedLine = {
      problem_id: "aime_001",
      problem_text: "Find x.",
      ground_truth: 33,
      rollouts: [
        {
          rollout_id: 1,
          scaffold: null,
          answer: null,
          is_correct: false,
          r_ans: 0.0,
          r_logic: 0.5,
          r_graph: 0.5,
          r_total: 0.25,
        },
        {
          rollout_id: 2,
          scaffold: "{'target_variable': 'x', 'knowns': {}, 'causal_graph': [], 'computation_plan': []}",
          answer: "33",
          is_correct: true,
          r_ans: 1.0,
          r_logic: 0.75,
          r_graph: 0.8,
          r_total: 0.8875,
        },
      ],
      timestamp: "2025-11-08T12:07:17.979772",
    };
    writeFileSync(path, `${JSON.stringify(seedLine)}\n`);
    const rec = readRolloutCache(path).problems.get("aime_001")!;
    assert.equal(rec.ground_truth, "33");
    assert.deepEqual(
      [
        rec.rollouts[0]!.r_logic,
        rec.rollouts[0]!.r_graph,
        rec.rollouts[0]!.r_total,
        rec.rollouts[0]!.is_correct,
      ],
      [0, 0, 0, false],
    );
    assert.equal(rec.rollouts[1]!.r_total, 0.8875, "a rollout with a scaffold keeps its rewards");
    assert.equal(completedProblemIds(path).size, 0);
  });

  test("a bad line names the file, line and field", () => {
    const path = freshPath("bad.jsonl");
    const good = JSON.stringify(problem("p1"));
    const bad = { ...problem("p2"), rollouts: [{ ...rollout(1), r_total: "high" }] };
    writeFileSync(path, `${good}\n${JSON.stringify(bad)}\n`);
    assert.throws(
      () => readRolloutCache(path),
      (err: unknown) =>
        err instanceof FileFormatError &&
        err.file === path &&
        err.line === 2 &&
        err.field === "rollouts.0.r_total" &&
        err.message.includes(`${path}:2`),
    );
  });

  test("refuses to write a record it could not read back", () => {
    const path = freshPath("refuse.jsonl");
    assert.throws(() => appendProblemRecord(path, problem("p1", { mean: Number.NaN })), /mean/);
    assert.equal(readRolloutCache(path).problems.size, 0);
  });

  test("scaffoldOf parses objects and Python strings and reports null", () => {
    assert.equal(scaffoldOf(rollout(1)).ok, true);
    const py = rollout(2, {
      scaffold:
        "{'target_variable': 'x', 'knowns': {}, 'causal_graph': [], 'computation_plan': [], 'final_answer': None}",
    });
    assert.equal(scaffoldOf(py).ok, true);
    const none = scaffoldOf(rollout(3, { scaffold: null }));
    assert.equal(none.ok, false);
  });
});

describe("critic results", () => {
  const critic = (problemId: string, generator: string, extra: Partial<CriticRecord> = {}): CriticRecord => ({
    problem_id: problemId,
    generator_id: generator,
    source_rollouts: [1, 2, 3],
    fused_scaffold: { target_variable: "x", knowns: {}, causal_graph: [], computation_plan: [] },
    answer: 1,
    is_correct: true,
    r_ans: 1,
    r_logic: 1,
    r_graph: 0,
    r_fusion: 0.5,
    r_total: 0.65,
    timestamp: "2026-01-01T00:00:00.000Z",
    ...extra,
  });

  test("one record per problem and generator; the later one wins and keeps the first one's place", () => {
    const path = freshPath("critic.jsonl");
    appendCriticRecord(path, critic("p1", "generator_1"));
    appendCriticRecord(path, critic("p1", "generator_2"));
    appendCriticRecord(path, critic("p1", "generator_1", { r_total: 0.1 }));
    const records = readCriticResults(path);
    assert.deepEqual(
      records.map((r) => [r.problem_id, r.generator_id, r.r_total]),
      [
        ["p1", "generator_1", 0.1],
        ["p1", "generator_2", 0.65],
      ],
    );
  });

  test("written in the seed's layout (final_answer, nested rewards), our fields beside; read back the same", () => {
    const path = freshPath("critic-seed-write.jsonl");
    const rec = critic("p1", "generator_2", {
      problem_text: "What is 1?",
      ground_truth: "1",
      error: "a note",
    });
    appendCriticRecord(path, rec);
    const line = JSON.parse(readFileSync(path, "utf8").trim());
    assert.deepEqual(Object.keys(line).slice(0, 9), [
      "problem_id",
      "problem_text",
      "ground_truth",
      "generator_id",
      "fused_scaffold",
      "final_answer",
      "is_correct",
      "rewards",
      "timestamp",
    ]);
    assert.deepEqual(line.rewards, { r_ans: 1, r_logic: 1, r_graph: 0, r_fusion: 0.5, r_total: 0.65 });
    assert.equal(line.final_answer, 1);
    assert.equal("r_total" in line || "answer" in line, false, "no flat copies of the rewards");
    assert.deepEqual(line.source_rollouts, [1, 2, 3]);
    assert.deepEqual(readCriticResults(path)[0], rec);
  });

  test("seed-layout lines written by the original system are read (string scaffolds, failed fusions)", () => {
    const path = freshPath("critic-seed-read.jsonl");
    const seedLine = (generator: string, extra: Record<string, unknown> = {}) => ({
      problem_id: "aime2024_004",
      problem_text: "Let x be ...",
      ground_truth: "25",
      generator_id: generator,
      fused_scaffold:
        "{'target_variable': 'xy', 'knowns': {'x': 5}, 'causal_graph': [], 'computation_plan': []}",
      final_answer: "25",
      is_correct: true,
      rewards: { r_ans: 1.0, r_logic: 0.85, r_graph: 0.9, r_fusion: 0.75, r_total: 0.875 },
      timestamp: "2024-01-15T11:00:00",
      ...extra,
    });
    writeFileSync(
      path,
      `${[
        seedLine("generator_1"),
        seedLine("generator_2", {
          fused_scaffold: null,
          final_answer: null,
          is_correct: false,
          rewards: { r_ans: 0, r_logic: 0.5, r_graph: 0.5, r_fusion: 0.5, r_total: 0.3 },
        }),
      ]
        .map((l) => JSON.stringify(l))
        .join("\n")}\n`,
    );
    const [a, b] = readCriticResults(path);
    assert.equal(a!.answer, "25");
    assert.equal(a!.r_total, 0.875);
    assert.equal(a!.r_fusion, 0.75);
    assert.equal(a!.problem_text, "Let x be ...");
    assert.equal(typeof a!.fused_scaffold, "string");
    assert.deepEqual(
      [b!.fused_scaffold, b!.r_logic, b!.r_fusion, b!.r_total],
      [null, 0, 0, 0],
      "failed: all 0",
    );
    const bad = freshPath("critic-seed-bad.jsonl");
    writeFileSync(bad, `${JSON.stringify(seedLine("generator_1", { rewards: { r_ans: 1 } }))}\n`);
    assert.throws(
      () => readCriticResults(bad),
      (err: unknown) => err instanceof FileFormatError && err.line === 1 && err.field === "rewards.r_logic",
    );
  });

  test("numeric generator ids are read as generator_N; bad lines name the field", () => {
    const path = freshPath("critic-num.jsonl");
    writeFileSync(path, `${JSON.stringify({ ...critic("p1", "x"), generator_id: 3 })}\n`);
    assert.equal(readCriticResults(path)[0]!.generator_id, "generator_3");
    appendFileSync(path, `${JSON.stringify({ ...critic("p2", "generator_1"), r_fusion: undefined })}\n`);
    assert.throws(
      () => readCriticResults(path),
      (err: unknown) => err instanceof FileFormatError && err.line === 2 && err.field === "r_fusion",
    );
  });
});

describe("seed fixture", () => {
  test("every line reads; 30 distinct problems with 3 rollouts; every scaffold string parses", {
    skip: seedSkip,
  }, () => {
    const lines = readFileSync(SEED_ROLLOUTS, "utf8").trim().split("\n");
    assert.equal(lines.length, 33);
    const { problems, torn } = readRolloutCache(SEED_ROLLOUTS);
    assert.equal(torn, false);
    assert.equal(problems.size, 30);
    // aime2024_001 appears more than once; the record kept is the last line's.
    const lastFor001 = lines
      .map((l) => JSON.parse(l))
      .filter((r) => r.problem_id === "aime2024_001")
      .at(-1);
    assert.deepEqual(problems.get("aime2024_001")!.rollouts[0]!.scaffold, lastFor001.rollouts[0].scaffold);
    let strings = 0;
    for (const p of problems.values()) {
      assert.equal(p.rollouts.length, 3, p.problem_id);
      for (const r of p.rollouts) {
        if (r.scaffold === null) continue;
        assert.equal(typeof r.scaffold, "string");
        strings++;
        const parsed = scaffoldOf(r);
        assert.ok(parsed.ok, `${p.problem_id}/${r.rollout_id}: ${parsed.ok ? "" : parsed.error}`);
        assert.ok(parsed.scaffold.causal_graph.length > 0);
      }
    }
    assert.ok(strings > 0);
    // Superseded lines hold scaffolds too; they must parse just as well.
    for (const line of lines) {
      for (const r of JSON.parse(line).rollouts as RolloutRecord[]) {
        if (r.scaffold !== null) assert.ok(scaffoldOf(r).ok);
      }
    }
  });
});
