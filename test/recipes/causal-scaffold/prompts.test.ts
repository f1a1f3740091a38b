import assert from "node:assert/strict";
import { test } from "node:test";
import { PROMPT_NAMES, PromptSet, renderTemplate } from "../../../src/recipes/causal-scaffold/prompts.ts";

test("templates: placeholders filled, a missing value is an error, every built-in prompt loads", () => {
  assert.equal(renderTemplate("a {{x}} b {{ y }}", { x: 1, y: "two" }), "a 1 b two");
  assert.throws(
    () => renderTemplate("{{missing}}", {}, "judge"),
    /prompt judge: no value for placeholder \{\{missing\}\}/,
  );
  const prompts = new PromptSet();
  for (const name of PROMPT_NAMES) assert.match(prompts.template(name), /^TASK: [A-Z ]+\n/);
});
