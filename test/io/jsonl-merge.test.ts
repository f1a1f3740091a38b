import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { mergeJsonl } from "../../src/io/jsonl-merge.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-jsonl-merge-");
const byId = (r: unknown) => (r as { id?: string }).id;

describe("mergeJsonl", () => {
  it("keeps each key at its first position with its last line, byte for byte", () => {
    const dir = tmp();
    const a = join(dir, "a.jsonl");
    const b = join(dir, "b.jsonl");
    writeFileSync(a, '{"id":"p1","v":1}\n{"id":"p2","v":1}\n');
    writeFileSync(b, '{"id":"p3","v":2}\n{"id":"p1",  "v":2}\n{"id":"p2","v":2}\n{"id":"p1","v":3}\n');
    const out = join(dir, "out.jsonl");
    const r = mergeJsonl([a, join(dir, "missing.jsonl"), b], out, byId);
    assert.equal(readFileSync(out, "utf8"), '{"id":"p1","v":3}\n{"id":"p2","v":2}\n{"id":"p3","v":2}\n');
    assert.deepEqual(r, { keys: 3, lines: 6, torn: [] });
    // merging into one of the sources gives the same file again
    mergeJsonl([out, b], out, byId);
    assert.equal(readFileSync(out, "utf8"), '{"id":"p1","v":3}\n{"id":"p2","v":2}\n{"id":"p3","v":2}\n');
  });

  it("skips a torn last line and names a bad line or a line without a key", () => {
    const dir = tmp();
    const torn = join(dir, "torn.jsonl");
    writeFileSync(torn, '{"id":"p1"}\n{"id":"p2"');
    const r = mergeJsonl([torn], join(dir, "out.jsonl"), byId);
    assert.deepEqual(r.torn, [torn]);
    assert.equal(r.keys, 1);
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"id":"p1"}\n{oops\n{"id":"p3"}\n');
    assert.throws(() => mergeJsonl([bad], join(dir, "o2.jsonl"), byId), new RegExp(`${bad}:2`));
    const keyless = join(dir, "keyless.jsonl");
    writeFileSync(keyless, '{"id":"p1"}\n{"other":1}\n');
    assert.throws(() => mergeJsonl([keyless], join(dir, "o3.jsonl"), byId), /keyless\.jsonl:2.*no key/);
  });
});
