import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseOperations, resolveConflicts } from "../../src/training-free/operations.ts";

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

  test("youtu-agent's vocabulary: ADD with a null id, UPDATE is modify, NONE is no operation", () => {
    const { ops, warnings } = parseOperations(
      JSON.stringify([
        { operation: "ADD", id: null, content: "Units: keep them." },
        { operation: "UPDATE", id: "L-002", content: "Plan: write it first." },
        { operation: "NONE", id: null, content: "Covered already." },
        { operation: "Delete", id: "L-003" },
        { operation: "UPDATE", content: "no id" },
      ]),
    );
    assert.deepEqual(ops, [
      { operation: "add", content: "Units: keep them." },
      { operation: "modify", id: "L-002", content: "Plan: write it first." },
      { operation: "delete", id: "L-003" },
    ]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^operation \[4\] ignored: id/);
  });
});

describe("merging a batch's operations", () => {
  test("a DELETE of an id wins over every UPDATE of it; of several UPDATEs the last stands; ADDs stay", () => {
    const out = resolveConflicts([
      { operation: "modify", id: "A", content: "a1" },
      { operation: "add", content: "new" },
      { operation: "modify", id: "B", content: "b1" },
      { operation: "delete", id: "A" },
      { operation: "modify", id: "B", content: "b2" },
      { operation: "modify", id: "A", content: "a2" },
      { operation: "delete", id: "A" },
    ]);
    assert.deepEqual(out, [
      { operation: "add", content: "new" },
      { operation: "delete", id: "A" },
      { operation: "modify", id: "B", content: "b2" },
    ]);
  });
});
