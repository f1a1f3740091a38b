/**
 * `grpo serve` and `grpo generate` as a user runs them: the real `grpo` executable serving a
 * tiny random model written in the Hugging Face layout, and against it the training-free
 * library's first example (examples/openai-agent, plain node, the plain openai SDK) and
 * `grpo generator`, end to end. The text is nonsense; the protocol, the files the commands
 * write and their failure handling are real.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Command } from "commander";
import { register as registerGenerate } from "../../src/cli/commands/generate.ts";
import { register as registerServe } from "../../src/cli/commands/serve.ts";
import { initBackend } from "../../src/model/backend.ts";
import { cacheDir, generatorCachePath } from "../../src/recipes/causal-scaffold/paths.ts";
import { readRolloutCache } from "../../src/recipes/causal-scaffold/rollout-cache.ts";
import { type ChildOptions, GRPO_BIN, startChild } from "../helpers/child.ts";
import { writeTinyChatModel } from "../helpers/tiny-chat-model.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { EXAMPLE_DATASET_CONFIG } from "../recipes/causal-scaffold/harness.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const tmp = tempDirs("grpo-serve-cli-");
// the tiny models are written from this process, and `grpo generate` runs in it
await initBackend("wasm");

const run = (cmd: string, args: string[], opts: ChildOptions = {}) => startChild(cmd, args, opts).done;

/** `grpo serve` in a child process; resolves with its URL once it listens. */
async function serve(args: string[]): Promise<{ child: ChildProcess; url: string; log: () => string }> {
  const child = spawn(process.execPath, [GRPO_BIN, "serve", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+) /.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) =>
      reject(new Error(`grpo serve exited (${code}) before listening:\n${out}\n${err}`)),
    );
  });
  return { child, url, log: () => err };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

describe("grpo serve, end to end", { timeout: 600_000 }, () => {
  let modelDir = "";
  let server: Awaited<ReturnType<typeof serve>>;

  before(async () => {
    modelDir = join(tmp("model"), "tiny-chat");
    writeTinyChatModel(modelDir, { seed: 5, contextLength: 2048, maxNewTokens: 16 });
    server = await serve(["--model", modelDir, "--seed", "0"]);
  });
  after(async () => {
    if (server) await stop(server.child);
  });

  test("the training-free library's first example runs against it with plain node", async (t) => {
    if (!existsSync(join(ROOT, "dist", "index.js"))) {
      t.skip("dist/ is not built (npm run build): the example imports the compiled package");
      return;
    }
    const cwd = tmp("example");
    const r = await run(process.execPath, [join(ROOT, "examples", "openai-agent", "index.mjs")], {
      cwd,
      env: { ...process.env, OPENAI_BASE_URL: server.url, OPENAI_API_KEY: "none", MODEL: "tiny-chat" },
    });
    assert.equal(r.code, 0, `example failed:\n${r.stdout}\n${r.stderr}`);
    // nonsense never boxes the right answer: nothing to learn, and 0 with and without
    assert.match(r.stdout, /learning: finished, 0 lessons/);
    assert.match(r.stdout, /Mean@3 0\.000 without the lessons, 0\.000 with them/);
    // every attempt went through the server: 2 epochs × 6 questions × 4, then 6 × 3 twice
    const served = server
      .log()
      .split("\n")
      .filter((l) => l.startsWith("POST /v1/chat/completions 200"));
    assert.ok(served.length >= 48 + 36, `${served.length} completions served`);
    assert.ok(existsSync(join(cwd, "runs", "qa-agent")));
  });

  test("grpo generator runs against it: unparseable scaffolds are recorded failures, exit status 2, and a wrong model name is fatal", async () => {
    const wd = tmp("generator");
    const config = (model: string) => {
      const file = join(wd, `api_config_${model}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          default: {
            base_url: server.url,
            api_key: "none",
            model,
            max_retries: 1,
            timeout_ms: 120_000,
            max_concurrency: 4,
          },
          agents: { generator_1: {}, generator_2: {}, generator_3: {}, critic: {} },
        }),
      );
      return file;
    };
    const args = (model: string) => [
      GRPO_BIN,
      "generator",
      "--id",
      "1",
      "--dataset",
      "toy-math",
      "--max-problems",
      "1",
      "--rollouts",
      "2",
      "--workdir",
      wd,
      "--config",
      config(model),
      "--dataset-config",
      EXAMPLE_DATASET_CONFIG,
    ];
    const r = await run(process.execPath, args("tiny-chat"));
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /generator_1: 0 completed, 1 failed/);
    assert.match(r.stderr, /unparseable scaffold/);
    const { problems } = readRolloutCache(generatorCachePath(cacheDir(wd), 1));
    const rec = [...problems.values()][0]!;
    assert.equal(rec.rollouts.length, 2);
    for (const ro of rec.rollouts) assert.equal(ro.scaffold, null, "a failed rollout keeps no scaffold");

    const wrong = await run(process.execPath, args("no-such-model"));
    assert.equal(wrong.code, 1, `${wrong.stdout}\n${wrong.stderr}`);
    assert.match(wrong.stderr, /404/);
    assert.match(wrong.stderr, /no-such-model/);
  });
});

describe("grpo generate", { timeout: 300_000 }, () => {
  let modelDir = "";
  before(() => {
    modelDir = join(tmp("gen-model"), "tiny-gen");
    writeTinyChatModel(modelDir, { seed: 6, contextLength: 512 });
  });

  const program = () => {
    const p = new Command("grpo").exitOverride();
    registerGenerate(p);
    registerServe(p);
    return p;
  };
  async function generate(args: string[]): Promise<string[]> {
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    try {
      await program().parseAsync(["generate", "--model", modelDir, ...args], { from: "user" });
    } finally {
      console.log = log;
    }
    return out;
  }

  test("--json prints prompt_ids, completion_ids and text; greedy rows of a batch equal the rows alone", async () => {
    const both = await generate([
      "--chat",
      "--prompt",
      "First question",
      "--prompt",
      "A second, longer question than the first",
      "--temperature",
      "0",
      "--max-new-tokens",
      "6",
      "--json",
    ]);
    assert.equal(both.length, 2);
    const rows = both.map(
      (l) => JSON.parse(l) as { prompt_ids: number[]; completion_ids: number[]; text: string },
    );
    for (const r of rows) {
      assert.deepEqual(Object.keys(r), ["prompt_ids", "completion_ids", "text"]);
      assert.ok(r.completion_ids.length >= 1 && r.completion_ids.length <= 6);
      assert.ok(r.prompt_ids.length > 5);
    }
    const alone = JSON.parse(
      (
        await generate([
          "--chat",
          "--prompt",
          "A second, longer question than the first",
          "--temperature",
          "0",
          "--max-new-tokens",
          "6",
          "--json",
        ])
      )[0]!,
    );
    assert.deepEqual(alone, rows[1]);
    // the chat template put the prompt in a user turn
    const tok = readFileSync(join(modelDir, "tokenizer_config.json"), "utf8");
    assert.match(tok, /im_start/);
  });

  test("a seed reproduces a sampled text; another seed changes it", async () => {
    const ask = (seed: string) =>
      generate([
        "--prompt",
        "Once upon a time",
        "--max-new-tokens",
        "12",
        "--temperature",
        "1",
        "--seed",
        seed,
        "--json",
      ]);
    const a = await ask("1");
    assert.deepEqual(await ask("1"), a);
    assert.notDeepEqual(await ask("2"), a);
  });

  test("every new command's --help has an example", () => {
    for (const name of ["generate", "serve"]) {
      let out = "";
      const cmd = program().commands.find((c) => c.name() === name)!;
      cmd.configureOutput({ writeOut: (s) => (out += s) });
      cmd.outputHelp();
      assert.match(out, new RegExp(`Examples?:\\n  grpo ${name} `), name);
    }
  });
});
