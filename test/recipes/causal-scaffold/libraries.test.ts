import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  ExperienceManager,
  LIBRARY_OWNERS,
  libraryIdentity,
} from "../../../src/recipes/causal-scaffold/libraries.ts";
import { ExperienceLibrary } from "../../../src/training-free/experience-library.ts";
import { tempDirs } from "../../helpers/tmp.ts";

const tmp = tempDirs("causal-scaffold-libraries-");

describe("the solver's libraries", () => {
  test("each owner numbers its lessons with its own prefix", () => {
    assert.equal(ExperienceLibrary.empty("x", libraryIdentity("critic")).nextId(), "C-001");
    assert.equal(ExperienceLibrary.empty("x", libraryIdentity("shared")).nextId(), "S-001");
    assert.equal(ExperienceLibrary.empty("x", libraryIdentity("generator_1")).nextId(), "G1-001");
    assert.equal(ExperienceLibrary.empty("x", libraryIdentity("generator_2")).nextId(), "G2-001");
  });

  test("resetAll backs up existing libraries and leaves empty ones for every owner", () => {
    const dir = tmp();
    const mgr = new ExperienceManager({ workdir: dir });
    const g1 = mgr.library("generator_1");
    g1.apply([{ operation: "add", content: "keep me safe" }], { problemId: "p" });
    g1.save();
    const backup = mgr.resetAll(new Date("2026-02-03T04:05:06.789Z"));
    assert.ok(backup?.endsWith(join("backups", "2026-02-03T04-05-06-789Z")));
    assert.deepEqual(readdirSync(backup!), ["generator_1_experiences.json"]);
    assert.match(readFileSync(join(backup!, "generator_1_experiences.json"), "utf8"), /keep me safe/);
    for (const o of LIBRARY_OWNERS) {
      assert.ok(existsSync(mgr.path(o)));
      assert.equal(mgr.reload(o).entries().length, 0);
    }
    assert.equal(new ExperienceManager({ workdir: tmp() }).resetAll(), undefined, "nothing to back up");
  });
});
