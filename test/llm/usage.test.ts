import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { emptyByKind, emptyUsage, type UsageStats } from "../../src/llm/client.ts";
import { summarizeUsage, writeUsageSummary } from "../../src/llm/usage.ts";
import { tempDirs } from "../helpers/tmp.ts";

function stats(over: Partial<UsageStats>): UsageStats {
  return { agent: "generator_1", model: "m", ...emptyUsage(), ...over };
}

const a = stats({
  calls: 3,
  failedCalls: 1,
  retries: 2,
  promptTokens: 100,
  completionTokens: 40,
  costUSD: 0.25,
  byKind: { ...emptyByKind(), rate_limit: 2, server: 1 },
});
const b = stats({
  agent: "critic",
  model: "judge",
  calls: 1,
  promptTokens: 10,
  completionTokens: 5,
  costUSD: 0.5,
  byKind: { ...emptyByKind(), schema: 1 },
});
const a2 = stats({
  model: "m2",
  calls: 2,
  promptTokens: 1,
  completionTokens: 1,
  byKind: { ...emptyByKind(), server: 4 },
});

describe("summarizeUsage", () => {
  it("adds per agent and in total", () => {
    const s = summarizeUsage([a, b, a2]);
    assert.deepEqual(Object.keys(s.perAgent).sort(), ["critic", "generator_1"]);
    const g1 = s.perAgent.generator_1!;
    assert.equal(g1.calls, 5);
    assert.equal(g1.promptTokens, 101);
    assert.equal(g1.completionTokens, 41);
    assert.equal(g1.byKind.server, 5);
    assert.equal(g1.model, "m, m2");
    assert.deepEqual(s.perAgent.critic, b);
    assert.equal(s.total.calls, 6);
    assert.equal(s.total.failedCalls, 1);
    assert.equal(s.total.retries, 2);
    assert.equal(s.total.promptTokens, 111);
    assert.equal(s.total.completionTokens, 46);
    assert.equal(s.total.costUSD, 0.75);
    assert.deepEqual(s.total.byKind, { ...emptyByKind(), rate_limit: 2, server: 5, schema: 1 });
  });

  it("does not modify its inputs", () => {
    const before = JSON.stringify(a);
    summarizeUsage([a, a]);
    assert.equal(JSON.stringify(a), before);
  });

  it("is all zeros for no stats", () => {
    const s = summarizeUsage([]);
    assert.deepEqual(s.perAgent, {});
    assert.equal(s.total.calls, 0);
    assert.equal(s.total.costUSD, 0);
  });
});

describe("writeUsageSummary", () => {
  const dir = tempDirs("grpo-llm-usage-")();

  it("writes the summary as JSON and leaves no temp file", () => {
    const path = join(dir, "sub", "usage.json");
    writeUsageSummary(path, [a, b]);
    const back = JSON.parse(readFileSync(path, "utf8"));
    assert.deepEqual(back, summarizeUsage([a, b]));
    assert.deepEqual(readdirSync(join(dir, "sub")), ["usage.json"]);
  });
});
