import assert from "node:assert/strict";
import { test } from "node:test";
import { fnv1a, Rng } from "../../src/core/rng.ts";

test("fnv1a gives the published FNV-1a 32-bit values", () => {
  // Test vectors of the FNV reference (offset basis 0x811c9dc5, prime 0x01000193).
  assert.equal(fnv1a(""), 0x811c9dc5);
  assert.equal(fnv1a("a"), 0xe40c292c);
  assert.equal(fnv1a("foobar"), 0xbf9cf968);
});

test("fnv1a stays unsigned and stable over many strings (the optimised path included)", () => {
  // Enough calls for V8 to optimise the loop; every value must match a straightforward
  // reference that works in doubles.
  const reference = (s: string) => {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Number((BigInt(h >>> 0) * 16777619n) % 4294967296n);
    }
    return h >>> 0;
  };
  for (let k = 0; k < 20_000; k++) {
    const s = `${k}\u0000problem-${k * 7}\u0000${k % 3}`;
    const h = fnv1a(s);
    assert.ok(h >= 0 && h < 2 ** 32);
    if (k % 97 === 0) assert.equal(h, reference(s), s);
  }
});

test("an Rng seeded from a name repeats its sequence", () => {
  const a = new Rng(fnv1a("critic"));
  const b = new Rng(fnv1a("critic"));
  const c = new Rng(fnv1a("generator_1"));
  const xs = [a.next(), a.next(), a.next()];
  assert.deepEqual([b.next(), b.next(), b.next()], xs);
  assert.notDeepEqual([c.next(), c.next(), c.next()], xs);
});
