import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Vocab } from "../../src/model/tokenizer.ts";

describe("Vocab", () => {
  it("word mode: specials first, encode/decode round trip", () => {
    const v = new Vocab(["SU3", "SU2", "U1", "(", ")"], { pad: "<pad>", eos: "<eos>" });
    assert.equal(v.size, 7);
    assert.deepEqual(v.tokens.slice(0, 2), ["<pad>", "<eos>"]);
    assert.equal(v.padId, 0);
    assert.equal(v.eosId, 1);
    assert.deepEqual(v.encode("SU3  (  U1 )", { eos: true }), [2, 5, 4, 6, 1]);
    assert.equal(v.decode([2, 5, 4, 6, 1]), "SU3 ( U1 )");
    assert.equal(v.decode([2, 1], { keepSpecials: true }), "SU3 <eos>");
    assert.throws(() => v.encode("SU5"), /unknown token "SU5" at position 0/);
    assert.throws(() => v.encode("U1", { bos: true }), /no bos token/);
    assert.throws(() => v.token(7), /id 7 is outside \[0, 7\)/);
  });

  it("char mode and unk", () => {
    const v = new Vocab(["a", "b", "c"], { unk: "?" }, { mode: "char" });
    assert.deepEqual(v.encode("abx"), [1, 2, 0]);
    assert.equal(v.decode([1, 2, 3]), "abc");
    assert.equal(v.id("c"), 3);
    assert.throws(() => new Vocab(["ab"], {}, { mode: "char" }), /not a single character/);
  });

  it("pieces mode: longest match first, single characters as the fallback, lossless", () => {
    const v = new Vocab(
      ["a", "b", " ", "ab", "abb", "b b"],
      { pad: "<pad>", unk: "<unk>" },
      { mode: "pieces" },
    );
    const ids = (...t: string[]) => t.map((x) => v.id(x));
    // "abb" beats "ab"; then "b b" is longer than "b".
    assert.deepEqual(v.encode("abbb b"), ids("abb", "b b"));
    assert.deepEqual(v.encode("aba"), ids("ab", "a"));
    assert.deepEqual(v.encode("a x"), [...ids("a", " "), v.unkId!]);
    assert.equal(v.decode(v.encode("ab abb b")), "ab abb b");
    // A special's spelling in the text is not the special.
    const u = v.unkId!;
    assert.deepEqual(v.encode("<pad>"), [u, u, v.id("a"), u, u]);
    // An astral character is one unknown piece, not two halves.
    assert.deepEqual(v.encode("a😀"), [v.id("a"), v.unkId!]);
  });

  it("rejects duplicates and whitespace tokens", () => {
    assert.throws(() => new Vocab(["x", "x"]), /duplicate token "x"/);
    assert.throws(() => new Vocab(["a b"]), /contains whitespace/);
    // A special already in the list keeps its position.
    const v = new Vocab(["x", "<eos>"], { eos: "<eos>" });
    assert.equal(v.eosId, 1);
  });
});
