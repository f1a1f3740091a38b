import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { register } from "../../src/cli/commands/demo.ts";

describe("grpo demo", () => {
  it("registers a command with help", () => {
    const program = new Command();
    register(program);
    const demo = program.commands.find((c) => c.name() === "demo");
    assert.ok(demo);
    for (const flag of [
      "--steps",
      "--group-size",
      "--prompts-per-step",
      "--lr",
      "--seed",
      "--beta",
      "--loss-type",
      "--scale-rewards",
    ]) {
      assert.ok(
        demo.options.some((o) => o.long === flag),
        flag,
      );
    }
  });
});
