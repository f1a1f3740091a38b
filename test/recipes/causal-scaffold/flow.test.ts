import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { Problem } from "../../../src/data/datasets.ts";
import { runCritic } from "../../../src/recipes/causal-scaffold/critic.ts";
import { libraryIdentity, libraryPath } from "../../../src/recipes/causal-scaffold/libraries.ts";
import {
  cacheDir,
  criticResultsPath,
  generatorCachePath,
} from "../../../src/recipes/causal-scaffold/paths.ts";
import { PromptSet } from "../../../src/recipes/causal-scaffold/prompts.ts";
import { readCriticResults, readRolloutCache } from "../../../src/recipes/causal-scaffold/rollout-cache.ts";
import { TrainingFreeGRPOTrainer } from "../../../src/recipes/causal-scaffold/trainer.ts";
import { ExperienceLibrary } from "../../../src/training-free/experience-library.ts";
import {
  type ScriptedReply,
  type ScriptedServer,
  startScriptedServer,
} from "../../helpers/scripted-server.ts";
import {
  agentOfModel,
  exampleProblems,
  JUDGE_REPLY,
  makeEngine,
  makeWorkdir,
  problemIn,
  scaffoldReply,
  taskOf,
} from "./harness.ts";

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

const GEN_LESSONS = [
  "Write every causal rule as an explicit formula that can be evaluated",
  "List each given quantity as a known before drawing any edge",
  "Check that the target variable is the effect of the final plan step",
  "Prefer one edge per intermediate quantity over compound rules",
];

/**
 * The scripted LLM of the happy-path flow. Per (agent, problem) the scaffold replies run
 * correct, wrong, correct, …, so every generator group mixes answers; the critic's third fusion
 * of a problem is wrong, so the critic's group mixes too.
 */
function flowResponder(problems: Problem[]) {
  const counters = new Map<string, number>();
  const bump = (key: string) => {
    const n = counters.get(key) ?? 0;
    counters.set(key, n + 1);
    return n;
  };
  return ({ messages, model }: { messages: { content: string }[]; model: string }): ScriptedReply => {
    const prompt = messages[0]!.content;
    const agent = agentOfModel(model);
    switch (taskOf(prompt)) {
      case "scaffold": {
        const p = problemIn(prompt, problems);
        return { content: scaffoldReply(p, bump(`${agent}|${p.id}|scaffold`) % 3 !== 1) };
      }
      case "judge":
        return { content: JUDGE_REPLY };
      case "fusion": {
        const p = problemIn(prompt, problems);
        return { content: scaffoldReply(p, bump(`${p.id}|fusion`) % 3 !== 2) };
      }
      case "fusion_judge":
        return { content: '{"score": 0.9, "comment": "kept the good edges"}' };
      case "summarise":
        return { content: "Took the given value straight to the target." };
      case "extract": {
        const n = bump(`${agent}|extract`);
        const lesson =
          agent === "critic"
            ? `Keep the fused rule of the majority scaffold ${"abcdefgh"[n % 8]}`
            : GEN_LESSONS[n % GEN_LESSONS.length]!;
        return { content: JSON.stringify([{ operation: "add", content: lesson, category: "structure" }]) };
      }
      default:
        return { status: 400, content: "unexpected task" };
    }
  };
}

describe("generator → critic → libraries on the example data", () => {
  let server: ScriptedServer;
  const problems = exampleProblems(["toy-math"]);
  const wd = makeWorkdir("http://unused");

  before(async () => {
    server = await startScriptedServer(flowResponder(problems));
  });
  after(async () => {
    await server.close();
    wd.cleanup();
  });

  test("three generators at once, then the critic; every file is complete and consistent", async () => {
    const { engine, experiences, clients } = makeEngine(server.baseURL, wd.dir, { concurrency: 6 });
    const gens = await engine.runGenerators({ problems, rollouts: 3, experiences });
    assert.equal(gens.length, 3);
    for (const g of gens) {
      assert.equal(g.completed, problems.length);
      assert.equal(g.failedRollouts, 0);
      // every group is 2 correct + 1 wrong, so σ > τ and each problem teaches the library
      assert.equal(g.extractions, problems.length);
    }
    const w = { 1: [0.5, 0.25, 0.25], 2: [0.6, 0.2, 0.2], 3: [0.7, 0.15, 0.15] } as const;
    for (const id of [1, 2, 3] as const) {
      const path = generatorCachePath(cacheDir(wd.dir), id);
      const lines = readFileSync(path, "utf8").trim().split("\n");
      // a group that teaches is written before its learning step (pending) and after it
      assert.equal(lines.length, 2 * problems.length, "two complete lines per problem that taught");
      for (const p of problems) {
        const own = lines.map((l) => JSON.parse(l)).filter((r) => r.problem_id === p.id);
        assert.deepEqual(
          own.map((r) => r.extraction.pending === true),
          [true, false],
        );
      }
      const { problems: recs } = readRolloutCache(path);
      assert.deepEqual([...recs.keys()].sort(), problems.map((p) => p.id).sort());
      const [wa, wl, wg] = w[id];
      const correctTotal = wa * 1 + wl * 0.8 + wg * 1;
      const wrongTotal = wl * 0.8 + wg * 1;
      for (const rec of recs.values()) {
        assert.equal(rec.rollouts.length, 3);
        assert.deepEqual(rec.rollouts.map((r) => r.rollout_id).sort(), [1, 2, 3]);
        assert.equal(rec.rollouts.filter((r) => r.is_correct).length, 2);
        for (const r of rec.rollouts) {
          assert.equal(r.r_graph, 1);
          assert.equal(r.r_logic, 0.8);
          close(r.r_total, r.is_correct ? correctTotal : wrongTotal);
        }
        const mean = (2 * correctTotal + wrongTotal) / 3;
        const std = Math.sqrt((2 * (correctTotal - mean) ** 2 + (wrongTotal - mean) ** 2) / 3);
        close(rec.mean!, mean);
        close(rec.std!, std);
        assert.equal(rec.extraction?.triggered, true);
      }
      const lib = ExperienceLibrary.load(
        libraryPath(wd.dir, `generator_${id}`),
        libraryIdentity(`generator_${id}`),
      );
      // four distinct lessons, the rest merged as exact repeats
      assert.deepEqual(
        lib.entries().map((e) => e.id),
        [`G${id}-001`, `G${id}-002`, `G${id}-003`, `G${id}-004`],
      );
      const hist = lib.operationHistory();
      assert.equal(hist.filter((h) => h.action === "added").length, 4);
      assert.equal(hist.filter((h) => h.action === "merged").length, problems.length - 4);
      assert.ok(
        hist.every((h) => problems.some((p) => p.id === h.problem_id) && !Number.isNaN(Date.parse(h.time))),
      );
    }
    // the lessons learned so far reach the prompt of later problems
    const scaffoldPrompts = server.requests
      .filter(
        (r) => r.body.model === "model-g1" && String(r.body.messages[0].content).startsWith("TASK: CAUSAL"),
      )
      .map((r) => String(r.body.messages[0].content));
    assert.ok(scaffoldPrompts.some((p) => p.includes("[G1-001]")));
    assert.ok(scaffoldPrompts.some((p) => p.includes("(none yet)")));

    const critic = await engine.runCritic({ experiences });
    assert.equal(critic.fused, problems.length * 3);
    assert.equal(critic.failedFusions, 0);
    assert.equal(critic.completed, problems.length);
    const results = readCriticResults(criticResultsPath(cacheDir(wd.dir)));
    assert.equal(results.length, problems.length * 3);
    const keys = new Set(results.map((r) => `${r.problem_id}/${r.generator_id}`));
    assert.equal(keys.size, problems.length * 3);
    for (const r of results) {
      assert.equal(r.r_fusion, 0.9);
      close(r.r_total, r.is_correct ? 0.3 + 0.2 * 0.8 + 0.2 + 0.3 * 0.9 : 0.2 * 0.8 + 0.2 + 0.3 * 0.9);
      assert.deepEqual(r.source_rollouts!.sort(), [1, 2, 3]);
    }
    assert.equal(critic.extractions, problems.length);
    const criticLib = ExperienceLibrary.load(libraryPath(wd.dir, "critic"), libraryIdentity("critic"));
    assert.ok(criticLib.entries().length >= 1);
    assert.match(criticLib.entries()[0]!.id, /^C-001$/);
    // the shared library is read, never written, by the flow
    assert.equal(existsSync(libraryPath(wd.dir, "shared")), false);

    // a second run of everything is a no-op: resume by problem id and by (problem, generator)
    const before2 = server.requests.length;
    const again = await engine.runGenerators({ problems, rollouts: 3, experiences });
    assert.deepEqual(
      again.map((g) => [g.completed, g.alreadyComplete]),
      [
        [0, problems.length],
        [0, problems.length],
        [0, problems.length],
      ],
    );
    const critic2 = await engine.runCritic({ experiences });
    assert.equal(critic2.fused, 0);
    assert.equal(critic2.alreadyComplete, problems.length);
    assert.equal(server.requests.length, before2);
    assert.ok(clients.generator_1.stats().calls > 0);
  });
});

describe("failures are recorded, never lost", () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 2);

  test("429 then success: the rollout succeeds after a retry", async () => {
    let first = true;
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "scaffold" && first) {
        first = false;
        return { status: 429, content: "slow down" };
      }
      if (task === "scaffold") return { content: scaffoldReply(problemIn(prompt, problems), true) };
      if (task === "judge") return { content: JUDGE_REPLY };
      return { content: "[]" };
    });
    const wd = makeWorkdir(server.baseURL);
    try {
      const { engine, experiences, clients } = makeEngine(server.baseURL, wd.dir);
      const s = await engine.runGenerator(1, { problems: problems.slice(0, 1), rollouts: 2, experiences });
      assert.equal(s.failedRollouts, 0);
      assert.ok(s.records[0]!.rollouts.every((r) => r.is_correct && r.error === undefined));
      const stats = clients.generator_1.stats();
      assert.equal(stats.byKind.rate_limit, 1);
      assert.equal(stats.retries, 1);
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("500s beyond the retry budget: that problem's rollouts are recorded as failed and the run goes on", async () => {
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "scaffold") {
        const p = problemIn(prompt, problems);
        if (p.id === problems[0]!.id) return { status: 500, content: "boom" };
        return { content: scaffoldReply(p, true) };
      }
      if (task === "judge") return { content: JUDGE_REPLY };
      return { content: "[]" };
    });
    const wd = makeWorkdir(server.baseURL);
    try {
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir, { maxRetries: 2 });
      const s = await engine.runGenerator(1, { problems, rollouts: 3, experiences });
      assert.deepEqual([s.completed, s.failed, s.skipped], [1, 1, 0]);
      assert.equal(s.failedRollouts, 3);
      assert.deepEqual(s.failures, { server: 3 });
      const { problems: recs } = readRolloutCache(generatorCachePath(cacheDir(wd.dir), 1));
      const failed = recs.get(problems[0]!.id)!;
      assert.equal(failed.rollouts.length, 3);
      for (const r of failed.rollouts) {
        assert.equal(r.scaffold, null);
        assert.equal(r.r_total, 0);
        assert.equal(r.is_correct, false);
        assert.match(r.error!, /scaffold request failed/);
      }
      // all equal (zero) rewards: nothing to learn from this group
      assert.equal(failed.extraction?.triggered, false);
      assert.ok(recs.get(problems[1]!.id)!.rollouts.every((r) => r.is_correct));
      const scaffoldCalls = server.requests.filter((r) =>
        String(r.body.messages[0].content).includes(problems[0]!.text),
      );
      assert.equal(scaffoldCalls.length, 3 * 3, "3 rollouts × (1 attempt + 2 retries)");
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("a judge that times out on every attempt fails the rollout (no r_logic 0); the rerun scores the kept scaffold", async () => {
    let judgeWorks = false;
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "scaffold") return { content: scaffoldReply(problemIn(prompt, problems), true) };
      if (task === "judge") return judgeWorks ? { content: JUDGE_REPLY } : { hang: true };
      return { content: "[]" };
    });
    const wd = makeWorkdir(server.baseURL);
    try {
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir, { maxRetries: 1, timeoutMs: 500 });
      const s = await engine.runGenerator(1, { problems: problems.slice(0, 1), rollouts: 2, experiences });
      assert.deepEqual([s.completed, s.failed], [0, 1]);
      assert.deepEqual(s.failures, { timeout: 2 });
      for (const r of s.records[0]!.rollouts) {
        assert.equal(r.scaffold, null, "a rollout whose judge failed is a failed rollout");
        assert.equal(r.r_total, 0);
        assert.equal(r.error_kind, "timeout");
        assert.match(r.error!, /scoring failed: logic judge failed/);
        assert.ok(r.unscored_scaffold, "the paid-for scaffold is kept");
      }
      judgeWorks = true;
      const scaffoldCalls = () =>
        server.requests.filter((r) => String(r.body.messages[0].content).startsWith("TASK: CAUSAL SCAFFOLD"))
          .length;
      const before = scaffoldCalls();
      const again = await makeEngine(server.baseURL, wd.dir).engine.runGenerator(1, {
        problems: problems.slice(0, 1),
        rollouts: 2,
        experiences,
      });
      assert.deepEqual([again.completed, again.failed], [1, 0]);
      assert.equal(scaffoldCalls(), before, "the scaffolds are not asked for again");
      for (const r of again.records.at(-1)!.rollouts) {
        assert.equal(r.r_logic, 0.8);
        assert.equal(r.r_ans, 1);
        close(r.r_total, 0.5 + 0.25 * 0.8 + 0.25);
      }
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("malformed bodies, prose instead of a scaffold and out-of-range judge scores are retried", async () => {
    let scaffoldCalls = 0;
    let judgeCalls = 0;
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "scaffold") {
        scaffoldCalls++;
        if (scaffoldCalls === 1) return { rawBody: '{"id": "x", "choices": [' };
        if (scaffoldCalls === 2) return { content: "I would rather explain this in prose." };
        return { content: scaffoldReply(problemIn(prompt, problems), true) };
      }
      if (task === "judge") {
        judgeCalls++;
        if (judgeCalls === 1) return { content: '{"overall": 1.7}' };
        return { content: JUDGE_REPLY };
      }
      return { content: "[]" };
    });
    const wd = makeWorkdir(server.baseURL);
    try {
      const { engine, experiences, clients } = makeEngine(server.baseURL, wd.dir, { concurrency: 1 });
      const s = await engine.runGenerator(1, { problems: problems.slice(0, 1), rollouts: 2, experiences });
      const rs = s.records[0]!.rollouts;
      assert.ok(rs.every((r) => r.scaffold !== null && r.r_logic === 0.8));
      assert.equal(s.failedRollouts, 0);
      assert.equal(clients.generator_1.stats().byKind.schema, 2, "the prose scaffold and the 1.7 score");
      assert.equal(clients.generator_1.stats().byKind.server, 1, "the malformed body");
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});

describe("experience updates from model replies", () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 1);

  test("unknown ids are ignored with a warning; over-long lessons are rejected; valid ops apply", async () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "scaffold") return { content: scaffoldReply(problemIn(prompt, problems), true) };
      if (task === "judge") return { content: JUDGE_REPLY };
      if (task === "summarise") return { content: "summary" };
      if (task === "extract")
        return {
          content: `Operations:\n${JSON.stringify([
            { operation: "modify", id: "G1-999", content: "Does not exist" },
            { operation: "delete", id: "G1-998" },
            { operation: "add", content: long },
            { operation: "add", content: "Name every intermediate quantity before writing its rule" },
            { operation: "rename", id: "G1-001" },
          ])}`,
        };
      return { content: "[]" };
    });
    const wd = makeWorkdir(server.baseURL);
    try {
      // every rollout is alike (σ = 0): a negative τ makes the group learn anyway
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir, {
        extraction: { mode: "variance", tau: -1, temperature: 0 },
      });
      const s = await engine.runGenerator(1, { problems, rollouts: 2, experiences });
      assert.equal(s.extractions, 1);
      assert.equal(s.warnings.length, 4);
      assert.ok(s.warnings.some((w) => /unknown experience id G1-999/.test(w)));
      assert.ok(s.warnings.some((w) => /unknown experience id G1-998/.test(w)));
      assert.ok(s.warnings.some((w) => /40 words \(max 32\)/.test(w)));
      assert.ok(s.warnings.some((w) => /operation \[4\] ignored/.test(w)));
      const lib = ExperienceLibrary.load(libraryPath(wd.dir, "generator_1"), libraryIdentity("generator_1"));
      assert.deepEqual(
        lib.entries().map((e) => [e.id, e.content, e.source_problem]),
        [["G1-001", "Name every intermediate quantity before writing its rule", problems[0]!.id]],
      );
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("mixed mode learns only from groups with both correct and wrong answers", async () => {
    // generator 1: both rollouts correct, judge scores 1 and 0.2 (σ > τ);
    // generator 2: first scaffold correct, second wrong
    const seen = new Map<string, number>();
    const nth = (key: string) => {
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      return n;
    };
    const server = await startScriptedServer(({ messages, model }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      const agent = agentOfModel(model);
      if (task === "scaffold") {
        const correct = agent === "generator_1" || nth(`${agent}|scaffold`) % 2 === 0;
        return { content: scaffoldReply(problemIn(prompt, problems), correct) };
      }
      if (task === "judge") {
        const score = agent === "generator_1" ? (nth(`${agent}|judge`) % 2 === 0 ? 1 : 0.2) : 0.8;
        return { content: JSON.stringify({ overall: score }) };
      }
      if (task === "summarise") return { content: "summary" };
      if (task === "extract") return { content: '[{"operation": "add", "content": "A lesson"}]' };
      return { content: "[]" };
    });
    const wd = makeWorkdir(server.baseURL);
    try {
      const mixed = makeEngine(server.baseURL, wd.dir, {
        extraction: { mode: "mixed", tau: 0.05, temperature: 0 },
      });
      const [s1, s2] = await mixed.engine.runGenerators(
        { problems, rollouts: 2, experiences: mixed.experiences },
        [1, 2],
      );
      assert.ok(s1!.records[0]!.std! > 0.05, "generator 1's group does vary");
      assert.equal(s1!.records[0]!.extraction?.triggered, false);
      assert.match(s1!.records[0]!.extraction!.reason, /all correct/);
      assert.equal(s2!.records[0]!.extraction?.triggered, true);
      assert.match(s2!.records[0]!.extraction!.reason, /mixed 1\/2 correct/);

      // the same kind of group in variance mode does learn
      const wd2 = makeWorkdir(server.baseURL);
      try {
        const variance = makeEngine(server.baseURL, wd2.dir);
        const s = await variance.engine.runGenerator(1, {
          problems,
          rollouts: 2,
          experiences: variance.experiences,
        });
        assert.equal(s.records[0]!.extraction?.triggered, true);
      } finally {
        wd2.cleanup();
      }
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});

describe("critic and trainer", () => {
  test("the critic names the missing cache and the command that makes it", async () => {
    const wd = makeWorkdir("http://127.0.0.1:9/v1");
    try {
      const { experiences } = makeEngine("http://127.0.0.1:9/v1", wd.dir);
      const { engine } = makeEngine("http://127.0.0.1:9/v1", wd.dir);
      await assert.rejects(
        engine.runCritic({ experiences }),
        (err: Error) =>
          err.message.includes(generatorCachePath(cacheDir(wd.dir), 1)) &&
          err.message.includes("grpo generator --id 1"),
      );
      await assert.rejects(
        runCritic({
          client: { chat: () => Promise.reject(new Error("unused")) },
          workdir: wd.dir,
          experiences,
          prompts: new PromptSet(),
          temperature: 0,
          generators: [2],
        }),
        /generator 2 not found: .*generator_2_rollouts\.jsonl/,
      );
    } finally {
      wd.cleanup();
    }
  });

  test("the old groupSize option is refused with a message naming rolloutsPerGenerator", () => {
    const { engine, experiences } = makeEngine("http://127.0.0.1:9/v1", "/nonexistent");
    assert.throws(
      () =>
        new TrainingFreeGRPOTrainer({
          causalEngine: engine,
          experienceManager: experiences,
          groupSize: 3,
        } as never),
      /groupSize .*rolloutsPerGenerator/,
    );
    assert.throws(
      () =>
        new TrainingFreeGRPOTrainer({
          causalEngine: engine,
          experienceManager: experiences,
          rolloutsPerGenerator: 0,
        }),
      /rolloutsPerGenerator must be an integer ≥ 1/,
    );
  });

  test("trainer: two epochs write separate caches and back up the libraries it resets", async () => {
    const problems = exampleProblems(["toy-math"]).slice(0, 2);
    const server = await startScriptedServer(flowResponder(problems));
    const wd = makeWorkdir(server.baseURL);
    try {
      const { engine, experiences } = makeEngine(server.baseURL, wd.dir);
      const old = ExperienceLibrary.empty(libraryPath(wd.dir, "generator_1"), libraryIdentity("generator_1"));
      old.apply([{ operation: "add", content: "An old lesson" }], { problemId: "old" });
      old.save();
      const trainer = new TrainingFreeGRPOTrainer({
        causalEngine: engine,
        experienceManager: experiences,
        rolloutsPerGenerator: 3,
        numEpochs: 2,
      });
      const report = await trainer.train(problems);
      assert.ok(report.backupDir && existsSync(report.backupDir));
      const backedUp = JSON.parse(readFileSync(`${report.backupDir}/generator_1_experiences.json`, "utf8"));
      assert.equal(backedUp.experiences[0].content, "An old lesson");
      assert.equal(report.epochs.length, 2);
      for (const e of report.epochs) {
        assert.deepEqual(
          e.generators.map((g) => g.completed),
          [2, 2, 2],
        );
        assert.equal(e.complete, true);
        close(e.generators[0]!.accuracy, 2 / 3);
        assert.equal(e.critic.fused, 6);
        assert.equal(e.critic.completed, 2);
      }
      assert.ok(existsSync(generatorCachePath(cacheDir(wd.dir, 2), 3)));
      assert.ok(existsSync(criticResultsPath(cacheDir(wd.dir, 2))));
      const lib = experiences.library("generator_1");
      assert.ok(lib.entries().every((e) => e.content !== "An old lesson"));
      assert.ok(lib.entries().length >= 1);
      assert.equal(report.epochs[1]!.librarySizes.generator_1, lib.entries().length);
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});

describe("answer checking", () => {
  test("LLM equivalence is asked only when enabled and only when the deterministic check says no", async () => {
    const problems = exampleProblems(["toy-math"]).slice(0, 1);
    const server = await startScriptedServer(({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      // every scaffold is off by one; the scripted judge of equivalence accepts it anyway
      if (task === "scaffold") return { content: scaffoldReply(problemIn(prompt, problems), false) };
      if (task === "judge") return { content: JUDGE_REPLY };
      if (task === "answer_equivalence") return { content: '{"equivalent": true}' };
      return { content: "[]" };
    });
    const countEquivalence = () =>
      server.requests.filter((r) => String(r.body.messages[0].content).startsWith("TASK: ANSWER EQUIVALENCE"))
        .length;
    const wd = makeWorkdir(server.baseURL);
    const wd2 = makeWorkdir(server.baseURL);
    try {
      const off = makeEngine(server.baseURL, wd.dir);
      const s1 = await off.engine.runGenerator(1, { problems, rollouts: 2, experiences: off.experiences });
      assert.ok(s1.records[0]!.rollouts.every((r) => r.r_ans === 0));
      assert.equal(countEquivalence(), 0);
      const on = makeEngine(server.baseURL, wd2.dir, { llmEquivalence: true });
      const s2 = await on.engine.runGenerator(1, { problems, rollouts: 2, experiences: on.experiences });
      assert.ok(s2.records[0]!.rollouts.every((r) => r.r_ans === 1 && r.is_correct));
      assert.equal(countEquivalence(), 2);
    } finally {
      await server.close();
      wd.cleanup();
      wd2.cleanup();
    }
  });
});
