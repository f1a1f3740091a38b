import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { answerToNumber } from "../../src/data/answers.ts";
import { loadDataset, loadDatasetConfig, loadProblemsFile } from "../../src/data/datasets.ts";
import { FileFormatError } from "../../src/io/files.ts";
import { tempDirs } from "../helpers/tmp.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const exampleConfig = join(repoRoot, "examples/dataset_config.json");
const dir = tempDirs("grpo-datasets-")();

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("loadProblemsFile", () => {
  test("JSONL with mixed field spellings and generated ids", () => {
    const path = write(
      "mixed.jsonl",
      [
        JSON.stringify({ problem_id: "p1", question: "Q1?", ground_truth: "1" }),
        JSON.stringify({ ID: 7, Problem: "Q2?", Answer: 2 }),
        "",
        JSON.stringify({ problem_text: "Q3?", solution_answer: "\\frac{1}{2}" }),
      ].join("\n"),
    );
    const problems = loadProblemsFile(path, "mix");
    assert.deepEqual(problems, [
      { id: "p1", text: "Q1?", answer: "1", source: "mix" },
      { id: "7", text: "Q2?", answer: "2", source: "mix" },
      { id: "mix_003", text: "Q3?", answer: "\\frac{1}{2}", source: "mix" },
    ]);
  });

  test("JSON array and {problems: [...]}", () => {
    const a = write("arr.json", JSON.stringify([{ text: "T", answer: "4" }]));
    const b = write("obj.json", JSON.stringify({ problems: [{ id: "x", problem: "P", answer: "5" }] }));
    assert.deepEqual(loadProblemsFile(a, "arr"), [{ id: "arr_001", text: "T", answer: "4", source: "arr" }]);
    assert.deepEqual(loadProblemsFile(b, "obj"), [{ id: "x", text: "P", answer: "5", source: "obj" }]);
  });

  test("a malformed JSONL line names the file and line", () => {
    const path = write(
      "bad.jsonl",
      `${JSON.stringify({ problem: "ok", answer: "1" })}\n{not json\n{"x": 1}\n`,
    );
    assert.throws(
      () => loadProblemsFile(path, "bad"),
      (err: unknown) => err instanceof FileFormatError && err.file === path && err.line === 2,
    );
  });

  test("a missing field names the file, line and field", () => {
    const path = write(
      "noanswer.jsonl",
      `${JSON.stringify({ problem: "ok", answer: "1" })}\n${JSON.stringify({ problem: "no answer" })}\n`,
    );
    assert.throws(
      () => loadProblemsFile(path, "noanswer"),
      (err: unknown) =>
        err instanceof FileFormatError &&
        err.line === 2 &&
        (err.field ?? "").includes("answer") &&
        err.message.includes(path),
    );
  });

  test("an id that is an object (or empty) is an error naming the field, never replaced by a made-up one", () => {
    const path = write(
      "objid.jsonl",
      `${JSON.stringify({ id: "ok", problem: "A", answer: "1" })}\n${JSON.stringify({ id: { n: 2 }, problem: "B", answer: "2" })}\n`,
    );
    assert.throws(
      () => loadProblemsFile(path, "objid"),
      (err: unknown) =>
        err instanceof FileFormatError &&
        err.line === 2 &&
        err.field === "id" &&
        /must be a non-empty string or a number, got \{"n":2\}/.test(err.message),
    );
    const empty = write("emptyid.json", JSON.stringify([{ problem_id: " ", problem: "A", answer: "1" }]));
    assert.throws(() => loadProblemsFile(empty, "e"), /field problem_id/);
  });

  test("a JSON file without a problems list is rejected", () => {
    const path = write("wrong.json", JSON.stringify({ items: [] }));
    assert.throws(() => loadProblemsFile(path, "wrong"), FileFormatError);
  });
});

describe("dataset config", () => {
  test("a missing config says how to create it", () => {
    const missing = join(dir, "nope/dataset_config.json");
    assert.throws(
      () => loadDatasetConfig(missing),
      (err: unknown) =>
        err instanceof Error &&
        err.message.includes(missing) &&
        err.message.includes("examples/dataset_config.json"),
    );
  });

  test("paths resolve relative to the config; 'full' loads everything; unknown names list known ones", () => {
    write("one.jsonl", `${JSON.stringify({ problem: "A", answer: "1" })}\n`);
    write(
      "two.json",
      JSON.stringify([
        { problem: "B", answer: "2" },
        { problem: "C", answer: "3" },
      ]),
    );
    const configPath = write(
      "dataset_config.json",
      JSON.stringify({ datasets: { one: { path: "one.jsonl" }, two: { path: "two.json", format: "json" } } }),
    );
    const config = loadDatasetConfig(configPath);
    assert.deepEqual(
      loadDataset("full", config, configPath).map((p) => p.id),
      ["one_001", "two_001", "two_002"],
    );
    assert.deepEqual(
      loadDataset(["two"], config, configPath).map((p) => p.text),
      ["B", "C"],
    );
    assert.throws(
      () => loadDataset("three", config, configPath),
      (err: unknown) =>
        err instanceof Error && /unknown dataset "three"/.test(err.message) && /one, two/.test(err.message),
    );
  });

  test("one id for two different problems is an error; the same problem listed twice is not", () => {
    write("d1.jsonl", `${JSON.stringify({ id: "p1", problem: "A", answer: "1" })}\n`);
    write("d2.jsonl", `${JSON.stringify({ id: "p1", problem: "Another text", answer: "2" })}\n`);
    write("d3.jsonl", `${JSON.stringify({ id: "p1", problem: "A", answer: "1" })}\n`);
    const configPath = write(
      "dup_config.json",
      JSON.stringify({
        datasets: { d1: { path: "d1.jsonl" }, d2: { path: "d2.jsonl" }, d3: { path: "d3.jsonl" } },
      }),
    );
    const config = loadDatasetConfig(configPath);
    assert.throws(
      () => loadDataset(["d1", "d2"], config, configPath),
      /problem id "p1" is used for two different problems \(data sets d1 and d2\)/,
    );
    assert.equal(loadDataset(["d1", "d3"], config, configPath).length, 2);
  });

  test("a config with a bad field names it", () => {
    const configPath = write("bad_config.json", JSON.stringify({ datasets: { a: { path: 3 } } }));
    assert.throws(
      () => loadDatasetConfig(configPath),
      (err: unknown) => err instanceof FileFormatError && err.field === "datasets.a.path",
    );
  });

  test("the shipped examples load and their answers are numeric", () => {
    const config = loadDatasetConfig(exampleConfig);
    const problems = loadDataset("full", config, exampleConfig);
    assert.equal(problems.filter((p) => p.source === "toy-math").length, 8);
    assert.equal(problems.filter((p) => p.source === "toy-physics").length, 5);
    assert.equal(new Set(problems.map((p) => p.id)).size, problems.length);
    for (const p of problems) assert.notEqual(answerToNumber(p.answer), null, `${p.id}: ${p.answer}`);
  });
});
