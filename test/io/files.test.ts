import assert from "node:assert/strict";
import { appendFileSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { appendJsonl, appendJsonlWhole, repairJsonlTail } from "../../src/io/files.ts";
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

test("appendJsonlWhole cuts a torn tail left by another writer, including one in a replaced file of the same size", () => {
  const p = join(tmp(), "w", "a.jsonl");
  appendJsonlWhole(p, { a: 1 });
  appendJsonlWhole(p, { b: 2 });
  assert.equal(readFileSync(p, "utf8"), '{"a":1}\n{"b":2}\n');
  // Another writer killed mid-line: the file grew, so its end is looked at before the next line.
  appendFileSync(p, '{"c":');
  appendJsonlWhole(p, { d: 4 });
  assert.equal(readFileSync(p, "utf8"), '{"a":1}\n{"b":2}\n{"d":4}\n');
  // The file replaced by one of exactly the size the last append left, ending mid-line.
  const size = readFileSync(p).length;
  const torn = `{"e":5}\n{"f":${"6".repeat(size - 13)}`;
  assert.equal(Buffer.byteLength(torn), size);
  writeFileSync(`${p}.new`, torn);
  renameSync(`${p}.new`, p);
  appendJsonlWhole(p, { g: 7 });
  assert.equal(readFileSync(p, "utf8"), '{"e":5}\n{"g":7}\n');
  // Removed: made again from the first line.
  rmSync(p);
  appendJsonlWhole(p, { h: 8 });
  appendJsonlWhole(p, { i: 9 });
  assert.equal(readFileSync(p, "utf8"), '{"h":8}\n{"i":9}\n');
});
