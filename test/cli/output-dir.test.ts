import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirs } from "../helpers/tmp.ts";

const root = join(import.meta.dirname, "..", "..");
const tmp = tempDirs("grpo-cli-outdir-");

function grpo(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe("an output directory that cannot be written", () => {
  for (const recipe of ["theory", "email"]) {
    it(`stops grpo train ${recipe} before any work`, () => {
      const file = join(tmp(), "outputs");
      writeFileSync(file, "");
      // the email recipe would first spend its 1000-step warm start
      const r = grpo(["train", recipe, "--output-dir", file, "--backend", "cpu"]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, new RegExp(`grpo: --output-dir ${file}: is a file, not a directory`));
      assert.doesNotMatch(r.out, /warm start|Step \d/);
    });
  }
});
