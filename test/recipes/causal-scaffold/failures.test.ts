/**
 * Failures of a real endpoint through the recipe: what is recorded, what a rerun redoes (and
 * only that), when a run stops, and what a group with a failure may teach (nothing).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { describe, test } from "node:test";
import type { Problem } from "../../../src/data/datasets.ts";
import { runCritic } from "../../../src/recipes/causal-scaffold/critic.ts";
import { RunGuard } from "../../../src/recipes/causal-scaffold/failures.ts";
import {
  cacheDir,
  criticLearningPath,
  criticResultsPath,
  generatorCachePath,
} from "../../../src/recipes/causal-scaffold/paths.ts";
import { PromptSet } from "../../../src/recipes/causal-scaffold/prompts.ts";
import {
  appendProblemRecord,
  readCriticLearning,
  readCriticResults,
  readRolloutCache,
} from "../../../src/recipes/causal-scaffold/rollout-cache.ts";
import { type Responder, type ScriptedReply, startScriptedServer } from "../../helpers/scripted-server.ts";
import { tempDirs } from "../../helpers/tmp.ts";
import {
  agentOfModel,
  exampleProblems,
  JUDGE_REPLY,
  makeEngine,
  makeWorkdir,
  problemIn,
  scaffoldFor,
  scaffoldReply,
  type Task,
  taskOf,
} from "./harness.ts";
import { SEED_ROLLOUTS, seedSkip } from "./seed-fixture.ts";

const tmp = tempDirs("causal-scaffold-failures-");

/** Lessons different enough that none is merged into another as a near-duplicate. */
const LESSONS = [
  "Write every causal rule as an explicit formula that can be evaluated",
  "List each given quantity as a known before drawing any edge",
  "Check that the target variable is the effect of the final plan step",
  "Prefer one edge per intermediate quantity over compound rules",
  "Keep units consistent across all knowns",
  "Name intermediate results after what they measure",
];

/**
 * A scripted solver that answers every task well unless `override` says otherwise, and counts
 * requests per task and problem. Generator scaffolds alternate right and wrong per problem and
 * agent, so every complete group disagrees and teaches.
 */
function solver(
  problems: Problem[],
  override: (task: Task, p: Problem | undefined, agent: string) => ScriptedReply | undefined,
) {
  const counts = new Map<string, number>();
  let lessons = -1;
  const calls: { task: Task; problem?: string; agent: string }[] = [];
  const responder: Responder = ({ messages, model }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    const agent = agentOfModel(model);
    const p = problems.find((x) => prompt.includes(x.text));
    calls.push({ task, agent, ...(p ? { problem: p.id } : {}) });
    const forced = override(task, p, agent);
    if (forced) return forced;
    const key = `${agent}|${task}|${p?.id}`;
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    switch (task) {
      case "scaffold":
      case "fusion":
        return { content: scaffoldReply(problemIn(prompt, problems), n % 2 === 0) };
      case "judge":
        return { content: JUDGE_REPLY };
      case "fusion_judge":
        return { content: '{"score": 0.9}' };
      case "summarise":
        return { content: "It took the given value to the target." };
      case "extract":
        lessons++;
        return {
          content: JSON.stringify([{ operation: "add", content: LESSONS[lessons % LESSONS.length]! }]),
        };
      default:
        return { status: 400, content: `unexpected ${task}` };
    }
  };
  const count = (task: Task, filter: { problem?: string; agent?: string } = {}) =>
    calls.filter(
      (c) =>
        c.task === task &&
        (filter.problem === undefined || c.problem === filter.problem) &&
        (filter.agent === undefined || c.agent === filter.agent),
    ).length;
  return { responder, calls, count };
}

function quietGuard(maxFailures = 5) {
  const lines: string[] = [];
  return { guard: new RunGuard({ maxFailures, log: (l) => lines.push(l) }), lines };
}

describe("generator failures", () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 3);

  test("a judge that always fails its schema: rollouts fail (kind schema), the group teaches nothing; the rerun scores only", async () => {
    let judgeBroken = true;
    const s = solver(problems, (task) =>
      task === "judge" && judgeBroken ? { content: '{"overall": "excellent"}' } : undefined,
    );
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard, lines } = quietGuard(100);
      const run1 = makeEngine(server.baseURL, wd.dir, { guard, maxRetries: 1 });
      const a = await run1.engine.runGenerator(1, { problems, rollouts: 2, experiences: run1.experiences });
      assert.deepEqual([a.completed, a.failed, a.skipped], [0, 3, 0]);
      assert.deepEqual(a.failures, { schema: 6 });
      assert.equal(a.extractions, 0);
      assert.equal(
        s.count("summarise") + s.count("extract"),
        0,
        "a group with a failed judge teaches nothing",
      );
      assert.equal(
        lines.filter((l) => l.includes("first failure")).length,
        1,
        "the first failure is printed, once",
      );
      assert.match(
        lines[0]!,
        /^generator_1: first failure of this run, problem toy-math_00\d, rollout \d \(scoring\): .*logic judge/,
      );
      assert.equal(run1.experiences.library("generator_1").entries().length, 0);

      judgeBroken = false;
      const scaffoldsBefore = s.count("scaffold");
      const run2 = makeEngine(server.baseURL, wd.dir);
      const b = await run2.engine.runGenerator(1, { problems, rollouts: 2, experiences: run2.experiences });
      assert.deepEqual([b.completed, b.failed, b.alreadyComplete], [3, 0, 0]);
      assert.equal(
        s.count("scaffold"),
        scaffoldsBefore,
        "the kept scaffolds are scored, not asked for again",
      );
      assert.equal(b.extractions, 3, "complete groups now teach");
      const { problems: recs } = readRolloutCache(generatorCachePath(cacheDir(wd.dir), 1));
      for (const rec of recs.values())
        assert.ok(rec.rollouts.every((r) => r.r_logic === 0.8 && r.scaffold !== null));
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a rerun retries exactly the failed rollout and nothing else", async () => {
    let broken = true;
    let seen = 0;
    const s = solver(problems, (task, p) => {
      // problem 2's second scaffold request (its rollout 2, requests run one at a time) fails
      if (task === "scaffold" && p?.id === problems[1]!.id && broken && seen++ >= 1)
        return { status: 503, content: "overloaded" };
      return undefined;
    });
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const run1 = makeEngine(server.baseURL, wd.dir, { concurrency: 1, problemsInFlight: 1, maxRetries: 1 });
      const a = await run1.engine.runGenerator(1, { problems, rollouts: 2, experiences: run1.experiences });
      assert.deepEqual([a.completed, a.failed], [2, 1]);
      assert.equal(a.failedRollouts, 1);
      const path = generatorCachePath(cacheDir(wd.dir), 1);
      const before = readRolloutCache(path).problems.get(problems[1]!.id)!;
      assert.deepEqual(
        before.rollouts.map((r) => r.scaffold === null),
        [false, true],
      );
      assert.equal(before.rollouts[1]!.error_kind, "server");
      assert.equal(before.extraction?.triggered, false, "an incomplete group does not learn");
      const lib1 = run1.experiences.library("generator_1").entries().length;

      broken = false;
      const callsBefore = s.calls.length;
      const run2 = makeEngine(server.baseURL, wd.dir);
      const b = await run2.engine.runGenerator(1, { problems, rollouts: 2, experiences: run2.experiences });
      assert.deepEqual([b.completed, b.alreadyComplete, b.failed], [1, 2, 0]);
      const redone = s.calls.slice(callsBefore);
      assert.deepEqual(
        redone.filter((c) => c.task === "scaffold").map((c) => c.problem),
        [problems[1]!.id],
        "one scaffold request: the failed rollout's",
      );
      assert.ok(
        redone.every((c) => c.problem === problems[1]!.id || c.task === "summarise" || c.task === "extract"),
      );
      const after = readRolloutCache(path).problems.get(problems[1]!.id)!;
      assert.deepEqual(after.rollouts[0], before.rollouts[0], "the rollout that succeeded is kept as it was");
      assert.ok(after.rollouts[1]!.scaffold !== null);
      assert.equal(after.extraction?.triggered, true);
      assert.equal(
        run2.experiences.library("generator_1").entries().length,
        lib1 + 1,
        "the completed group taught",
      );
      // the problem kept its place in the file order
      assert.deepEqual(
        [...readRolloutCache(path).problems.keys()],
        problems.map((p) => p.id),
      );
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("exhausted 429s: after --max-failures in a row the run stops; the rest is skipped, not failed", async () => {
    const many = exampleProblems(["toy-math"]);
    const s = solver(many, (task) =>
      task === "scaffold" ? { status: 429, content: "rate limited" } : undefined,
    );
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard, lines } = quietGuard(3);
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir, {
        guard,
        concurrency: 1,
        problemsInFlight: 1,
        maxRetries: 1,
      });
      const r = await engine.runGenerator(1, { problems: many, rollouts: 2, experiences });
      assert.equal(guard.stopped, true);
      assert.equal(guard.stopReason!.fatal, false);
      assert.match(
        guard.stopReason!.message,
        /^generator_1: 3 failures in a row \(last: .*rate_limit error after 2 attempts.*\); stopping/,
      );
      assert.deepEqual(r.failures, { rate_limit: 3 });
      assert.equal(lines.length, 1, "only the first failure is printed as it happens");
      assert.deepEqual([r.completed, r.failed, r.skipped], [0, 2, many.length - 2]);
      assert.equal(r.completed + r.failed + r.skipped + r.alreadyComplete, r.requested);
      assert.ok(
        s.count("scaffold") <= 3 * 2 + 1,
        `${s.count("scaffold")} scaffold requests: the run stopped early`,
      );
      // the interrupted rollout is not a failure of the endpoint
      const second = readRolloutCache(generatorCachePath(cacheDir(wd.dir), 1)).problems.get(many[1]!.id)!;
      assert.deepEqual(
        second.rollouts.map((x) => x.error_kind),
        ["rate_limit", "stopped"],
      );
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a fatal 401 stops the run at once with the endpoint's one line", async () => {
    const server = await startScriptedServer(() => ({ status: 401, content: "invalid key test-key" }));
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard, lines } = quietGuard();
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir, { guard, concurrency: 2 });
      const many = exampleProblems(["toy-math"]);
      const r = await engine.runGenerator(2, { problems: many, rollouts: 3, experiences });
      assert.equal(guard.stopReason!.fatal, true);
      assert.match(
        guard.stopReason!.message,
        /^generator_2: authentication failed \(HTTP 401: .*\) at http:\/\/127\.0\.0\.1:\d+\/v1 \(model model-g2\)\. Fix: check api_key for generator_2 in /,
      );
      assert.equal(guard.stopReason!.message.includes("test-key"), false, "the key is never printed");
      assert.ok(
        server.requests.length <= 2 * 3,
        `${server.requests.length} requests: no more after the first 401s`,
      );
      assert.equal(r.completed, 0);
      assert.ok(r.skipped >= many.length - 2);
      assert.equal(
        lines.filter((l) => l.includes("first failure")).length,
        0,
        "a fatal error is the one line",
      );
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a failed learning step is recorded and redone alone; a pending one (crash) too", async () => {
    let extractBroken = true;
    const s = solver(problems, (task) =>
      task === "extract" && extractBroken ? { content: "no list here" } : undefined,
    );
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard } = quietGuard(100);
      const run1 = makeEngine(server.baseURL, wd.dir, { guard, maxRetries: 1 });
      const a = await run1.engine.runGenerator(1, {
        problems: problems.slice(0, 1),
        rollouts: 2,
        experiences: run1.experiences,
      });
      assert.deepEqual(
        [a.completed, a.failed, a.extractions],
        [0, 1, 0],
        "a failed extraction is no library update",
      );
      assert.deepEqual(a.failures, { schema: 1 });
      const path = generatorCachePath(cacheDir(wd.dir), 1);
      const rec = readRolloutCache(path).problems.get(problems[0]!.id)!;
      assert.equal(rec.extraction?.failed, true);
      assert.match(rec.extraction!.error!, /extraction failed: .*holds no JSON list/);

      // a crash during another problem's learning step leaves its group pending
      const pending = {
        ...rec,
        problem_id: problems[2]!.id,
        problem_text: problems[2]!.text,
        ground_truth: problems[2]!.answer,
      };
      appendProblemRecord(path, { ...pending, extraction: { triggered: true, reason: "σ", pending: true } });

      extractBroken = false;
      const before = s.calls.length;
      const run2 = makeEngine(server.baseURL, wd.dir);
      const b = await run2.engine.runGenerator(1, {
        problems: [problems[0]!, problems[2]!],
        rollouts: 2,
        experiences: run2.experiences,
      });
      assert.deepEqual([b.completed, b.failed, b.extractions], [2, 0, 2]);
      const redone = s.calls.slice(before).map((c) => c.task);
      assert.deepEqual([...new Set(redone)].sort(), ["extract", "summarise"], "only the learning steps");
      assert.equal(run2.experiences.library("generator_1").entries().length, 2);
      const lines = readFileSync(path, "utf8").trim().split("\n").length;
      // run 1: pending and failed lines; the crashed one's pending line; a final line for each
      assert.equal(lines, 5);
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a summary that fails fails the learning step: the learner never sees a partial group", async () => {
    const s = solver(problems, (task) =>
      task === "summarise" ? { status: 500, content: "down" } : undefined,
    );
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard } = quietGuard(100);
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir, { guard, maxRetries: 0 });
      const r = await engine.runGenerator(1, { problems: problems.slice(0, 1), rollouts: 2, experiences });
      assert.deepEqual([r.completed, r.failed], [0, 1]);
      assert.deepEqual(r.failures, { server: 1 });
      assert.equal(s.count("extract"), 0);
      const rec = readRolloutCache(generatorCachePath(cacheDir(wd.dir), 1)).problems.get(problems[0]!.id)!;
      assert.match(rec.extraction!.error!, /^summary failed: /);
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a cached problem whose text changed under the same id is an error, not skipped as done", async () => {
    const s = solver(problems, () => undefined);
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const run1 = makeEngine(server.baseURL, wd.dir);
      await run1.engine.runGenerator(1, {
        problems: problems.slice(0, 1),
        rollouts: 2,
        experiences: run1.experiences,
      });
      const changed = [{ ...problems[0]!, text: "A different problem that reuses the id." }];
      await assert.rejects(
        makeEngine(server.baseURL, wd.dir).engine.runGenerator(1, {
          problems: changed,
          rollouts: 2,
          experiences: run1.experiences,
        }),
        /generator_1: problem toy-math_001 in .*generator_1_rollouts\.jsonl:\d+ has another text than in the data set/,
      );
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("reasoning replies: a scaffold inside <think> is not the scaffold; the answer after it is", async () => {
    const s = solver(problems, (task, p) => {
      if (task !== "scaffold" || !p) return undefined;
      const wrong = JSON.stringify(scaffoldFor(-1));
      return {
        content: `<think>First try: ${wrong}. No, redo it.</think>\n${scaffoldReply(p, true)}`,
        usage: { prompt_tokens: 100, completion_tokens: 900 },
      };
    });
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { engine, experiences, clients } = makeEngine(server.baseURL, wd.dir);
      const r = await engine.runGenerator(1, { problems: problems.slice(0, 1), rollouts: 2, experiences });
      assert.equal(r.completed, 1);
      assert.ok(r.records.at(-1)!.rollouts.every((x) => x.is_correct));
      assert.ok(clients.generator_1.stats().completionTokens >= 2 * 900, "thinking tokens are counted");
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});

describe("critic failures", () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 2);

  test("a generator record with failed rollouts is waited for; the group teaches only once all fusions exist", async () => {
    let g2Broken = true;
    const s = solver(problems, (task, p, agent) =>
      task === "scaffold" && agent === "generator_2" && p?.id === problems[0]!.id && g2Broken
        ? { status: 500, content: "down" }
        : undefined,
    );
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard } = quietGuard(100);
      const run1 = makeEngine(server.baseURL, wd.dir, { guard, maxRetries: 0 });
      await run1.engine.runGenerators({ problems, rollouts: 2, experiences: run1.experiences });
      const c1 = await run1.engine.runCritic({ experiences: run1.experiences });
      assert.deepEqual([c1.completed, c1.skipped, c1.failed], [1, 1, 0]);
      assert.equal(c1.waitingForGenerators, 1);
      assert.ok(
        c1.warnings.some((w) =>
          /generator_2's record of toy-math_001 is incomplete \(2 failed rollouts\)/.test(w),
        ),
      );
      assert.equal(
        s.count("extract", { agent: "critic", problem: problems[0]!.id }),
        0,
        "no learning from 2 of 3",
      );
      assert.equal(s.count("fusion", { problem: problems[0]!.id }), 2);

      g2Broken = false;
      const run2 = makeEngine(server.baseURL, wd.dir);
      await run2.engine.runGenerator(2, { problems, rollouts: 2, experiences: run2.experiences });
      const before = s.count("fusion");
      const c2 = await run2.engine.runCritic({ experiences: run2.experiences });
      assert.deepEqual([c2.completed, c2.alreadyComplete, c2.skipped], [1, 1, 0]);
      assert.equal(s.count("fusion") - before, 1, "only generator 2's fusion of problem 1");
      assert.equal(
        s.count("extract", { agent: "critic", problem: problems[0]!.id }),
        1,
        "the full group teaches",
      );
      const learning = readCriticLearning(criticLearningPath(cacheDir(wd.dir)));
      assert.equal(learning.get(problems[0]!.id)!.status, "done");
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a fusion judge that always fails: the fusion fails and keeps its scaffold; the rerun only judges", async () => {
    let judgeBroken = true;
    const s = solver(problems, (task) =>
      task === "fusion_judge" && judgeBroken ? { content: "a fine fusion, I would say" } : undefined,
    );
    const server = await startScriptedServer(s.responder);
    const wd = makeWorkdir(server.baseURL);
    try {
      const { guard } = quietGuard(100);
      const run1 = makeEngine(server.baseURL, wd.dir, { guard, maxRetries: 1 });
      await run1.engine.runGenerators({
        problems: problems.slice(0, 1),
        rollouts: 2,
        experiences: run1.experiences,
      });
      const c1 = await run1.engine.runCritic({ experiences: run1.experiences });
      assert.deepEqual([c1.completed, c1.failed, c1.failedFusions], [0, 1, 3]);
      assert.deepEqual(c1.failures, { schema: 3 });
      const path = criticResultsPath(cacheDir(wd.dir));
      for (const r of readCriticResults(path)) {
        assert.equal(r.fused_scaffold, null);
        assert.ok(r.unscored_fusion);
        assert.equal(r.r_total, 0);
        assert.match(r.error!, /scoring failed: fusion judge failed/);
      }
      judgeBroken = false;
      const fusions = s.count("fusion");
      const run2 = makeEngine(server.baseURL, wd.dir);
      const c2 = await run2.engine.runCritic({ experiences: run2.experiences });
      assert.deepEqual([c2.completed, c2.failed, c2.fused], [1, 0, 3]);
      assert.equal(s.count("fusion"), fusions, "no fusion asked for again");
      assert.ok(readCriticResults(path).every((r) => r.r_fusion === 0.9));
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("seed fixture: the critic reads the original cache, keeps the repeated problem first and writes the seed layout", {
    skip: seedSkip,
  }, async () => {
    // the fixture is linked, not copied, into a work directory of its own
    const dir = tmp();
    const cache = cacheDir(dir);
    mkdirSync(cache, { recursive: true });
    symlinkSync(SEED_ROLLOUTS, generatorCachePath(cache, 1));
    const seed = readRolloutCache(SEED_ROLLOUTS).problems;
    const seedProblems: Problem[] = [...seed.values()].map((r) => ({
      id: r.problem_id,
      text: r.problem_text,
      answer: r.ground_truth,
      source: "seed",
    }));
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "fusion") return { content: scaffoldReply(problemIn(prompt, seedProblems), true) };
      if (task === "judge") return { content: JUDGE_REPLY };
      if (task === "fusion_judge") return { content: '{"score": 0.5}' };
      return { status: 400, content: `unexpected ${task}` };
    });
    try {
      const { engine, experiences } = makeEngine(server.baseURL, dir);
      const r = await runCritic({
        client: engine.client("critic"),
        workdir: dir,
        experiences,
        prompts: new PromptSet(),
        temperature: 0,
        generators: [1],
        maxProblems: 2,
      });
      assert.deepEqual([r.completed, r.failed, r.skipped], [2, 0, 0]);
      const lines = readFileSync(criticResultsPath(cache), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      // aime2024_001 appears on lines 1 to 3 and again last: it keeps its first place
      assert.deepEqual(
        lines.map((l) => l.problem_id),
        ["aime2024_001", "aime2024_002"],
      );
      for (const l of lines) {
        assert.equal(l.generator_id, "generator_1");
        assert.equal(l.problem_text, seed.get(l.problem_id)!.problem_text);
        assert.equal(l.ground_truth, seed.get(l.problem_id)!.ground_truth);
        assert.deepEqual(Object.keys(l.rewards).sort(), [
          "r_ans",
          "r_fusion",
          "r_graph",
          "r_logic",
          "r_total",
        ]);
        assert.equal(l.final_answer, l.ground_truth);
        assert.equal(l.is_correct, true);
        assert.equal(l.rewards.r_fusion, 0.5);
      }
      // the fusion was built from the last line's rollouts (line 33), all three of them
      assert.deepEqual(lines[0].source_rollouts, [1, 2, 3]);
      assert.equal(existsSync(generatorCachePath(cache, 1)), true);
    } finally {
      await server.close();
    }
  });

  test("a seed-layout critic file lets the critic start, and only the failed fusion is redone", async () => {
    const dir = tmp();
    const cache = cacheDir(dir);
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "fusion") return { content: scaffoldReply(problemIn(prompt, problems), true) };
      if (task === "judge") return { content: JUDGE_REPLY };
      if (task === "fusion_judge") return { content: '{"score": 0.7}' };
      return { content: "[]" };
    });
    try {
      const p = problems[0]!;
      for (const g of [1, 2, 3] as const) {
        appendProblemRecord(generatorCachePath(cache, g), {
          problem_id: p.id,
          problem_text: p.text,
          ground_truth: p.answer,
          rollouts: [1, 2].map((i) => ({
            rollout_id: i,
            scaffold: JSON.stringify(scaffoldFor(Number(p.answer))).replace(/"/g, "'"),
            answer: p.answer,
            is_correct: true,
            r_ans: 1,
            r_logic: 0.75,
            r_graph: 0.8,
            r_total: 0.8875,
          })),
          timestamp: "2024-01-15T10:30:00",
        });
      }
      // the seed's own critic lines: generators 1 and 2 fused, generator 3's fusion failed
      const seedLine = (g: number, ok: boolean) => ({
        problem_id: p.id,
        problem_text: p.text,
        ground_truth: p.answer,
        generator_id: `generator_${g}`,
        fused_scaffold: ok
          ? "{'target_variable': 'result', 'knowns': {}, 'causal_graph': [], 'computation_plan': []}"
          : null,
        final_answer: ok ? p.answer : null,
        is_correct: ok,
        rewards: {
          r_ans: ok ? 1 : 0,
          r_logic: 0.85,
          r_graph: 0.9,
          r_fusion: 0.75,
          r_total: ok ? 0.875 : 0.3,
        },
        timestamp: "2024-01-15T11:00:00",
      });
      writeFileSync(
        criticResultsPath(cache),
        `${[seedLine(1, true), seedLine(2, true), seedLine(3, false)].map((l) => JSON.stringify(l)).join("\n")}\n`,
      );
      const { engine, experiences } = makeEngine(server.baseURL, dir);
      const r = await engine.runCritic({ experiences });
      assert.deepEqual([r.completed, r.fused, r.failed], [1, 1, 0]);
      assert.equal(
        server.requests.filter((q) => String(q.body.messages[0].content).startsWith("TASK: SCAFFOLD FUSION"))
          .length,
        1,
      );
      const results = readCriticResults(criticResultsPath(cache));
      assert.deepEqual(
        results.map((x) => [x.generator_id, x.r_total]),
        [
          ["generator_1", 0.875],
          ["generator_2", 0.875],
          ["generator_3", results[2]!.r_total],
        ],
      );
      assert.equal(results[2]!.r_fusion, 0.7);
      const written = JSON.parse(readFileSync(criticResultsPath(cache), "utf8").trim().split("\n").at(-1)!);
      assert.equal(written.generator_id, "generator_3");
      assert.equal(written.rewards.r_fusion, 0.7);
      assert.equal(written.final_answer, p.answer);
    } finally {
      await server.close();
    }
  });
});
