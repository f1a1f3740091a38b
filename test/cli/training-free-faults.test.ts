/**
 * The training-free commands as a user runs them (the real `grpo` executable in a child
 * process, the real openai SDK, a scripted server on 127.0.0.1) against endpoints that fail.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Command } from "commander";
import { commands } from "../../src/cli/commands/index.ts";
import type { Problem } from "../../src/data/datasets.ts";
import { libraryIdentity, libraryPath } from "../../src/recipes/causal-scaffold/libraries.ts";
import {
  cacheDir,
  generatorCachePath,
  runSummaryPath,
  trainStatePath,
} from "../../src/recipes/causal-scaffold/paths.ts";
import { readRolloutCache } from "../../src/recipes/causal-scaffold/rollout-cache.ts";
import { ExperienceLibrary } from "../../src/training-free/experience-library.ts";
import { type Outcome, startGrpo } from "../helpers/child.ts";
import { type Responder, startScriptedServer } from "../helpers/scripted-server.ts";
import {
  agentOfModel,
  EXAMPLE_DATASET_CONFIG,
  exampleProblems,
  JUDGE_REPLY,
  makeWorkdir,
  problemIn,
  scaffoldReply,
  taskOf,
} from "../recipes/causal-scaffold/harness.ts";

const start = startGrpo;
const run = (args: string[]) => start(args).done;

function program(): Command {
  const p = new Command("grpo").exitOverride();
  for (const r of commands) r(p);
  return p;
}

/**
 * The same command in this process, as the executable would run it (its `grpo: …` line and
 * exit status from the error), to spare a process start where the process boundary is not
 * what the test is about.
 */
async function inProcess(args: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  let code = 0;
  try {
    await program().parseAsync(args, { from: "user" });
  } catch (e) {
    err.push(`grpo: ${(e as Error).message}`);
    const exit = (e as { exitCode?: unknown }).exitCode;
    code = typeof exit === "number" && exit > 0 ? exit : 1;
  } finally {
    console.log = log;
    console.error = error;
  }
  return { code, signal: null, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** The `grpo: …` line a failed command ends with. */
function errorLine(o: Outcome): string {
  const lines = o.stderr.split("\n").filter((l) => l.startsWith("grpo: "));
  assert.equal(lines.length, 1, `one error line expected, stderr:\n${o.stderr}`);
  return lines[0]!;
}

/** The right answer for every problem, judged 0.8; learning replies that add distinct lessons. */
function goodSolver(problems: Problem[], opts: { mixed?: boolean } = {}): Responder {
  const seen = new Map<string, number>();
  let lesson = 0;
  return ({ messages, model }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    const agent = agentOfModel(model);
    if (task === "scaffold" || task === "fusion") {
      const p = problemIn(prompt, problems);
      const key = `${agent}|${task}|${p.id}`;
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      return { content: scaffoldReply(p, !opts.mixed || n % 2 === 0) };
    }
    if (task === "judge") return { content: JUDGE_REPLY };
    if (task === "fusion_judge") return { content: '{"score": 0.8}' };
    if (task === "summarise") return { content: "A summary." };
    if (task === "extract") {
      lesson++;
      return {
        content: JSON.stringify([
          {
            operation: "add",
            content: `Distinct lesson ${"abcdefghijklmnopqrstuvwxyz"[lesson % 26]} number ${lesson}`,
          },
        ]),
      };
    }
    return { status: 400, content: `unexpected ${task}` };
  };
}

function common(wd: { dir: string; configPath: string }): string[] {
  return ["--workdir", wd.dir, "--config", wd.configPath, "--dataset-config", EXAMPLE_DATASET_CONFIG];
}

/** Every file under `dir`, recursively. */
function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

describe("broken endpoints, as a new user meets them", { timeout: 120_000 }, () => {
  test("nothing listening: exit 1 with one line naming agent, URL, model, cause and fix; a rerun says the same", async () => {
    const gone = await startScriptedServer([]);
    await gone.close();
    const wd = makeWorkdir(gone.baseURL, { maxRetries: 1 });
    try {
      const args = ["generator", "--id", "1", "--dataset", "toy-math", "--max-problems", "1", ...common(wd)];
      const first = await run(args);
      assert.equal(first.code, 1, first.stderr);
      assert.equal(
        errorLine(first),
        `grpo: generator_1: connection refused after 2 attempts at ${gone.baseURL} (model model-g1). ` +
          `Fix: start the server at ${gone.baseURL}, or correct base_url for generator_1 in ${wd.configPath}`,
      );
      // the problem is not recorded as done: the rerun meets the same error instead of "already cached"
      const second = await run(args);
      assert.equal(second.code, 1);
      assert.match(errorLine(second), /connection refused/);
      assert.match(second.stdout, /\(1 requested, 0 already complete\)/);
      const rec = readRolloutCache(generatorCachePath(cacheDir(wd.dir), 1))
        .problems.values()
        .next().value;
      if (rec)
        assert.ok(
          rec.rollouts.every((r) => r.scaffold === null),
          "failed, never a result",
        );
    } finally {
      wd.cleanup();
    }
  });

  test("a 401 stops generators --all at once: one line with the fix, never the key", async () => {
    const server = await startScriptedServer(() => ({
      status: 401,
      content: "Incorrect API key provided: test-key",
    }));
    const wd = makeWorkdir(server.baseURL);
    try {
      const o = await inProcess(["generators", "--all", "--dataset", "toy-math", ...common(wd)]);
      assert.equal(o.code, 1, o.stderr);
      const line = errorLine(o);
      assert.match(
        line,
        /^grpo: generator_[123]: authentication failed \(HTTP 401: 401 Incorrect API key provided: \*\*\*\) at http:\/\/127\.0\.0\.1:\d+\/v1 \(model model-g[123]\)\. Fix: check api_key for generator_[123] in /,
      );
      assert.equal(`${o.stdout}${o.stderr}`.includes("test-key"), false, "the key is never printed");
      // three generators × a few problems in flight, then nothing more
      assert.ok(server.requests.length <= 3 * 8, `${server.requests.length} requests after a 401`);
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("exhausted 429s: the run stops after --max-failures in a row, exit 2, failures by cause", async () => {
    const server = await startScriptedServer(() => ({
      status: 429,
      content: "rate limited",
      headers: { "retry-after-ms": "1" },
    }));
    const wd = makeWorkdir(server.baseURL, { maxRetries: 1 });
    try {
      const o = await inProcess([
        "generator",
        "--id",
        "1",
        "--dataset",
        "toy-math",
        "--rollouts",
        "2",
        "--concurrency",
        "1",
        "--max-failures",
        "2",
        ...common(wd),
      ]);
      assert.equal(o.code, 2, o.stderr);
      assert.match(o.stderr, /generator_1: first failure of this run, problem toy-math_001, rollout 1: /);
      assert.match(
        errorLine(o),
        /^grpo: generator_1: 2 failures in a row \(last: .*rate_limit error after 2 attempts/,
      );
      assert.match(
        o.stdout,
        /^generator_1: 0 completed, 1 failed, 7 skipped \(8 requested, 0 already complete\); failures by cause: rate_limit 2; 0 library updates → /m,
      );
      assert.ok(server.requests.length <= 2 * 2 + 1);
    } finally {
      await server.close();
      wd.cleanup();
    }
  });

  test("an empty selection, a missing report directory and an unwritable work directory are errors, before any call", async () => {
    const server = await startScriptedServer(goodSolver(exampleProblems(["toy-math"])));
    const wd = makeWorkdir(server.baseURL);
    try {
      const past = await inProcess([
        "generator",
        "--id",
        "1",
        "--dataset",
        "toy-math",
        "--start-problem",
        "8",
        ...common(wd),
      ]);
      assert.equal(past.code, 1);
      assert.match(
        errorLine(past),
        /--start-problem 8 is past the end: data set toy-math holds 8 problems \(indices 0 to 7\)/,
      );
      const report = await inProcess(["report", join(wd.dir, "no-such-run")]);
      assert.equal(report.code, 1);
      assert.match(errorLine(report), /report: .*no-such-run does not exist/);
      assert.equal(existsSync(join(wd.dir, "no-such-run")), false);
      // grpo_training as a file: nothing can be written under it
      const ro = makeWorkdir(server.baseURL);
      try {
        writeFileSync(join(ro.dir, "grpo_training"), "not a folder");
        const o = await inProcess(["generator", "--id", "1", "--dataset", "toy-math", ...common(ro)]);
        assert.equal(o.code, 1);
        assert.match(errorLine(o), /work directory .* is not writable \(.*\); nothing was run/);
      } finally {
        ro.cleanup();
      }
      assert.equal(server.requests.length, 0, "no call was paid for");
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});

describe("one writer per agent", { timeout: 120_000 }, () => {
  test("a second process for the same agent and work directory refuses at once, naming the holder", async () => {
    const problems = exampleProblems(["toy-math"]);
    // generator_1's replies wait until the second process has been turned away
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const solve = goodSolver(problems);
    const server = await startScriptedServer(async (req) => {
      if (req.model === "model-g1") await gate;
      return solve(req);
    });
    // the held request must not time out meanwhile
    const wd = makeWorkdir(server.baseURL, { timeoutMs: 60_000 });
    try {
      const args = [
        "generator",
        "--id",
        "1",
        "--dataset",
        "toy-math",
        "--rollouts",
        "2",
        "--concurrency",
        "1",
        ...common(wd),
      ];
      const first = start(args);
      while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
      const second = await run(args);
      assert.equal(second.code, 1, second.stderr);
      assert.match(
        errorLine(second),
        new RegExp(
          `generator_1 in .* is being written by process ${first.child.pid} \\(grpo generator_1, since .*\\); one process per agent`,
        ),
      );
      // another agent in the same directory is fine meanwhile
      const other = await inProcess([
        "generator",
        "--id",
        "2",
        "--dataset",
        "toy-math",
        "--max-problems",
        "1",
        "--rollouts",
        "1",
        ...common(wd),
      ]);
      assert.equal(other.code, 0, other.stderr);
      release();
      const firstDone = await first.done;
      assert.equal(firstDone.code, 0, firstDone.stderr);
      const scaffolds = server.requests.filter(
        (r) =>
          r.body.model === "model-g1" &&
          String(r.body.messages[0].content).startsWith("TASK: CAUSAL SCAFFOLD"),
      ).length;
      assert.equal(scaffolds, problems.length * 2, "every problem solved once, not twice");
      assert.equal(existsSync(join(wd.dir, "grpo_training", "locks", "generator_1.lock")), false, "released");
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});

describe("tf-train: a kill and a rerun", { timeout: 180_000 }, () => {
  test("killed mid-way and rerun: same epoch, libraries as they were, ids never reused, no .tmp left, usage of both runs", async () => {
    const problems = exampleProblems(["toy-math"]).slice(0, 4);
    const server = await startScriptedServer(goodSolver(problems, { mixed: true }), { latencyMs: 30 });
    const wd = makeWorkdir(server.baseURL);
    const args = [
      "tf-train",
      "--epochs",
      "2",
      "--rollouts-per-generator",
      "2",
      "--datasets",
      "toy-math",
      "--max-problems",
      "4",
      "--concurrency",
      "2",
      ...common(wd),
    ];
    const lessons = () =>
      (["generator_1", "generator_2", "generator_3", "critic"] as const).map((o) =>
        existsSync(libraryPath(wd.dir, o))
          ? ExperienceLibrary.load(libraryPath(wd.dir, o), libraryIdentity(o)).operationHistory()
          : [],
      );
    try {
      const first = start(args);
      // kill once the generators have learned something, before the epoch is over
      for (;;) {
        await new Promise((r) => setTimeout(r, 15));
        if (lessons().reduce((n, h) => n + h.filter((x) => x.action === "added").length, 0) >= 3) break;
      }
      first.child.kill("SIGKILL");
      const killed = await first.done;
      assert.equal(killed.signal, "SIGKILL");
      const atKill = lessons();
      assert.ok(
        !existsSync(trainStatePath(wd.dir)) ||
          JSON.parse(readFileSync(trainStatePath(wd.dir), "utf8")).epochs_completed === 0,
      );

      const second = await run(args);
      assert.equal(second.code, 0, second.stderr);
      assert.match(
        second.stdout,
        /continuing the run started .*: 0 of 2 epochs complete, libraries as they are on disk/,
      );
      assert.doesNotMatch(second.stdout, /backed up/);
      const atEnd = lessons();
      atKill.forEach((h, i) => {
        // what was learned before the kill is still the start of each library's history
        assert.deepEqual(atEnd[i]!.slice(0, h.length), h);
        const added = atEnd[i]!.filter((x) => x.action === "added").map((x) => x.id);
        assert.equal(new Set(added).size, added.length, "a lesson id is never given twice");
      });
      const state = JSON.parse(readFileSync(trainStatePath(wd.dir), "utf8"));
      assert.equal(state.epochs_completed, 2);
      const report = JSON.parse(readFileSync(join(wd.dir, "grpo_training", "tf_train_report.json"), "utf8"));
      assert.equal(report.complete, true);
      assert.equal(report.epochsBefore, 0);
      assert.deepEqual(
        allFiles(wd.dir).filter((f) => f.endsWith(".tmp")),
        [],
        "no temporary file survives",
      );
      const summary = JSON.parse(readFileSync(runSummaryPath(wd.dir), "utf8"));
      assert.deepEqual(
        summary.runs.map((r: { command: string; status: string }) => [r.command, r.status]),
        [
          ["tf-train", "unfinished"],
          ["tf-train", "finished"],
        ],
      );
      // every call that got its reply is counted, the killed run's too; only those in flight at
      // the kill (at most 2 per agent) can be missing
      const total = summary.usage.total.calls;
      assert.ok(
        total <= server.requests.length && total >= server.requests.length - 8,
        `${total} calls counted of ${server.requests.length} requests`,
      );
      const killedLog = readdirSync(join(wd.dir, "grpo_training", "usage")).sort()[0]!;
      const killedCalls = readFileSync(join(wd.dir, "grpo_training", "usage", killedLog), "utf8")
        .trim()
        .split("\n")
        .filter((l) => JSON.parse(l).type === "call").length;
      assert.ok(killedCalls > 0, "the killed run recorded its calls as they happened");

      // a finished run rerun does nothing and says so
      const before = server.requests.length;
      const third = await inProcess(args);
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stdout, /all 2 epochs are already complete: nothing to do/);
      assert.equal(server.requests.length, before);

      // --restart backs the run up and says where
      const restart = await run([...args, "--epochs", "1", "--restart"]);
      assert.equal(restart.code, 0, restart.stderr);
      const where = /backed up in (\S+)/.exec(restart.stdout)?.[1];
      assert.ok(where && existsSync(join(where, "cache", "generator_1_rollouts.jsonl")), restart.stdout);
      assert.ok(existsSync(join(where, "grpo_experiences", "generator_1_experiences.json")));
      assert.ok(existsSync(join(where, "tf_train_state.json")));
      // a different set of problems without --restart is refused, naming what differs
      const other = await inProcess([...args, "--max-problems", "2"]);
      assert.equal(other.code, 1);
      assert.match(
        errorLine(other),
        /was started with 4 problems .* this one has 2 problems .* pass --restart/,
      );
    } finally {
      await server.close();
      wd.cleanup();
    }
  });
});
