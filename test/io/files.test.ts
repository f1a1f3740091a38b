import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { appendJsonl, repairJsonlTail } from "../../src/io/files.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("io-files-");

test("repairJsonlTail cuts a torn last line and leaves whole files and empty ones alone", () => {
  const p = join(tmp(), "a.jsonl");
  writeFileSync(p, '{"a":1}\n{"b":');
  assert.equal(repairJsonlTail(p), true);
  assert.equal(readFileSync(p, "utf8"), '{"a":1}\n');
  assert.equal(repairJsonlTail(p), false);
  assert.equal(readFileSync(p, "utf8"), '{"a":1}\n');
  writeFileSync(p, "");
  assert.equal(repairJsonlTail(p), false);
  writeFileSync(p, '{"only": "torn"');
  assert.equal(repairJsonlTail(p), true);
  assert.equal(readFileSync(p, "utf8"), "");
  assert.equal(repairJsonlTail(join(tmp(), "missing.jsonl")), false);
});

test("appendJsonl makes a missing directory, and makes it again when it is removed mid-run", () => {
  const dir = join(tmp(), "run", "nested");
  const p = join(dir, "a.jsonl");
  appendJsonl(p, { a: 1 });
  appendJsonl(p, { b: 2 });
  assert.equal(readFileSync(p, "utf8"), '{"a":1}\n{"b":2}\n');
  rmSync(join(dir, ".."), { recursive: true });
  appendJsonl(p, { c: 3 });
  assert.equal(readFileSync(p, "utf8"), '{"c":3}\n');
});
