import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ScaffoldSchema } from "../../../src/recipes/causal-scaffold/scaffold.ts";
import { parseLooseLiteral, parseScaffold } from "../../../src/recipes/causal-scaffold/scaffold-parse.ts";

const minimal = {
  target_variable: "x",
  knowns: { a: 2 },
  causal_graph: [{ cause: ["a"], effect: "x", rule: "x = a * 3" }],
  computation_plan: [{ id: "step1", target: "x", inputs: ["a"], description: "triple a" }],
};

function ok(text: Parameters<typeof parseScaffold>[0]) {
  const r = parseScaffold(text);
  if (!r.ok) assert.fail(`expected a scaffold, got error: ${r.error}`);
  return r.scaffold;
}

describe("ScaffoldSchema", () => {
  test("coerces numeric names, a single cause string, a missing rule and list knowns", () => {
    const s = ScaffoldSchema.parse({
      target_variable: 5,
      knowns: [{ name: "a", value: 1 }, "b"],
      causal_graph: [{ cause: "a", effect: 5, rule: null }],
      computation_plan: [{ target: "5", inputs: "a", description: null }],
    });
    assert.equal(s.target_variable, "5");
    assert.deepEqual(s.knowns, { a: 1, b: null });
    assert.deepEqual(s.causal_graph, [{ cause: "a", effect: "5", rule: "" }]);
    assert.deepEqual(s.computation_plan, [{ id: "step1", target: "5", inputs: ["a"], description: "" }]);
  });

  test("keeps optional and extra fields", () => {
    const s = ScaffoldSchema.parse({
      ...minimal,
      chosen_strategy: "direct",
      expected_answer_type: "integer",
    });
    assert.equal(s.chosen_strategy, "direct");
    assert.equal((s as unknown as Record<string, unknown>).expected_answer_type, "integer");
  });

  test("rejects a scaffold without a target or with a malformed graph", () => {
    assert.equal(ScaffoldSchema.safeParse({ ...minimal, target_variable: undefined }).success, false);
    assert.equal(ScaffoldSchema.safeParse({ ...minimal, causal_graph: [{ effect: "x" }] }).success, false);
    assert.equal(ScaffoldSchema.safeParse({ ...minimal, causal_graph: "a -> x" }).success, false);
  });
});

describe("parseLooseLiteral", () => {
  test("Python literals: quotes, escapes, None/True/False, tuples, trailing commas", () => {
    const v = parseLooseLiteral(
      `{'a': 'it\\'s', "b": "say \\"hi\\"", 'c': None, 'd': True, 'e': False, 'f': (1, 2,), 'g': [-1.5e2, ], 'h': '\\\\frac{1}{2}', 'i': '\\frac', 'j': 'x\\ny',}`,
    );
    assert.deepEqual(v, {
      a: "it's",
      b: 'say "hi"',
      c: null,
      d: true,
      e: false,
      f: [1, 2],
      g: [-150],
      h: "\\frac{1}{2}",
      i: "\\frac",
      j: "x\ny",
    });
  });

  test("JSON with comments", () => {
    assert.deepEqual(parseLooseLiteral('{\n  // why\n  "a": 1, /* block */ "b": [2] # tail\n}'), {
      a: 1,
      b: [2],
    });
  });
});

describe("parseScaffold", () => {
  test("plain JSON and objects", () => {
    assert.deepEqual(ok(JSON.stringify(minimal)), minimal);
    assert.deepEqual(ok(minimal), minimal);
  });

  test("```json fences with prose around them", () => {
    const text = `Here is my scaffold:\n\`\`\`json\n${JSON.stringify(minimal, null, 2)}\n\`\`\`\nI hope it's right {maybe}.`;
    assert.deepEqual(ok(text), minimal);
  });

  test("prose around a bare object; the scaffold is chosen over smaller objects", () => {
    const text = `Note {x} first. Then ${JSON.stringify(minimal)} and finally {"unrelated": 1}.`;
    assert.deepEqual(ok(text), minimal);
  });

  test("the last fenced block wins over an earlier draft", () => {
    const draft = { ...minimal, target_variable: "draft" };
    const text = `\`\`\`json\n${JSON.stringify(draft)}\n\`\`\`\nrevised:\n\`\`\`\n${JSON.stringify(minimal)}\n\`\`\``;
    assert.equal(ok(text).target_variable, "x");
  });

  test("Python dict literal with {'ref': ...} inputs", () => {
    const text =
      "{'target_variable': 'y', 'knowns': {'a': 1, 'b': '1/2'}, 'causal_graph': [{'cause': ['a', 'b'], 'effect': 'y', 'rule': \"y = a + b  # 'sum'\"}], 'computation_plan': [{'id': 'step1', 'target': 'y', 'inputs': ['a', {'ref': 'step0'}], 'description': 'add'}], 'final_answer': None}";
    const s = ok(text);
    assert.equal(s.causal_graph[0]!.rule, "y = a + b  # 'sum'");
    assert.deepEqual(s.computation_plan[0]!.inputs, ["a", { ref: "step0" }]);
    assert.equal(s.final_answer, null);
  });

  test("JSON with comments and trailing commas inside a fence", () => {
    const text =
      '```json\n{"target_variable": "x", // target\n "knowns": {"a": 1,},\n "causal_graph": [], "computation_plan": [],}\n```';
    assert.equal(ok(text).target_variable, "x");
  });

  test("garbage never throws and explains", () => {
    const inputs: Parameters<typeof parseScaffold>[0][] = [
      null,
      undefined,
      "",
      "   ",
      "no braces here",
      "{ unclosed",
      "{'a': }",
      "[1, 2, 3]",
      '{"target_variable": "x"}',
      "{".repeat(5000) + "}".repeat(5000),
      "[".repeat(50000),
      { knowns: {} },
      [] as unknown as object,
      42 as unknown as string,
    ];
    for (const input of inputs) {
      const r = parseScaffold(input);
      assert.equal(r.ok, false, `should fail: ${String(input).slice(0, 40)}`);
      if (!r.ok) assert.ok(r.error.length > 0);
    }
  });

  test("a schema problem is reported with its field", () => {
    const r = parseScaffold(JSON.stringify({ ...minimal, causal_graph: [{ cause: "a", rule: "x" }] }));
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, /causal_graph\.0\.effect/);
  });
});
