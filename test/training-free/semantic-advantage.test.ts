import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseOperations } from "../../src/training-free/semantic-advantage.ts";

describe("parsing extraction replies", () => {
  test("a JSON list in prose or a code fence; bad entries dropped with a warning", () => {
    const text =
      'Here you go:\n```json\n[{"operation": "add", "content": "x"}, {"operation": "explode"}, {"operation": "keep"}]\n```';
    const { ops, warnings } = parseOperations(text);
    assert.deepEqual(ops, [{ operation: "add", content: "x" }]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /^operation \[1\] ignored/);
    assert.match(warnings[1]!, /^operation \[2\] ignored: id/);
    assert.deepEqual(parseOperations("[]").ops, []);
  });

  test("a reply without a list throws so the client retries it", () => {
    assert.throws(() => parseOperations('{"operation": "add"}'), /no JSON list/);
    assert.throws(() => parseOperations("nothing to learn"), /no JSON list/);
  });
});
