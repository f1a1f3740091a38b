// An agent written with the plain `openai` SDK learns from its own attempts (training-free GRPO),
// then is measured with and without what it learned. Any OpenAI-compatible endpoint:
//   OPENAI_BASE_URL=https://api.deepseek.com/v1 OPENAI_API_KEY=sk-… MODEL=deepseek-chat node index.mjs

import { answersEquivalent, extractAnswer, openAICompatible, TrainingFreeGRPO } from "grpo-ts";
import OpenAI from "openai";

const baseURL = process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
const apiKey = process.env.OPENAI_API_KEY;
const model = process.env.MODEL ?? "gpt-4o-mini";
const client = new OpenAI({ baseURL, apiKey });

const questions = [
  {
    id: "q1",
    question: "A train covers 150 km in 2.5 hours. What is its average speed in km/h?",
    answer: "60",
  },
  { id: "q2", question: "How many minutes are there in 3 days?", answer: "4320" },
  { id: "q3", question: "A shirt costs $40 after a 20% discount. What was its price before?", answer: "50" },
  { id: "q4", question: "What is the sum of the integers from 1 to 40?", answer: "820" },
  {
    id: "q5",
    question: "Three pumps fill a tank in 12 hours. How many hours do 4 such pumps take?",
    answer: "9",
  },
  { id: "q6", question: "How many positive divisors does 360 have?", answer: "24" },
];

const tfgrpo = new TrainingFreeGRPO({
  library: "experiences/qa-agent.json", // the lessons, as a file you can deploy
  learner: openAICompatible({ baseURL, apiKey, model }), // the model that writes them
  async rollout(task, { experiences, seed, signal }) {
    const completion = await client.chat.completions.create(
      {
        model,
        seed,
        temperature: 0.7,
        messages: [
          {
            role: "system",
            content: `Solve the problem step by step; end with the answer in \\boxed{}.\n\nLessons:\n${experiences.text}`,
          },
          { role: "user", content: task.question },
        ],
      },
      { signal },
    );
    return { output: completion.choices[0]?.message.content ?? "", usage: completion.usage };
  },
  reward: (task, attempt) => (answersEquivalent(extractAnswer(attempt.output), task.answer) ? 1 : 0),
});

const fit = await tfgrpo.fit(questions, { epochs: 2, groupSize: 4, batchSize: 3, runDir: "runs/qa-agent" });
const tokens = fit.cost.learner.promptTokens + fit.cost.learner.completionTokens;
console.log(`learning: ${fit.status}, ${fit.library.size} lessons, ${tokens} learner tokens`);
const ab = await tfgrpo.evaluate(questions, { k: 3, runDir: "runs/qa-agent-eval" });
console.log(
  `Mean@3 ${ab.without.meanAtK.toFixed(3)} without the lessons, ${ab.with.meanAtK.toFixed(3)} with them`,
);
process.exitCode = fit.complete && ab.complete ? 0 : 1;
