/**
 * The package as a user gets it: `npm pack`, the tarball installed into a fresh project (from
 * the npm cache, never the network), and the examples run there with plain `node` — no tsx, no
 * TypeScript — against the scripted endpoint on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { initBackend } from "../../src/model/backend.ts";
import type { ScriptedServer } from "../helpers/scripted-server.ts";
import { writeTinyChatModel } from "../helpers/tiny-chat-model.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { startExampleServer } from "./example-world.ts";
import { installOffline } from "./offline-install.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const tmp = tempDirs("grpo-package-");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

describe("the installed package", { timeout: 300_000 }, () => {
  let project = "";
  let files: string[] = [];
  let server: ScriptedServer;
  let skip: string | undefined;

  before(async () => {
    server = await startExampleServer();
    const packDir = tmp("pack");
    // `npm pack` runs `prepare`, which builds dist/ from the sources of this checkout.
    const { stdout } = await run(NPM, ["pack", "--json", "--pack-destination", packDir], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
    });
    const packed = JSON.parse(stdout.slice(stdout.indexOf("["))) as {
      filename: string;
      files: { path: string }[];
    }[];
    files = packed[0]!.files.map((f) => f.path);
    const tarball = join(packDir, packed[0]!.filename);
    project = tmp("project");
    try {
      await installOffline({
        root: ROOT,
        project,
        tarball,
        extra: ["openai", "ai", "@ai-sdk/openai-compatible"],
      });
    } catch (err) {
      skip = `npm could not install the tarball offline (from its cache): ${(err as Error).message.split("\n").slice(0, 3).join(" ")}`;
    }
  });
  after(() => server?.close());

  const env = () => ({
    ...process.env,
    OPENAI_BASE_URL: server.baseURL,
    OPENAI_API_KEY: "test",
    MODEL: "scripted",
  });

  test("the tarball holds the compiled code, its assets and the bin, and no sources, tests or benches", () => {
    for (const f of [
      "dist/index.js",
      "dist/index.d.ts",
      "dist/training-free/experience-library.js",
      "dist/core/index.js",
      "dist/cli/main.js",
      "dist/recipes/causal-scaffold/prompts/generator_scaffold.txt",
      "dist/model/tfjs-resolve-hook.mjs",
      "bin/grpo.js",
      "package.json",
    ])
      assert.ok(files.includes(f), `${f} is missing from the tarball`);
    for (const f of files)
      assert.doesNotMatch(f, /^(src|test|bench|examples)\//, `${f} should not be packed`);
  });

  test("example 1 (plain openai SDK) learns and evaluates with plain node", async (t) => {
    if (skip) return t.skip(skip);
    assert.ok(!existsSync(join(project, "node_modules", "tsx")), "tsx is not installed for the consumer");
    assert.ok(
      !existsSync(join(project, "node_modules", "typescript")),
      "typescript is not installed for the consumer",
    );
    copyFileSync(join(ROOT, "examples", "openai-agent", "index.mjs"), join(project, "qa.mjs"));
    const { stdout } = await run(process.execPath, ["qa.mjs"], { cwd: project, env: env() });
    assert.match(stdout, /learning: finished, 1 lessons/);
    assert.match(stdout, /Mean@3 0\.\d+ without the lessons, 1\.000 with them/);
    const lib = JSON.parse(readFileSync(join(project, "experiences", "qa-agent.json"), "utf8"));
    assert.deepEqual(
      lib.experiences.map((e: { content: string }) => e.content),
      ["Recheck: redo each computation before answering."],
    );
    // Deployed: the learned library alone, through the light entry point.
    const { stdout: rendered } = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "import { ExperienceLibrary } from 'grpo-ts/library'; process.stdout.write(ExperienceLibrary.load('experiences/qa-agent.json').render());",
      ],
      { cwd: project },
    );
    assert.equal(rendered, "[L-001] Recheck: redo each computation before answering.");
  });

  test("example 2 (Vercel AI SDK with a tool) learns from its tool calls with plain node", async (t) => {
    if (skip) return t.skip(skip);
    copyFileSync(join(ROOT, "examples", "ai-sdk-agent", "index.mjs"), join(project, "tool.mjs"));
    const before = server.requests.length;
    const { stdout } = await run(process.execPath, ["tool.mjs"], { cwd: project, env: env() });
    assert.match(stdout, /learning: finished, 1 lessons/);
    assert.match(stdout, /Mean@2 0\.\d+ without the lessons, 1\.000 with them/);
    const requests = server.requests.slice(before);
    // The agent called its tool and the learner read what the tool returned.
    assert.ok(requests.some((r) => r.body.messages.some((m: { role: string }) => m.role === "tool")));
    assert.ok(
      requests.some((r) =>
        r.body.messages.some((m: { content: unknown }) =>
          /call calculate\(\{"expression":"[^"]+"\}\)\nresult \{"value":\d+\}/.test(String(m.content)),
        ),
      ),
      "a summary request holds the tool result",
    );
  });

  test("example 3 (the paper's setting) runs on a small data set", async (t) => {
    if (skip) return t.skip(skip);
    copyFileSync(join(ROOT, "examples", "paper-math", "index.mjs"), join(project, "paper.mjs"));
    const lines = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          id: `p${from + i}`,
          problem: `Compute it; the answer is ${from + i}.`,
          answer: String(from + i),
        }),
      ).join("\n");
    writeFileSync(join(project, "train.jsonl"), lines(4, 10));
    writeFileSync(join(project, "aime.jsonl"), lines(3, 100));
    const { stdout } = await run(process.execPath, ["paper.mjs"], {
      cwd: project,
      env: {
        ...env(),
        TRAIN: "train.jsonl",
        TEST: "aime.jsonl",
        K: "4",
        EPOCHS: "1",
        PRICE_IN: "0.27",
        PRICE_OUT: "1.1",
      },
    });
    assert.match(stdout, /learning finished: 1 lessons, \$0\.\d\d/);
    assert.match(stdout, /aime\.jsonl: Mean@4 \d+\.\d -> 100\.0, Pass@4 \d+\.\d -> 100\.0/);
  });

  test("example 4 (GRPOTrainer on a Hugging Face model directory) trains and saves a PEFT adapter with plain node", async (t) => {
    if (skip) return t.skip(skip);
    await initBackend("cpu");
    const model = join(project, "tiny-model");
    writeTinyChatModel(model, { seed: 2 });
    copyFileSync(join(ROOT, "examples", "train-your-model", "index.mjs"), join(project, "train.mjs"));
    const { stdout } = await run(process.execPath, ["train.mjs", model, "run"], {
      cwd: project,
      env: { ...process.env, MAX_STEPS: "2" },
    });
    assert.match(stdout, /step 2: reward -?\d\.\d{3}, mentionsAnswer \d\.\d\d, length \d+\.\d/);
    assert.match(stdout, /2 steps, training loss -?\d\.\d{4}; adapter in run\/adapter/);
    const cfg = JSON.parse(readFileSync(join(project, "run", "adapter", "adapter_config.json"), "utf8"));
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.r, 16);
    assert.ok(existsSync(join(project, "run", "adapter", "adapter_model.safetensors")));
  });

  test("the grpo command runs the compiled CLI, and grpo-ts/library loads nothing else of the package", async (t) => {
    if (skip) return t.skip(skip);
    const { stdout } = await run(join(project, "node_modules", ".bin", "grpo"), ["--help"], { cwd: project });
    assert.match(stdout, /tf-train/);
    const hook = join(project, "record-loads.mjs");
    writeFileSync(
      hook,
      "export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes('/grpo-ts/')) process.stderr.write(r.url + '\\n'); return r; }",
    );
    const { stderr } = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { register } from "node:module"; import { pathToFileURL } from "node:url"; register(pathToFileURL(${JSON.stringify(hook)})); await import("grpo-ts/library");`,
      ],
      { cwd: project },
    );
    const loaded = stderr
      .split("\n")
      .filter(Boolean)
      .map((u) => u.replace(/.*\/grpo-ts\//, ""));
    assert.deepEqual(loaded.sort(), ["dist/io/files.js", "dist/training-free/experience-library.js"]);
  });

  test("a TypeScript consumer type-checks against the declarations", async (t) => {
    if (skip) return t.skip(skip);
    writeFileSync(
      join(project, "consumer.ts"),
      [
        'import { ExperienceLibrary, TrainingFreeGRPO, openAICompatible, type FitResult } from "grpo-ts";',
        'import { groupStats } from "grpo-ts/core";',
        "const tf = new TrainingFreeGRPO<{ id: string; q: string }, string>({",
        "  rollout: async (task, ctx) => ({ output: task.q + ctx.experiences.text }),",
        "  reward: (_t, a) => a.output.length,",
        '  learner: openAICompatible({ baseURL: "http://127.0.0.1:1/v1", apiKey: "k", model: "m" }),',
        "  library: ExperienceLibrary.inMemory(),",
        "});",
        "export const r: Promise<FitResult> = tf.fit([]);",
        "export const m: number = groupStats([1, 2]).mean;",
        "// @ts-expect-error render() is text",
        "export const wrong: number = tf.library.render();",
      ].join("\n"),
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
        files: ["consumer.ts"],
      }),
    );
    await run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", project]);
  });
});
