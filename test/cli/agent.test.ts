import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { generateInbox } from "../../src/recipes/email/inbox.ts";
import { EMAIL_INBOX } from "../../src/recipes/email/presets.ts";

const root = join(import.meta.dirname, "..", "..");

function help(...command: string[]): string {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", join(root, "src/cli/main.ts"), ...command, "--help"],
    {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/\s+/g, " ");
}

describe("the email commands' help", () => {
  it("asks grpo agent a question that the example's inbox holds", () => {
    for (const text of [help("agent"), help("train", "email")]) {
      const m = /grpo agent --model \S+ --seed (\d+) --question "([^"]+)"/.exec(text);
      assert.ok(m, text);
      const seed = Number(m[1]);
      const { questions } = generateInbox(new Rng(seed), `inbox-${seed}`, EMAIL_INBOX);
      assert.ok(
        questions.some((q) => q.question === m[2]),
        `"${m[2]}" is not a question of inbox ${seed}: ${questions.map((q) => q.question).join(", ")}`,
      );
    }
  });

  it("train email describes the tokenizer as it is, with capitalised option descriptions", () => {
    const text = help("train", "email");
    assert.doesNotMatch(text, /character-level/);
    const options = text.slice(text.indexOf("Options:"));
    const own = [
      "--mode",
      "--sft-steps",
      "--eval-every",
      "--max-turn-tokens",
      "--lora-rank",
      "--max-steps",
      "--seed",
    ];
    for (const flag of own) {
      const m = new RegExp(`${flag} (?:<[^>]+> )?([A-Za-z])`).exec(options);
      assert.ok(m, flag);
      assert.match(m[1]!, /[A-Z]/, `${flag}'s description starts with a lower-case letter`);
    }
  });
});
