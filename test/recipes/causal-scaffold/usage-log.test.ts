import assert from "node:assert/strict";
import { existsSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { test } from "node:test";
import { runSummaryPath } from "../../../src/recipes/causal-scaffold/paths.ts";
import { recordRunUsage } from "../../../src/recipes/causal-scaffold/usage-log.ts";
import { makeEngine, makeWorkdir } from "./harness.ts";

test("run summary: runs in order, usage added per agent, a stale lock from a killed process is taken over", () => {
  const wd = makeWorkdir("http://127.0.0.1:9/v1");
  try {
    const base = makeEngine("http://127.0.0.1:9/v1", wd.dir).clients;
    const lock = `${runSummaryPath(wd.dir)}.lock`;
    mkdirSync(dirname(lock), { recursive: true });
    writeFileSync(lock, "");
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    recordRunUsage(
      wd.dir,
      "generator_1",
      new Date(),
      [{ ...base.generator_1.stats(), calls: 3, promptTokens: 30 }],
      new Date(1000),
    );
    const s = recordRunUsage(
      wd.dir,
      "critic",
      new Date(),
      [
        { ...base.critic.stats(), calls: 2, promptTokens: 5 },
        { ...base.generator_1.stats(), calls: 1, promptTokens: 4 },
      ],
      new Date(2000),
    );
    assert.deepEqual(
      s.runs.map((r) => r.command),
      ["generator_1", "critic"],
    );
    assert.equal(s.usage.perAgent.generator_1!.calls, 4);
    assert.equal(s.usage.perAgent.generator_1!.promptTokens, 34);
    assert.equal(s.usage.perAgent.critic!.calls, 2);
    assert.equal(s.usage.total.calls, 6);
    assert.equal(existsSync(lock), false, "lock released");
  } finally {
    wd.cleanup();
  }
});
