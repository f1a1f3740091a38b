import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Command } from "commander";
import { capitalize, firstSentence, wrapText } from "../../src/cli/help.ts";
import { buildProgram } from "../../src/cli/program.ts";

/** Every command, with its path ("train theory"), groups of commands ("train") included. */
function leaves(cmd: Command, path: string[] = []): { path: string; cmd: Command }[] {
  const self = path.length > 0 ? [{ path: path.join(" "), cmd }] : [];
  if (cmd.commands.length === 0) return self;
  return [
    ...self,
    ...cmd.commands.filter((c) => c.name() !== "help").flatMap((c) => leaves(c, [...path, c.name()])),
  ];
}

function helpAt(cmd: Command, columns: number): string {
  const saved = process.env.COLUMNS;
  process.env.COLUMNS = String(columns);
  try {
    return cmd.helpInformation();
  } finally {
    if (saved === undefined) delete process.env.COLUMNS;
    else process.env.COLUMNS = saved;
  }
}

describe("every command's --help", () => {
  const commands = leaves(buildProgram());

  test("lists the commands a person can run", () => {
    assert.ok(commands.length >= 12, commands.map((c) => c.path).join(", "));
    assert.ok(commands.some((c) => c.path === "merge-shards"));
  });

  for (const { path, cmd } of commands) {
    test(`grpo ${path}: an example on data that ships, text wrapped to the width, capitals`, () => {
      let after = "";
      cmd.configureOutput({ writeOut: (s) => (after += s) });
      cmd.outputHelp();
      const examples = after.split(/\nExamples?:\n/)[1] ?? "";
      assert.match(examples, new RegExp(`^ {2}grpo ${path}\\b`, "m"), `${path} shows an example`);
      assert.doesNotMatch(after, /aime2024/, "examples use toy-math / toy-physics, which ship");
      // commander's part (usage, description, options) fits; the examples after it are commands to paste
      const body = helpAt(cmd, 80);
      for (const line of body.split("\n")) assert.ok(line.length <= 80, `${line.length} > 80: ${line}`);
      const helper = cmd.createHelp();
      assert.match(cmd.description(), /^[A-Z]/, "the description starts with a capital");
      for (const o of helper.visibleOptions(cmd)) {
        assert.doesNotMatch(helper.optionDescription(o), /^[a-z]/, `${o.flags}: capital`);
      }
    });
  }
});

describe("help layout", () => {
  test("prose is reflowed, lists and table rows hang under their own column", () => {
    assert.equal(
      wrapText("one two three\nfour five six seven\n\n  name  a description that runs long", 20),
      "one two three four\nfive six seven\n\n  name  a\n        description\n        that runs\n        long",
    );
    assert.equal(capitalize("completions per prompt"), "Completions per prompt");
    assert.equal(capitalize("--epsilon as well"), "--epsilon as well");
    assert.equal(
      firstSentence("Run one generator: rollouts.\nAppends lines. More."),
      "Run one generator: rollouts.",
    );
  });
});
