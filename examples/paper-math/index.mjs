// The setting of the Training-Free GRPO paper (arXiv 2510.08191) for math: a plain agent whose
// system prompt carries the lessons, answers checked by answer equivalence, 100 training
// problems, 3 epochs, groups of 5 at temperature 0.7, then Mean@32 with and without the lessons.
//
//   OPENAI_BASE_URL=https://api.deepseek.com/v1 OPENAI_API_KEY=sk-… MODEL=deepseek-chat \
//   TRAIN=data/dapo-math-100.jsonl TEST=data/aime2024.jsonl,data/aime2025.jsonl node index.mjs
//
// Data files are JSONL, one problem a line: an id (`id`/`problem_id`, else its line number), a
// text (`problem`/`question`/`Problem`) and an answer (`answer`/`Answer`). Optional: K (32),
// TRAIN_SIZE (100), EPOCHS (3), CONCURRENCY (64), PRICE_IN / PRICE_OUT (USD per million tokens,
// for the cost figures), RUN_DIR (runs/paper-math).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { answersEquivalent, extractAnswer, openAICompatible, TrainingFreeGRPO } from "grpo-ts";
import OpenAI from "openai";

const env = process.env;
const baseURL = env.OPENAI_BASE_URL ?? "https://api.deepseek.com/v1";
const apiKey = env.OPENAI_API_KEY;
const model = env.MODEL ?? "deepseek-chat";
const k = Number(env.K ?? 32);
const runDir = env.RUN_DIR ?? "runs/paper-math";
const concurrency = Number(env.CONCURRENCY ?? 64);
const pricing =
  env.PRICE_IN && env.PRICE_OUT
    ? { inputPerMTok: Number(env.PRICE_IN), outputPerMTok: Number(env.PRICE_OUT) }
    : undefined;
if (!env.TRAIN || !env.TEST) {
  console.error("set TRAIN (training problems, JSONL) and TEST (comma-separated test sets, JSONL)");
  process.exit(2);
}

function readProblems(path) {
  return readFileSync(path, "utf8")
    .split("\n")
    .map((line, i) => [line.trim(), i + 1])
    .filter(([line]) => line !== "")
    .map(([line, n]) => {
      const row = JSON.parse(line);
      const text = row.problem ?? row.question ?? row.Problem;
      const answer = row.answer ?? row.Answer;
      if (typeof text !== "string" || answer === undefined)
        throw new Error(`${path}:${n}: no problem text or answer`);
      return {
        id: String(row.id ?? row.problem_id ?? `${basename(path)}:${n}`),
        text,
        answer: String(answer),
      };
    });
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 5 });
const tfgrpo = new TrainingFreeGRPO({
  library: `${runDir}/experiences.json`,
  learner: openAICompatible({ baseURL, apiKey, model, maxConcurrency: concurrency, pricing }),
  learning: {
    agentObjective: "Solve competition math problems; the final answer goes in \\boxed{}.",
    learningObjective: "Strategies, checks and pitfalls that decide whether the final answer is right.",
  },
  taskText: (p) => p.text,
  rolloutPricing: pricing,
  async rollout(problem, { experiences, seed, signal }) {
    const lessons =
      experiences.text === "" ? "" : `\n\nWhen solving problems, use these lessons:\n${experiences.text}`;
    const completion = await client.chat.completions.create(
      {
        model,
        seed,
        temperature: 0.7,
        messages: [
          { role: "system", content: `Solve the math problem. Put the final answer in \\boxed{}.${lessons}` },
          { role: "user", content: problem.text },
        ],
      },
      { signal },
    );
    return { output: completion.choices[0]?.message.content ?? "", usage: completion.usage };
  },
  reward: (problem, attempt) => (answersEquivalent(extractAnswer(attempt.output), problem.answer) ? 1 : 0),
});

const train = readProblems(env.TRAIN).slice(0, Number(env.TRAIN_SIZE ?? 100));
const fit = await tfgrpo.fit(train, {
  epochs: Number(env.EPOCHS ?? 3),
  groupSize: 5,
  batchSize: train.length,
  concurrency,
  runDir: `${runDir}/learning`,
  onEvent: (e) => {
    if (e.type === "library") console.log(`epoch ${e.epoch}: ${e.size} lessons`);
    if (e.type === "failure")
      console.error(`failed: ${e.failure.stage} of ${e.failure.task}: ${e.failure.error}`);
  },
});
const cost = fit.cost.learner.costUSD + fit.cost.rollouts.costUSD;
console.log(`learning ${fit.status}: ${fit.library.size} lessons${pricing ? `, $${cost.toFixed(2)}` : ""}`);

let complete = fit.complete;
for (const path of env.TEST.split(",")) {
  const ab = await tfgrpo.evaluate(readProblems(path), {
    k,
    concurrency,
    runDir: `${runDir}/eval-${basename(path)}`,
  });
  const pct = (x) => (100 * x).toFixed(1);
  console.log(
    `${basename(path)}: Mean@${k} ${pct(ab.without.meanAtK)} -> ${pct(ab.with.meanAtK)}, ` +
      `Pass@${k} ${pct(ab.without.passAtK)} -> ${pct(ab.with.passAtK)}`,
  );
  complete &&= ab.complete;
}
process.exitCode = complete ? 0 : 1;
