import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import type { TokenConstraint } from "../../../src/model/sampler.ts";
import {
  compareFields,
  formatTheory,
  parseTheory,
  STANDARD_MODEL_GENERATION,
  sortedTheory,
} from "../../../src/recipes/theory/fields.ts";
import {
  type GrammarOptions,
  TheoryGrammar,
  type TheoryGrammarState,
} from "../../../src/recipes/theory/grammar.ts";
import { randomTheory } from "./random-theory.ts";

const SM = STANDARD_MODEL_GENERATION;

/** Follow the automaton with uniformly random allowed tokens until it is done. */
function randomWalk(g: TheoryGrammar, rng: Rng): number[] {
  let state = g.initial();
  const tokens: number[] = [];
  while (!g.isDone(state)) {
    const mask = g.allowed(state);
    const options: number[] = [];
    mask.forEach((ok, i) => {
      if (ok) options.push(i);
    });
    assert.ok(options.length > 0, "a live state always allows some token");
    const tok = rng.pick(options);
    tokens.push(tok);
    state = g.advance(state, tok);
    assert.ok(tokens.length <= g.maxLength, "walk longer than maxLength");
  }
  return tokens;
}

function tokenId(g: TheoryGrammar, text: string): number {
  const i = g.vocab.indexOf(text);
  assert.ok(i >= 0, text);
  return i;
}

describe("TheoryGrammar vocabulary", () => {
  it("is small and has the special tokens first", () => {
    const g = new TheoryGrammar();
    assert.deepEqual(g.vocab.slice(0, 7), ["<pad>", "<bos>", "<eos>", "1", "2", "3", "3b"]);
    assert.equal(g.vocab.length, 7 + 25);
    assert.equal(g.vocab[g.bosId], "<bos>");
    assert.equal(g.vocab[g.eosId], "<eos>");
    assert.equal(new Set(g.vocab).size, g.vocab.length);
    assert.ok(new TheoryGrammar({ y6Range: [-24, 24] }).vocab.length < 64);
    assert.equal(g.maxLength, 3 * 16 + 1);
  });

  it("rejects bad options", () => {
    assert.throws(() => new TheoryGrammar({ minFields: 0 }), /minFields/);
    assert.throws(() => new TheoryGrammar({ minFields: 5, maxFields: 4 }), /maxFields/);
    assert.throws(() => new TheoryGrammar({ y6Range: [3, -3] }), /y6Range/);
    assert.throws(() => new TheoryGrammar({ y6Range: [-40, 40] }), /more than 56/);
  });
});

describe("TheoryGrammar encode/decode", () => {
  const g = new TheoryGrammar();

  it("encodes one generation as three tokens per field plus <eos>", () => {
    const tokens = g.encode(SM);
    assert.equal(g.tokensToString(tokens), "3 2 +1 3b 1 -4 3b 1 +2 1 2 -3 1 1 +6 <eos>");
    assert.deepEqual(g.decode(tokens), SM);
    assert.deepEqual(g.decode([g.bosId, ...tokens]), SM, "a leading <bos> is accepted");
    assert.deepEqual(g.decode([...tokens, g.padId, g.padId]), SM, "trailing padding is accepted");
  });

  it("round-trips random theories", () => {
    const rng = new Rng(1);
    for (let i = 0; i < 300; i++) {
      const t = randomTheory(rng, 1 + rng.int(16));
      assert.deepEqual(g.decode(g.encode(t)), t);
    }
  });

  it("decodes broken sequences to null", () => {
    const sm = g.encode(SM);
    assert.equal(g.decode(sm.slice(0, -1)), null, "no <eos>");
    assert.equal(g.decode(sm.slice(0, 4).concat(g.eosId)), null, "<eos> inside a field");
    assert.equal(g.decode([g.eosId]), null, "fewer than minFields");
    assert.equal(
      g.decode([tokenId(g, "2"), tokenId(g, "2"), tokenId(g, "0"), g.eosId]),
      null,
      "2 as SU(3) rep",
    );
    assert.equal(g.decode([...sm, tokenId(g, "3")]), null, "tokens after <eos>");
    assert.equal(g.decode([99, g.eosId]), null, "out of vocabulary");
    assert.equal(g.decode([]), null);
  });

  it("refuses to encode theories outside the grammar", () => {
    assert.throws(() => g.encode(parseTheory("(1,1,+18)")), /field 1 y6: 18 is outside \[-12, 12\]/);
    assert.throws(() => g.encode([]), /1\.\.16 fields, got 0/);
    assert.throws(() => g.encode([...SM, ...SM, ...SM, ...SM]), /got 20/);
    assert.throws(() => g.encode([{ su3: "8" as "3", su2: "1", y6: 0 }]), /field 1 su3/);
  });
});

describe("TheoryGrammar automaton", () => {
  it("random walks always decode to theories within the limits", () => {
    const cases: GrammarOptions[] = [{}, { minFields: 3, maxFields: 5, y6Range: [-6, 6] }, { maxFields: 1 }];
    const rng = new Rng(2024);
    for (const opts of cases) {
      const g = new TheoryGrammar(opts);
      const seenLengths = new Set<number>();
      for (let i = 0; i < 2000; i++) {
        const tokens = randomWalk(g, rng);
        assert.equal(tokens.at(-1), g.eosId);
        const t = g.decode(tokens);
        assert.ok(t !== null, g.tokensToString(tokens));
        assert.ok(t.length >= g.minFields && t.length <= g.maxFields);
        for (const f of t) assert.ok(f.y6 >= g.y6Range[0] && f.y6 <= g.y6Range[1]);
        assert.deepEqual(g.encode(t), tokens);
        seenLengths.add(t.length);
      }
      assert.ok(seenLengths.has(g.minFields), `minFields reached for ${JSON.stringify(opts)}`);
      if (g.maxFields <= 5) assert.ok(seenLengths.has(g.maxFields), "maxFields reached");
    }
  });

  it("allows <eos> only between fields once minFields is reached, and forces it at maxFields", () => {
    const g = new TheoryGrammar({ minFields: 2, maxFields: 2 });
    let s = g.initial();
    assert.equal(g.allowed(s)[g.eosId], 0);
    for (const tok of ["3", "2", "+1"]) {
      s = g.advance(s, tokenId(g, tok));
      assert.equal(g.allowed(s)[g.eosId], 0);
    }
    for (const tok of ["1", "2"]) {
      s = g.advance(s, tokenId(g, tok));
      assert.equal(g.allowed(s)[g.eosId], 0);
    }
    s = g.advance(s, tokenId(g, "-3"));
    const mask = g.allowed(s);
    assert.equal(mask[g.eosId], 1);
    assert.equal(
      mask.reduce((a, b) => a + b, 0),
      1,
      "only <eos> at maxFields",
    );
    s = g.advance(s, g.eosId);
    assert.equal(g.isDone(s), true);
    assert.deepEqual(
      [...g.allowed(s)].flatMap((ok, i) => (ok ? [i] : [])),
      [g.padId],
    );
    assert.equal(g.advance(s, g.padId), s);
  });

  it("offers exactly the tokens of each slot", () => {
    const g = new TheoryGrammar({ y6Range: [-2, 2] });
    const names = (mask: Uint8Array) => [...mask].flatMap((ok, i) => (ok ? [g.vocab[i]] : []));
    let s = g.initial();
    assert.deepEqual(names(g.allowed(s)), ["1", "3", "3b"]);
    s = g.advance(s, tokenId(g, "3b"));
    assert.deepEqual(names(g.allowed(s)), ["1", "2"]);
    s = g.advance(s, tokenId(g, "1"));
    assert.deepEqual(names(g.allowed(s)), ["-2", "-1", "0", "+1", "+2"]);
    s = g.advance(s, tokenId(g, "0"));
    assert.deepEqual(names(g.allowed(s)), ["<eos>", "1", "3", "3b"]);
  });

  it("throws on disallowed tokens", () => {
    const g = new TheoryGrammar();
    const s0 = g.initial();
    assert.throws(() => g.advance(s0, g.eosId), /\("<eos>"\) is not allowed at field 1, SU\(3\) rep/);
    assert.throws(() => g.advance(s0, g.bosId), /not allowed/);
    assert.throws(() => g.advance(s0, g.padId), /not allowed/);
    assert.throws(() => g.advance(s0, tokenId(g, "2")), /not allowed/);
    assert.throws(() => g.advance(s0, tokenId(g, "+1")), /not allowed/);
    assert.throws(() => g.advance(s0, g.vocab.length), /out of vocabulary/);
    assert.throws(() => g.advance(s0, -1), /not allowed/);
    const s1 = g.advance(s0, tokenId(g, "3"));
    assert.throws(() => g.advance(s1, tokenId(g, "3")), /field 1, SU\(2\) rep/);
    const s2 = g.advance(s1, tokenId(g, "2"));
    assert.throws(() => g.advance(s2, tokenId(g, "2")), /field 1, hypercharge/);
    const done = g.advance(g.advance(s2, tokenId(g, "+1")), g.eosId);
    assert.throws(() => g.advance(done, tokenId(g, "3")), /after <eos>/);
  });

  it("is a TokenConstraint for the sampler", () => {
    // Checked by the type checker; at run time it only confirms the methods exist.
    const c: TokenConstraint<TheoryGrammarState> = new TheoryGrammar();
    assert.equal(c.isDone(c.initial()), false);
  });

  it("returns masks the caller may modify without corrupting the grammar", () => {
    const g = new TheoryGrammar();
    const m = g.allowed(g.initial());
    m.fill(0);
    assert.equal(g.allowed(g.initial())[tokenId(g, "3")], 1);
  });
});

describe("TheoryGrammar with sortedFields", () => {
  const g = new TheoryGrammar({ maxFields: 8, y6Range: [-6, 6], sortedFields: true });

  it("writes every theory in the conventional order only: one spelling per multiset", () => {
    const rng = new Rng(5);
    const spelled = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const tokens = randomWalk(g, rng);
      const t = g.decode(tokens)!;
      assert.deepEqual(t, sortedTheory(t), g.tokensToString(tokens));
      for (let k = 1; k < t.length; k++) assert.ok(compareFields(t[k - 1]!, t[k]!) <= 0);
      const key = formatTheory(t);
      assert.equal(spelled.get(key) ?? g.tokensToString(tokens), g.tokensToString(tokens));
      spelled.set(key, g.tokensToString(tokens));
    }
  });

  it("encodes any order sorted, and refuses to decode an unsorted spelling", () => {
    const shuffled = new Rng(2).shuffle([...SM]);
    const tokens = g.encode(shuffled);
    assert.equal(g.tokensToString(tokens), "3 2 +1 3b 1 -4 3b 1 +2 1 2 -3 1 1 +6 <eos>");
    assert.deepEqual(g.decode(tokens), SM);
    const unsorted = new TheoryGrammar({ maxFields: 8, y6Range: [-6, 6] }).encode(
      parseTheory("(1,1,+6) (3,2,+1)"),
    );
    assert.equal(g.decode(unsorted), null);
    assert.throws(() => g.encode(parseTheory("(3,2,+1) (1,1,+9)")), /field 2 y6: 9 is outside/);
  });

  it("narrows each slot to what keeps the order, and never to nothing", () => {
    const names = (mask: Uint8Array) => [...mask].flatMap((ok, i) => (ok ? [g.vocab[i]] : []));
    let s = g.initial();
    for (const tok of ["3b", "1", "+2"]) s = g.advance(s, tokenId(g, tok));
    assert.deepEqual(names(g.allowed(s)), ["<eos>", "1", "3b"]);
    s = g.advance(s, tokenId(g, "3b"));
    assert.deepEqual(names(g.allowed(s)), ["1"]);
    s = g.advance(s, tokenId(g, "1"));
    assert.deepEqual(names(g.allowed(s)), ["+2", "+3", "+4", "+5", "+6"]);
    assert.throws(() => g.advance(s, tokenId(g, "+1")), /not allowed at field 2, hypercharge/);
  });
});
