import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const ROOT = join(import.meta.dirname, "..", "..");

test('the README\'s "Use it in your code" is exactly examples/openai-agent/index.mjs', () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Use it in your code"));
  const block = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.equal(block, readFileSync(join(ROOT, "examples", "openai-agent", "index.mjs"), "utf8"));
});

test("the README keeps its two set-up commands first", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  assert.match(readme, /^# grpo-ts\n\n```sh\nnpm ci && npx grpo train theory .*\nnpm test .*\n```\n/);
});

test('the README\'s "Train your own model" is exactly examples/train-your-model/index.mjs', () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Train your own model"));
  const block = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.equal(block, readFileSync(join(ROOT, "examples", "train-your-model", "index.mjs"), "utf8"));
});
