import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { writeJsonAtomic } from "../../src/io/files.ts";
import { TheoryArchive } from "../../src/recipes/theory/archive.ts";
import { renderReport } from "../../src/report/html.ts";
import { loadRun } from "../../src/report/load.ts";
import { HOSTILE, tempDir, writeParametricRun } from "./fixtures.ts";

const SM = "(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,+6)";

test("a theory run's report lists every theory found, with its counts, first step and origin", () => {
  const dir = writeParametricRun(join(tempDir("theories"), "theory"), 4);
  const a = new TheoryArchive(1000);
  a.addDemonstrations([SM]);
  a.record([SM, SM, "(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,0) (1,1,+6)", HOSTILE], 2, "train");
  a.record([SM], 4, "eval");
  writeJsonAtomic(join(dir, "theories.json"), a.save());
  const run = loadRun(dir);
  assert.deepEqual(run.problems, []);
  const html = renderReport([run]);
  assert.match(html, /<h4>Theories found<\/h4>/);
  assert.match(
    html,
    /3 distinct valid \(anomaly-free, non-trivial\) theories, 2 of them not among the demonstrations \(which held 1\); 0\.3% of the 1000 the grammar allows; 2 distinct chiral cores/,
  );
  // Most sampled first: the demonstrated SM, 2 training samples and 1 at evaluation, from step 2.
  const rows = [
    ...html.matchAll(
      /<tr><td><code>(.*?)<\/code><\/td><td>(\d+)<\/td><td>(\d+)<\/td><td>(\d+)<\/td><td>(yes|no)<\/td><\/tr>/g,
    ),
  ];
  assert.equal(rows.length, 3);
  assert.deepEqual(rows[0]!.slice(1), [SM, "2", "1", "2", "yes"]);
  assert.equal(rows[1]![5], "no");
  assert.ok(!html.includes(HOSTILE), "file contents are escaped");
});

test("a run without theories.json has no table; a broken one is listed as unreadable", () => {
  const plain = writeParametricRun(join(tempDir("theories"), "plain"), 2);
  assert.ok(!renderReport([loadRun(plain)]).includes("Theories found"));
  const broken = writeParametricRun(join(tempDir("theories"), "broken"), 2);
  writeFileSync(
    join(broken, "theories.json"),
    JSON.stringify({ version: 1, demonstrations: {}, theories: [{}] }),
  );
  const run = loadRun(broken);
  assert.equal(run.problems.length, 1);
  assert.equal(run.problems[0]!.file, "theories.json");
  assert.match(run.problems[0]!.reason, /field theories\.0\.theory/);
});
