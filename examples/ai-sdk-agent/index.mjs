// A tool-using agent written with the Vercel AI SDK (`generateText` with a calculator tool)
// learns from its own attempts; the learner reads each attempt's tool calls and results.
//   npm install grpo-ts ai @ai-sdk/openai-compatible
//   OPENAI_BASE_URL=… OPENAI_API_KEY=… MODEL=… node index.mjs
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, jsonSchema, stepCountIs, tool } from "ai";
import { answersEquivalent, openAICompatible, TrainingFreeGRPO } from "grpo-ts";

const baseURL = process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
const apiKey = process.env.OPENAI_API_KEY;
const model = process.env.MODEL ?? "gpt-4o-mini";
const provider = createOpenAICompatible({ name: "endpoint", baseURL, apiKey });

/** + − × ÷ and parentheses on numbers, nothing else. */
function arithmetic(expression) {
  if (!/^[\d\s.+\-*/()]+$/.test(expression)) throw new Error(`not arithmetic: ${expression}`);
  const value = Function(`"use strict"; return (${expression});`)();
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`no value: ${expression}`);
  return value;
}

const calculate = tool({
  description: "Evaluate an arithmetic expression (numbers, + - * /, parentheses) exactly.",
  inputSchema: jsonSchema({
    type: "object",
    properties: { expression: { type: "string" } },
    required: ["expression"],
  }),
  execute: async ({ expression }) => {
    try {
      return { value: arithmetic(expression) };
    } catch (err) {
      return { error: err.message };
    }
  },
});

const tasks = [
  {
    id: "c1",
    question: "A crate holds 24 boxes of 36 pens. How many pens are in 17 crates?",
    answer: "14688",
  },
  { id: "c2", question: "What is 15% of 2460, plus 7 times 89?", answer: "992" },
  {
    id: "c3",
    question: "A loan of 12000 gains 5% simple interest a year. What is owed after 3 years?",
    answer: "13800",
  },
  { id: "c4", question: "How many seconds are there in 6 weeks?", answer: "3628800" },
];

const tfgrpo = new TrainingFreeGRPO({
  library: "experiences/calculator-agent.json",
  learner: openAICompatible({ baseURL, apiKey, model }),
  async rollout(task, { experiences, seed, signal }) {
    const result = await generateText({
      model: provider(model),
      system:
        "Use the calculate tool for every computation, then give only the final number.\n\n" +
        `Lessons:\n${experiences.text}`,
      prompt: task.question,
      tools: { calculate },
      stopWhen: stepCountIs(6),
      temperature: 0.7,
      seed,
      abortSignal: signal,
    });
    // What the learner reads: every tool call, its result, and the final reply.
    const trajectory = result.steps
      .flatMap((step) => [
        ...step.toolCalls.map((c) => `call ${c.toolName}(${JSON.stringify(c.input)})`),
        ...step.toolResults.map((r) => `result ${JSON.stringify(r.output)}`),
        ...(step.text ? [`reply ${step.text}`] : []),
      ])
      .join("\n");
    return { output: result.text, trajectory, usage: result.totalUsage };
  },
  reward: (task, attempt) => (answersEquivalent(attempt.output.trim(), task.answer) ? 1 : 0),
});

const fit = await tfgrpo.fit(tasks, {
  epochs: 2,
  groupSize: 4,
  batchSize: 2,
  runDir: "runs/calculator-agent",
});
console.log(`learning: ${fit.status}, ${fit.library.size} lessons`);
const ab = await tfgrpo.evaluate(tasks, { k: 2, runDir: "runs/calculator-agent-eval" });
console.log(
  `Mean@2 ${ab.without.meanAtK.toFixed(3)} without the lessons, ${ab.with.meanAtK.toFixed(3)} with them`,
);
process.exitCode = fit.complete && ab.complete ? 0 : 1;
