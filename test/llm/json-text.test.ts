import assert from "node:assert/strict";
import { test } from "node:test";
import { extractJsonValue } from "../../src/llm/json-text.ts";

test("extractJsonValue skips braces inside strings and prose around the value", () => {
  assert.deepEqual(extractJsonValue('note {not json} then {"a": "}{", "b": [1]} end', "object"), {
    a: "}{",
    b: [1],
  });
  assert.deepEqual(extractJsonValue("x [1, 2] y", "array"), [1, 2]);
  assert.equal(extractJsonValue("no json here"), undefined);
});
