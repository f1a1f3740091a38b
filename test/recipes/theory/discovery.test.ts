import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { pickRare, TheoryArchive } from "../../../src/recipes/theory/archive.ts";
import {
  contentClass,
  coreClass,
  isValidTheory,
  relabellings,
  theoryClass,
} from "../../../src/recipes/theory/canonical.ts";
import { enumerateValidTheories } from "../../../src/recipes/theory/enumerate.ts";
import {
  conjugateField,
  type Field,
  formatTheory,
  parseTheory,
  STANDARD_MODEL_GENERATION,
  type SU2,
  type SU3,
  type Theory,
} from "../../../src/recipes/theory/fields.ts";
import type { GrammarOptions } from "../../../src/recipes/theory/grammar.ts";

const SM = STANDARD_MODEL_GENERATION;
const SM_TEXT = "(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,+6)";

describe("theoryClass", () => {
  it("ignores the order of the fields and reads the Standard Model in its own convention", () => {
    const rng = new Rng(3);
    for (let i = 0; i < 10; i++) assert.equal(theoryClass(rng.shuffle([...SM])), SM_TEXT);
  });

  it("identifies the global conjugate and the two partial relabellings, and nothing else", () => {
    const conjugate = SM.map(conjugateField);
    assert.equal(formatTheory(conjugate), "(3b,2,-1) (3,1,+4) (3,1,-2) (1,2,+3) (1,1,-6)");
    assert.equal(theoryClass(conjugate), SM_TEXT);
    for (const image of relabellings(SM)) assert.equal(theoryClass(image), SM_TEXT);
    assert.equal(new Set(relabellings(SM).map(formatTheory)).size, 4, "four different lists");
    // A neutral singlet more, or one hypercharge changed, is another theory.
    assert.notEqual(theoryClass([...SM, { su3: "1", su2: "1", y6: 0 }]), SM_TEXT);
    assert.notEqual(theoryClass(parseTheory("(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,+5)")), SM_TEXT);
  });

  it("is a relabelling invariant of validity: all four images are valid together", () => {
    const rng = new Rng(11);
    const reps3: SU3[] = ["1", "3", "3b"];
    const reps2: SU2[] = ["1", "2"];
    let valid = 0;
    for (let trial = 0; trial < 400; trial++) {
      // Half the trials start from a valid theory plus random vector-like and neutral extras.
      const t: Theory = trial % 2 ? [...SM] : [];
      for (let k = rng.int(4); k > 0; k--) {
        const f: Field = { su3: rng.pick(reps3), su2: rng.pick(reps2), y6: rng.int(13) - 6 };
        t.push(f, ...(rng.next() < 0.5 ? [conjugateField(f)] : []));
      }
      const v = isValidTheory(t);
      if (v) valid++;
      for (const image of relabellings(t)) assert.equal(isValidTheory(image), v, formatTheory(image));
    }
    assert.ok(valid > 20, "enough valid trials to mean something");
  });
});

/** Every sorted field list of the grammar, checked one by one: the slow reference. */
function bruteForce(opts: Required<GrammarOptions>): Set<string> {
  const [lo, hi] = opts.y6Range;
  const types: Field[] = [];
  for (const su3 of ["3", "3b", "1"] as SU3[])
    for (const su2 of ["2", "1"] as SU2[]) for (let y6 = lo; y6 <= hi; y6++) types.push({ su3, su2, y6 });
  const out = new Set<string>();
  const t: Field[] = [];
  const rec = (from: number) => {
    if (t.length >= opts.minFields && isValidTheory(t)) out.add(theoryClass(t));
    if (t.length === opts.maxFields) return;
    for (let i = from; i < types.length; i++) {
      t.push(types[i]!);
      rec(i);
      t.pop();
    }
  };
  rec(0);
  return out;
}

describe("enumerateValidTheories", () => {
  for (const g of [
    { minFields: 1, maxFields: 4, y6Range: [-3, 3] },
    { minFields: 2, maxFields: 5, y6Range: [-2, 2] },
  ] as Required<GrammarOptions>[]) {
    it(`finds exactly the valid classes a search of every field list finds (${g.maxFields} fields, Y6 ${g.y6Range})`, () => {
      const space = enumerateValidTheories(g);
      const reference = bruteForce(g);
      assert.ok(reference.size > 10, `${reference.size} classes: a grammar with something to find`);
      assert.deepEqual([...space.classKeys].sort(), [...reference].sort());
      assert.equal(space.classes, reference.size);
      assert.equal(
        space.classesByFields.reduce((a, b) => a + b, 0),
        space.classes,
      );
      assert.ok(space.validMultisets >= space.classes && space.anomalyFreeMultisets >= space.validMultisets);
    });
  }

  it("contains one Standard Model generation where the grammar has room for it", () => {
    const space = enumerateValidTheories({ minFields: 5, maxFields: 5, y6Range: [-4, 6] });
    assert.ok(space.classKeys.has(SM_TEXT));
    assert.equal(space.classesByFields[5], space.classes);
  });

  it("refuses a grammar too large to search exactly", () => {
    assert.throws(() => enumerateValidTheories({ maxFields: 16, y6Range: [-12, 12] }), /small grammars only/);
  });
});

describe("TheoryArchive", () => {
  it("counts samples, first steps and demonstrations; evaluation samples are not 'seen'", () => {
    const a = new TheoryArchive(100);
    a.addDemonstrations([SM_TEXT, null, SM_TEXT]);
    a.record(["X", null, "X", SM_TEXT], 3, "train");
    a.record(["Y", "X"], 5, "eval");
    assert.equal(a.distinct, 3);
    assert.equal(a.novel, 2);
    assert.equal(a.timesSeen("X"), 2);
    assert.equal(a.timesSeen(SM_TEXT), 3, "two demonstrations and one sample");
    assert.equal(a.timesSeen("Y"), 0);
    assert.deepEqual(
      a.theories().map((t) => [t.theory, t.samples, t.eval_samples, t.first_step, t.in_demonstrations]),
      [
        ["X", 2, 1, 3, false],
        [SM_TEXT, 1, 0, 3, true],
        ["Y", 0, 1, 5, false],
      ],
    );
  });

  it("counts sightings by chiral core: a vector-like pair or a neutral singlet more is the same core", () => {
    const coreOf = (c: string) => coreClass(parseTheory(c));
    const withNu = `${SM_TEXT} (1,1,0)`;
    const withPair = `${SM_TEXT} (1,2,-3) (1,2,+3)`;
    assert.equal(coreOf(withNu), SM_TEXT);
    assert.equal(coreOf(withPair), SM_TEXT);
    // A doublet more is not a pair: it changes the chiral content.
    assert.notEqual(coreOf(`${SM_TEXT} (1,2,-3)`), SM_TEXT);
    const a = new TheoryArchive(null, coreOf);
    a.addDemonstrations([SM_TEXT]);
    a.record([withNu, withNu, withPair], 1, "train");
    a.record([withPair], 2, "eval");
    assert.equal(a.timesSeen(withPair), 1);
    assert.equal(a.timesCoreSeen(withPair), 4, "one demonstration, three training samples");
    assert.equal(a.cores, 1);
    const b = new TheoryArchive(null, coreOf);
    b.load(JSON.parse(JSON.stringify(a.save())));
    assert.equal(b.timesCoreSeen(SM_TEXT), 4, "rebuilt on load");
    // Without a core function every class is its own core.
    const plain = new TheoryArchive(null);
    plain.record([withNu, withPair], 1, "train");
    assert.equal(plain.cores, 2);
    assert.equal(plain.timesCoreSeen(withNu), 1);
  });

  it("saves and loads its state, and names the field of a bad one", () => {
    const a = new TheoryArchive(null);
    a.addDemonstrations([SM_TEXT]);
    a.record(["X", SM_TEXT], 1, "train");
    const b = new TheoryArchive(null);
    b.load(JSON.parse(JSON.stringify(a.save())));
    assert.deepEqual(b.save(), a.save());
    assert.equal(b.timesSeen(SM_TEXT), 2);
    const bad = { ...a.save(), theories: [{ ...a.save().theories[0], samples: -1 }] };
    assert.throws(() => b.load(bad, "run/state.json"), /run\/state\.json \(field theories\.0\.samples\)/);
  });
});

describe("pickRare", () => {
  it("draws distinct classes the policy sampled in training, the rarely seen most often", () => {
    const a = new TheoryArchive(null);
    a.record(Array(99).fill("common"), 1, "train");
    a.record(["rare"], 1, "train");
    a.record(["only at evaluation"], 1, "eval");
    const rng = new Rng(4);
    const firsts = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const picked = pickRare(a, 2, rng);
      assert.deepEqual(
        [...picked].sort(),
        ["common", "rare"],
        "both, each once; never an evaluation-only class",
      );
      firsts.set(picked[0]!, (firsts.get(picked[0]!) ?? 0) + 1);
    }
    // Weights 1/99 and 1: "rare" comes first about 99 times in 100.
    assert.ok(firsts.get("rare")! > 470, JSON.stringify([...firsts]));
    assert.deepEqual(pickRare(new TheoryArchive(null), 3, rng), []);
  });
});

describe("field content", () => {
  it("leaves out the hypercharges and the 3 ↔ 3̄ relabelling, and keeps the representations", () => {
    const sm = STANDARD_MODEL_GENERATION;
    const content = contentClass(sm);
    assert.equal(content, contentClass(sm.map(conjugateField)));
    assert.equal(
      contentClass(parseTheory("(3,1,+2) (3b,1,-2)")),
      contentClass(parseTheory("(3,1,-4) (3b,1,+4)")),
    );
    assert.equal(
      contentClass(parseTheory("(3,1,+2) (3b,1,-2)")),
      contentClass(parseTheory("(3b,1,+2) (3,1,-2)")),
    );
    assert.notEqual(contentClass([...sm, ...parseTheory("(1,1,0)")]), content);
    assert.notEqual(
      contentClass(parseTheory("(3,2,+1) (3,1,0)")),
      contentClass(parseTheory("(3,2,+1) (3b,1,0)")),
    );
  });
});
