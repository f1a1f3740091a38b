import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { graphReward } from "../../../src/recipes/causal-scaffold/graph-reward.ts";
import { readRolloutCache, scaffoldOf } from "../../../src/recipes/causal-scaffold/rollout-cache.ts";
import type { CausalEdge, Scaffold } from "../../../src/recipes/causal-scaffold/scaffold.ts";
import { SEED_ROLLOUTS, seedSkip } from "./seed-fixture.ts";

function scaffold(target: string, knowns: string[], edges: [string | string[], string, string?][]): Scaffold {
  const causal_graph: CausalEdge[] = edges.map(([cause, effect, rule]) => ({
    cause,
    effect,
    rule: rule ?? `${effect} = f()`,
  }));
  return {
    target_variable: target,
    knowns: Object.fromEntries(knowns.map((k) => [k, 1])),
    causal_graph,
    computation_plan: [],
  };
}

function close(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} ≠ ${expected}`);
}

describe("graphReward", () => {
  test("a complete chain scores 1", () => {
    const r = graphReward(
      scaffold(
        "c",
        ["a"],
        [
          ["a", "b"],
          [["b"], "c"],
        ],
      ),
    );
    assert.deepEqual(r, { total: 1, acyclic: 1, coverage: 1, ruleFraction: 1, connected: 1 });
  });

  test("a cycle loses the 0.3 acyclic term", () => {
    const r = graphReward(
      scaffold(
        "b",
        ["a"],
        [
          ["a", "b"],
          ["b", "a"],
        ],
      ),
    );
    assert.equal(r.acyclic, 0);
    close(r.total, 0.7, "total");
  });

  test("a self-loop is a cycle", () => {
    assert.equal(graphReward(scaffold("a", ["a"], [["a", "a"]])).acyclic, 0);
  });

  test("a longer cycle behind a DAG part is found", () => {
    const r = graphReward(
      scaffold(
        "e",
        ["a"],
        [
          ["a", "b"],
          ["b", "c"],
          ["c", "d"],
          ["d", "b"],
          ["d", "e"],
        ],
      ),
    );
    assert.equal(r.acyclic, 0);
  });

  test("two components: connected is the largest component's share of nodes", () => {
    // a→b and c→d: components of 2 and 2 out of 4 nodes.
    const r = graphReward(
      scaffold(
        "d",
        ["a", "c"],
        [
          ["a", "b"],
          ["c", "d"],
        ],
      ),
    );
    close(r.connected, 0.5, "connected");
    close(r.total, 0.3 + 0.2 + 0.4 + 0.05, "total");
    // a→b→c plus e→f: 3 of 5 nodes.
    close(
      graphReward(
        scaffold(
          "c",
          ["a"],
          [
            ["a", "b"],
            ["b", "c"],
            ["e", "f"],
          ],
        ),
      ).connected,
      0.6,
      "3 of 5",
    );
  });

  test("missing rules and uncovered knowns, hand-computed", () => {
    const s = scaffold(
      "x",
      ["a", "b", "c", "z"],
      [
        [["a"], "x", "x = a"],
        [["b"], "x", ""],
        [["c"], "x", "   "],
      ],
    );
    const r = graphReward(s);
    close(r.coverage, 4 / 5, "coverage: a, b, c, x of a, b, c, z, x");
    close(r.ruleFraction, 1 / 3, "one rule of three");
    close(r.total, 0.3 + 0.2 * 0.8 + 0.4 / 3 + 0.1, "total");
  });

  test("a target that is not a node lowers coverage", () => {
    const r = graphReward(scaffold("m + n", ["a"], [["a", "m_plus_n"]]));
    close(r.coverage, 0.5, "coverage");
  });

  test("an empty graph scores 0 on every term", () => {
    assert.deepEqual(graphReward(scaffold("x", ["a"], [])), {
      total: 0,
      acyclic: 0,
      coverage: 0,
      ruleFraction: 0,
      connected: 0,
    });
  });

  test("property: random graphs stay in [0, 1] and terms combine with the documented weights", () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + rng.int(8);
      const names = Array.from({ length: n }, (_, i) => `v${i}`);
      const edges: [string[], string, string][] = [];
      const m = rng.int(10);
      for (let e = 0; e < m; e++) {
        edges.push([
          [names[rng.int(n)]!, names[rng.int(n)]!],
          names[rng.int(n)]!,
          rng.next() < 0.7 ? "r" : "",
        ]);
      }
      const r = graphReward(scaffold(names[rng.int(n)]!, names.slice(0, rng.int(n)), edges));
      for (const v of Object.values(r)) assert.ok(v >= 0 && v <= 1 + 1e-12, `term out of range: ${v}`);
      if (m > 0)
        close(
          r.total,
          0.3 * r.acyclic + 0.2 * r.coverage + 0.4 * r.ruleFraction + 0.1 * r.connected,
          "total",
        );
    }
  });

  test("seed fixture: r_graph is in [0, 1] and equals the stored value for every scaffold", {
    skip: seedSkip,
  }, () => {
    let checked = 0;
    for (const problem of readRolloutCache(SEED_ROLLOUTS).problems.values()) {
      for (const rollout of problem.rollouts) {
        if (rollout.scaffold === null) continue;
        const parsed = scaffoldOf(rollout);
        assert.ok(parsed.ok, `${problem.problem_id}/${rollout.rollout_id}`);
        const r = graphReward(parsed.scaffold);
        assert.ok(r.total >= 0 && r.total <= 1);
        close(r.total, rollout.r_graph, `${problem.problem_id}/${rollout.rollout_id}`);
        checked++;
      }
    }
    assert.ok(checked >= 80, `only ${checked} scaffolds checked`);
  });
});
